"""Self-contained HTML reports (plotly) of fits and backtests.

A report page holds: the history with each model's forecast and its prediction-interval
fans against the baselines; the backtest error by horizon step; a metrics table with
skill against the naive forecast and interval coverage; training and validation loss
curves; residual diagnostics (histogram, error by step, autocorrelation); a data
summary (frequency, gaps filled, split dates); and a model card per model (parameters,
seed, versions, data fingerprint).

plotly.js is written once beside the page (``plotly.min.js`` in the report folder, so a
folder of reports shares one copy and each page stays small) or, with
``embed_plotlyjs=True``, embedded once in the page. Either way the page works offline.
Long histories are thinned for display (the most recent points are kept at full
resolution) so that a page stays well under 5 MB.

`content` holds what a page shows, `figures` the plotly figures, `page` the HTML.

    >>> from forecast import report
    >>> content = report.ReportContent.from_runs("AAPL", dataset, backtest=run, fits=fits)  # doctest: +SKIP
    >>> report.write_report(content, "reports/aapl.html")                                   # doctest: +SKIP
"""

from forecast.report.content import (MAX_POINTS, PLOTLY_JS, ModelView, ReportContent, Tables,
                                     summary_from_forecasts)
from forecast.report.page import (STYLESHEET, baseline_verdict, coverage_verdict, naive_verdict,
                                  random_walk_sentence, render, skill_verdict,
                                  write_index, write_plotlyjs, write_report)

__all__ = ["ModelView", "ReportContent", "Tables", "write_report", "write_index",
           "write_plotlyjs", "render", "summary_from_forecasts", "skill_verdict", "naive_verdict", "baseline_verdict",
           "coverage_verdict",
           "random_walk_sentence", "STYLESHEET", "PLOTLY_JS", "MAX_POINTS"]
