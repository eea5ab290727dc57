"""`forecast backtest`: rolling-origin evaluation against the naive baselines."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from forecast.cli.options import DATA_HELP, check_output, data_spec, parse_levels
from forecast.cli.ui import Bars, data_notes, metric_columns, run_body, say, show, table
from forecast.errors import ConfigError

app = typer.Typer()


@app.command()
def backtest(ctx: typer.Context,
             data: str = typer.Argument(..., metavar="DATA", help=DATA_HELP),
             target: Optional[str] = typer.Option(None, "--target", "-t",
                                                  help="Column to forecast."),
             models: str = typer.Option("gru,naive", help="Comma-separated model names; the "
                                        "naive, seasonal naive and drift baselines always run."),
             folds: int = typer.Option(3, min=1, help="Rolling-origin folds."),
             horizon: Optional[int] = typer.Option(None, min=1, help="Steps per forecast "
                                                   "(default: one season)."),
             step: Optional[int] = typer.Option(None, min=1, help="Rows between cut-offs "
                                                "(default: the horizon)."),
             refit_every: Optional[int] = typer.Option(None, min=0, help="Refit every k folds "
                                                       "(0: once; default: every folds/4, so at "
                                                       "most 4 fits per model)."),
             refit: str = typer.Option("auto", help="fresh, warm (continue training from the "
                                       "last fit) or auto (warm for the recurrent models)."),
             window: str = typer.Option("expanding", help="expanding or sliding training window."),
             lookback: Optional[int] = typer.Option(None, min=1, help="Input window length."),
             epochs: Optional[int] = typer.Option(None, min=1, help="Most training epochs."),
             hidden: Optional[int] = typer.Option(None, min=1, help="Hidden units (recurrent)."),
             seed: int = typer.Option(0, help="Random seed."),
             levels: str = typer.Option("80,95", help="Prediction-interval levels in percent."),
             gaps: str = typer.Option("error", help="Missing timestamps: error, fill or drop."),
             freq: Optional[str] = typer.Option(None, help="Frequency alias; default inferred."),
             time_col: Optional[str] = typer.Option(None, help="Time column."),
             id_col: Optional[str] = typer.Option(None, help="Series id column."),
             output: Optional[str] = typer.Option(None, "--output", "-o", metavar="FILE",
                                                  help="Every forecast row (CSV or Parquet; "
                                                       "default reports/<data>-backtest.csv)."),
             report: Optional[str] = typer.Option(None, metavar="HTML",
                                                  help="Write an HTML report, e.g. "
                                                       "reports/NAME.html.")) -> None:
    """Backtest models against the naive baselines with rolling-origin folds.

    Example: forecast backtest aapl --models lstm,gru,naive --folds 5 --report reports/aapl.html
    """
    if window not in ("expanding", "sliding"):
        raise typer.BadParameter(f"{window!r} is not expanding or sliding", param_hint="--window")
    if refit not in ("fresh", "warm", "auto"):
        raise typer.BadParameter(f"{refit!r} is not fresh, warm or auto", param_hint="--refit")
    if output is None:
        Path("reports").mkdir(exist_ok=True)
        output = str(Path("reports") / f"{Path(data).stem}-backtest.csv")
    check_output(output, "--output", allow_stdout=True)
    check_output(report, "--report")
    try:
        from forecast.workflows import BacktestSpec, ModelSpec, check_models

        names = check_models(models)
    except ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--models") from None
    lv = parse_levels(levels)
    specs = [ModelSpec(n, horizon=horizon, lookback=lookback, epochs=epochs, hidden=hidden,
                       seed=seed, levels=lv) for n in names]
    dspec = data_spec(data, target, time_col, id_col, None, gaps, freq)
    settings = BacktestSpec(horizon=horizon, folds=folds, step=step, window=window,
                            refit_every=refit_every, refit=refit, levels=lv)

    def body():
        from forecast import workflows as wf
        from forecast.files import write_table

        with Bars(ctx) as bars:
            run = wf.backtest(dspec, specs, settings, progress=bars)
        if output == "-":
            sys.stdout.write(run.result.forecasts.to_csv(index=False))
        else:
            write_table(run.result.forecasts, output)
        if report:
            from forecast import report as rp

            title = f"Backtest: {run.dataset.name} ({run.dataset.target[0]})"
            rp.write_report(rp.ReportContent.from_runs(title, run.dataset, backtest=run), report)
        return run

    run = run_body(ctx, body)
    data_notes(ctx, run.dataset)
    if output != "-":
        cfg = run.result.config
        show(ctx, table(f"Backtest of {run.dataset.name}: {run.result.cutoffs.shape[1]} "
                           f"folds x {cfg.horizon} steps ({run.seconds:.1f} s)",
                           run.result.summary, metric_columns(run.result.summary)))
        from forecast.report import coverage_verdict, random_walk_sentence, skill_verdict

        for text in (skill_verdict(run.result.summary), coverage_verdict(run.result.summary),
                     random_walk_sentence(run.result.folds)):
            if text:
                say(ctx, text, err=False)
        say(ctx, f"results: {output}" + (f"  report: {report}" if report else ""), err=False)
