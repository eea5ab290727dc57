"""`forecast report`: an HTML report from a model file or a backtest results file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from forecast.cli.options import check_output
from forecast.cli.ui import run_body, say

app = typer.Typer()


@app.command("report")
def report(ctx: typer.Context,
               source: str = typer.Argument(..., metavar="SOURCE",
                                            help="A model file (`forecast fit`) or a backtest "
                                                 "results file (`forecast backtest -o`)."),
               data: Optional[str] = typer.Option(None, "--data", "-d",
                                                  help="The data (needed for backtest "
                                                       "results; for a model file default: "
                                                       "its training data, when found)."),
               target: Optional[str] = typer.Option(None, "--target", "-t",
                                                    help="Target column of --data for a "
                                                         "backtest results file."),
               output: Optional[str] = typer.Option(None, "--output", "-o", metavar="HTML",
                                                    help="Report file (default "
                                                         "reports/<source>.html)."),
               title: Optional[str] = typer.Option(None, help="Page title."),
               embed_plotlyjs: bool = typer.Option(False, help="Embed plotly.js in the page "
                                                   "(about 4.7 MB) instead of writing "
                                                   "plotly.min.js beside it.")) -> None:
    """Build an HTML report from a fit (model file) or a backtest result.

    Example: forecast report aapl-gru.npz -o reports/aapl-gru.html
    (or: forecast report reports/aapl-backtest.csv --data aapl -o reports/aapl.html)
    """
    if output is None:
        Path("reports").mkdir(exist_ok=True)
        output = str(Path("reports") / f"{Path(source).stem}.html")
    check_output(output, "--output")

    def body():
        from forecast import report as rp
        from forecast import workflows as wf

        if Path(source).suffix.lower() in (".csv", ".parquet", ".pq"):
            if data is None:
                raise typer.BadParameter("a backtest results file needs --data (the data "
                                         "it was run on)", param_hint="--data")
            import pandas as pd

            from forecast.errors import DataError

            from forecast.files import is_parquet, require_parquet

            if is_parquet(source):
                require_parquet(f"reading {source}")
            try:
                table = pd.read_parquet(source) if source.endswith(("parquet", ".pq")) \
                    else pd.read_csv(source, parse_dates=["cutoff", "ds"])
            except (OSError, ValueError) as exc:
                raise DataError(f"cannot read backtest results {source}: {exc}") from None
            dataset = wf.load_data(wf.DataSpec(data, target=target))
            content = rp.ReportContent.from_backtest_table(
                table, dataset, title or f"Backtest: {Path(source).stem}")
        else:
            from forecast import io

            mf = io.load_model(source)
            src = data or (mf.manifest.get("extra") or {}).get("data_source")
            dataset = None
            if src is not None and (data is not None or _exists_or_bundled(src)):
                dataset = wf.load_new_data(mf, src)
            content = rp.ReportContent.from_model_file(mf, dataset)
            if title:
                content.title = title
        return rp.write_report(content, output, embed_plotlyjs=embed_plotlyjs)

    path = run_body(ctx, body)
    say(ctx, f"report: {path} ({path.stat().st_size / 1e6:.2f} MB)", err=False)


def _exists_or_bundled(src: str) -> bool:
    from forecast.data import bundled_info

    return bundled_info(src) is not None or Path(src).is_file()
