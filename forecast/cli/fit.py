"""`forecast fit` and `forecast predict`: a model file from data, forecasts from a model
file."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from forecast.cli.options import (DATA_HELP, check_model_spec, check_output, data_spec,
                                  inference_start, parse_levels, parse_params)
from forecast.cli.ui import Bars, data_notes, metric_columns, run_body, say, show, table

app = typer.Typer()


@app.command()
def fit(ctx: typer.Context,
        data: str = typer.Argument(..., metavar="DATA", help=DATA_HELP),
        output: str = typer.Option(..., "--output", "-o", metavar="MODEL_FILE",
                                   help="Model file to write (e.g. models/aapl-gru.npz)."),
        target: Optional[str] = typer.Option(None, "--target", "-t",
                                             help="Column to forecast (default: the "
                                                  "dataset's target or its only numeric column)."),
        model: str = typer.Option("gru", "--model", "-m",
                                  help="lstm, gru, rnn, segrnn, linear, nlinear, naive, "
                                       "seasonal_naive, drift, mean or auto (chosen by an "
                                       "inner backtest on the training data)."),
        horizon: Optional[int] = typer.Option(None, min=1, help="Steps to forecast (default: "
                                              "one season: 5 trading days, 7 days, 24 hours)."),
        lookback: Optional[int] = typer.Option(None, min=1, help="Input window length."),
        epochs: Optional[int] = typer.Option(None, min=1, help="Most training epochs."),
        hidden: Optional[int] = typer.Option(None, min=1, help="Hidden units (recurrent)."),
        seed: int = typer.Option(0, help="Random seed: the same seed gives the same model."),
        levels: str = typer.Option("80,95", help="Prediction-interval levels in percent."),
        param: Optional[List[str]] = typer.Option(None, "--param", "-p", metavar="KEY=VALUE",
                                                  help="Any other model parameter "
                                                       "(repeatable), e.g. -p lr=0.003."),
        folds: int = typer.Option(0, min=0, help="Backtest folds to run first; their "
                                  "metrics are stored in the model file."),
        gaps: str = typer.Option("error", help="Missing timestamps: error, fill or drop."),
        freq: Optional[str] = typer.Option(None, help="Frequency alias (h, D, B, XNYS...); "
                                           "default: inferred."),
        time_col: Optional[str] = typer.Option(None, help="Time column (default: detected)."),
        id_col: Optional[str] = typer.Option(None, help="Series id column (long format)."),
        covariates: Optional[str] = typer.Option(None, help="Extra input columns, "
                                                 "comma-separated, or 'all'."),
        report: Optional[str] = typer.Option(None, metavar="HTML",
                                             help="Also write an HTML report of the fit.")) -> None:
    """Fit a model on a data file and save it as a model file.

    Example: forecast fit aapl --target Close --model gru --horizon 5 -o aapl-gru.npz
    """
    check_output(output, "--output")
    check_output(report, "--report")
    from forecast.workflows import ModelSpec

    spec = ModelSpec(model, horizon=horizon, lookback=lookback, epochs=epochs, hidden=hidden,
                     seed=seed, levels=parse_levels(levels), params=parse_params(param))
    check_model_spec(spec)
    dspec = data_spec(data, target, time_col, id_col, covariates, gaps, freq)

    def body():
        from forecast import workflows as wf

        with Bars(ctx) as bars:
            run = wf.fit(dspec, spec, folds=folds, progress=bars)
        path = wf.save_fit(run, output)
        if report:
            from forecast import report as rp

            rp.write_report(rp.ReportContent.from_runs(
                f"{run.name} on {run.dataset.name}", run.dataset, fits=[run]), report)
        return run, path

    run, path = run_body(ctx, body)
    data_notes(ctx, run.dataset)
    _fit_summary(ctx, run, path, report)


def _fit_summary(ctx, run, path, report) -> None:
    import pandas as pd

    m = run.model
    row = {"model": run.name, "target": m.target_, "lookback": m.lookback_,
           "horizon": m.horizon_, "epochs": getattr(m, "n_epochs_", None),
           "best": getattr(m, "best_epoch_", None), "fit_seconds": run.seconds}
    if run.losses:
        row["train_loss"], row["val_loss"] = run.losses[-1][0], run.losses[-1][1]
    cols = [("model", "model", ""), ("target", "target", ""), ("lookback", "lookback", ""),
            ("horizon", "horizon", ""), ("epochs", "epochs", ""), ("best", "best epoch", ""),
            ("train_loss", "train loss", ".4g"), ("fit_seconds", "fit s", ".2f")]
    show(ctx, table(f"Fitted on {run.dataset.name} ({len(run.dataset)} rows)",
                       pd.DataFrame([row]), cols))
    sel = getattr(m, "selection_", None)
    if sel:
        say(ctx, f"auto chose {sel['chosen']}: {sel['reason']}", err=False)
    note = (getattr(m, "linear_start_", None) or {}).get("note")
    if note:
        say(ctx, f"{run.name} {note}", err=False)
    if run.backtest is not None:
        show(ctx, table("Backtest", run.backtest.summary, metric_columns(run.backtest.summary)))
    say(ctx, f"model file: {path}" + (f"  report: {report}" if report else ""), err=False)


@app.command()
def predict(ctx: typer.Context,
            model_file: str = typer.Argument(..., metavar="MODEL_FILE",
                                             help="A model file written by `forecast fit`."),
            data: Optional[str] = typer.Option(None, "--data", "-d",
                                               help="Newer data (same columns and frequency, "
                                                    "continuing the training data): forecast "
                                                    "after its end."),
            output: str = typer.Option("-", "--output", "-o",
                                       help="forecasts.csv, forecasts.parquet or - for CSV on "
                                            "stdout."),
            horizon: Optional[int] = typer.Option(None, min=1,
                                                  help="Steps (at most the fitted horizon).")) -> None:
    """Forecast with a saved model: original units, interval columns
    (unique_id, ds, yhat, yhat_lower_80, yhat_upper_80, ...).

    Example: forecast predict aapl-gru.npz --data newer.csv -o forecasts.csv
    """
    check_output(output, "--output", allow_stdout=True)
    inference_start()

    def body():
        from forecast import workflows as wf

        frame, _mf = wf.predict(model_file, data, horizon=horizon)
        if output == "-":
            sys.stdout.write(frame.to_csv(index=False))
            sys.stdout.flush()
        else:
            from forecast.files import write_table

            write_table(frame, output)
        return frame

    frame = run_body(ctx, body)
    if output != "-":
        say(ctx, f"{len(frame)} forecasts written to {output}", err=False)
