"""Scheduled batch forecasting of many series: `forecast batch run/validate/status`.

    >>> from forecast import batch
    >>> config = batch.load_config("nightly.toml")                 # doctest: +SKIP
    >>> outcome = batch.run_batch(config, run_id="2026-11-23")     # doctest: +SKIP
    >>> outcome.exit_code, outcome.counts                          # doctest: +SKIP

One module per job, in the order a run uses them:

``config``     reads and checks the batch file (`BatchConfig`, per-series settings)
``plan``       every series of the file, loading one, the run id and ``--as-of``
``validate``   `forecast batch validate`: every series checked, nothing forecast
``lock``       the output folder's ``flock`` (`BatchLock`)
``manifest``   the typed run manifest and result entries (`RunManifest`, `SeriesEntry`)
``run``        a run from lock to summary: resume, outputs, manifest, SIGTERM
``executors``  where series are computed: local process pool or a Dask cluster
``worker``     the per-series pipeline (load, fit or reuse, backtest, forecast, report)
``summary``    the run's HTML summary page
``status``     `forecast batch status`: a run's state from its files
"""

from forecast.batch.config import BatchConfig, load_config, parse_config
from forecast.batch.lock import BatchLock, lock_holder
from forecast.batch.manifest import (EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, RunManifest, SeriesEntry,
                                     manifest_exit_code, not_ok)
from forecast.batch.plan import SeriesItem, load_series, parse_as_of, plan_series
from forecast.batch.run import RunOutcome, Stopped, run_batch
from forecast.batch.status import read_status
from forecast.batch.validate import ValidationRow, validate_batch

__all__ = ["BatchConfig", "load_config", "parse_config", "run_batch", "plan_series",
           "load_series", "parse_as_of", "read_status", "RunOutcome", "RunManifest",
           "SeriesEntry", "SeriesItem", "Stopped", "BatchLock", "lock_holder",
           "manifest_exit_code", "not_ok", "validate_batch", "ValidationRow", "EXIT_OK",
           "EXIT_PARTIAL", "EXIT_ERROR"]
