"""`forecast batch validate`: check every series of a batch file without forecasting."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Optional

from forecast.batch.config import BatchConfig
from forecast.batch.plan import load_series, parse_as_of, plan_series
from forecast.errors import ForecastError
from forecast.workflows import ModelSpec, build_model, default_horizon

__all__ = ["ValidationRow", "validate_batch"]


@dataclass
class ValidationRow:
    """One series as a run would see it; ``problem`` is empty when it looks fine."""

    series: str
    source: str
    model: str
    horizon: Optional[int]
    folds: int
    fallback: str
    rows: Optional[int] = None
    problem: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate_batch(config: BatchConfig, *, data: bool = True, as_of=None) -> list[ValidationRow]:
    """Plan the series of `config` (raises `ConfigError` for a bad file) and, with
    `data`, load each one (cut at `as_of`, as a run with that ``--as-of`` would) and
    check it is long enough for its model, lookback, horizon and folds. A series that
    would fail gets its reason in ``problem``; nothing is raised for it."""
    items = plan_series(config)
    when = parse_as_of(as_of)
    rows = []
    for it in items:
        s = it.settings
        row = ValidationRow(it.uid, Path(it.file).name, s.model, s.horizon, s.folds,
                            s.fallback, problem=it.error or "")
        if data and not it.error:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ds = load_series(it, when)
                row.rows = len(ds)
                horizon = s.horizon or default_horizon(ds)
                row.horizon = horizon
                model = build_model(ModelSpec(s.model, lookback=s.lookback,
                                              params=dict(s.params)), horizon)
                lookback = int(model.get_params().get("lookback") or 1)
                need = lookback + horizon * (1 + s.folds)
                if len(ds) < need:
                    row.problem = (f"{len(ds)} rows; {s.model} with {s.folds} folds needs "
                                   f"about {need}")
            except ForecastError as exc:
                row.problem = " ".join(str(exc).split())
        rows.append(row)
    return rows
