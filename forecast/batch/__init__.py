"""Scheduled batch forecasting of many series: `forecast batch run/validate/status`.

    >>> from forecast import batch
    >>> config = batch.load_config("nightly.toml")                 # doctest: +SKIP
    >>> outcome = batch.run_batch(config, run_id="2026-11-23")     # doctest: +SKIP
    >>> outcome.exit_code, outcome.counts                          # doctest: +SKIP

`forecast.batch.config` reads the batch file, `forecast.batch.engine` plans the series,
holds the output folder's lock, runs the work on the local process pool or a Dask
cluster and writes every output atomically; `forecast.batch.worker` is the per-series
pipeline, `forecast.batch.summary` the HTML summary page.
"""

from forecast.batch.config import BatchConfig, load_config, parse_config
from forecast.batch.engine import (EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, RunOutcome, load_series,
                                   plan_series, read_status, run_batch)

__all__ = ["BatchConfig", "load_config", "parse_config", "run_batch", "plan_series",
           "load_series", "read_status", "RunOutcome", "EXIT_OK", "EXIT_PARTIAL",
           "EXIT_ERROR"]
