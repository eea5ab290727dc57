"""The ``forecast`` command line: the only layer that prints or exits."""

from __future__ import annotations

import typer

app = typer.Typer(help="Light, fast, reproducible time-series forecasting.", no_args_is_help=True,
                  add_completion=False)


@app.command()
def demo(dataset: str = typer.Option("etth1", help="Bundled dataset name (see `forecast datasets`)."),
         epochs: int = typer.Option(2, min=1, help="Training epochs per model.")) -> None:
    """Train RNN, LSTM and GRU on a bundled dataset and compare them with the naive forecast.

    Example: forecast demo --dataset etth1 --epochs 2
    """
    from forecast import quickstart
    from forecast.errors import ForecastError

    cfg = quickstart.QuickstartConfig(dataset=dataset, epochs=epochs)

    def progress(cell, epoch, loss):
        typer.echo(f"  {cell:5s} epoch {epoch}/{epochs}  train loss {loss:.4f}", err=True)

    try:
        results = quickstart.run(cfg, progress)
    except ForecastError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{'model':8s} {'test MSE':>9s} {'skill vs naive':>15s} {'seconds':>8s}")
    for r in results:
        typer.echo(f"{r.model:8s} {r.test_mse:9.4f} {r.skill_vs_naive:15.1%} {r.seconds:8.1f}")


@app.command()
def datasets() -> None:
    """List the bundled datasets.

    Example: forecast datasets
    """
    from forecast import datasets as ds

    for info in ds.list_datasets():
        typer.echo(f"{info.name:16s} {info.description}")


if __name__ == "__main__":  # pragma: no cover
    app()
