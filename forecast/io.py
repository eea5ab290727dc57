"""Model files: the ``.npz`` format, its manifest, saving, loading and checking.

A model file is one NumPy ``.npz`` archive (a zip) holding only plain arrays, never
pickles:

* ``manifest``: a ``uint8`` array of UTF-8 JSON: the format name and version, the
  package and library versions, the model class, parameters and fitted values, the
  name, dtype and shape of every array, the fitted transforms (per-series scaling,
  window normalisation), the training data's fingerprint (columns, frequency, last
  timestamp, row count, content hash), the seed, the conformal calibration and, when
  a backtest ran, its metrics.
* ``checksum``: a ``uint8`` array of the SHA-256 (hex) over the manifest bytes and
  every array's name, dtype, shape and bytes, in order.
* ``a.<name>``: each learned array (weights, scalers, conformal radii, last window).

Loading (:func:`load_model`) reads with ``numpy.load(..., allow_pickle=False)``, checks
the format name and version (a newer version is refused with a clear message), the
checksum (a tampered file), the manifest's keys and every array's dtype and shape,
and rebuilds the model with `forecast.models.model_from_state`; anything wrong raises
`ModelFileError` naming the problem. Nothing in a model file can execute code.

    >>> from forecast import io
    >>> io.save_model("gru.npz", model, dataset)             # doctest: +SKIP
    >>> loaded = io.load_model("gru.npz")                     # doctest: +SKIP
    >>> loaded.model.predict()                                # doctest: +SKIP

Model files are written atomically through `forecast.files` (the generic safe-output
module every layer uses).
"""

from __future__ import annotations

import hashlib
import io as _io
import json
import platform
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from forecast import __version__
from forecast.errors import DataError, ModelFileError
from forecast.files import write_bytes

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFile", "save_model", "load_model",
           "dump_model", "load_model_bytes",
           "read_manifest", "fingerprint", "check_new_data"]

FORMAT = "forecast-model"
FORMAT_VERSION = 1
_ALLOWED_DTYPES = {"float32", "float64", "int64", "int32", "uint8", "bool"}
_REQUIRED = ("format", "format_version", "package_version", "model", "arrays", "data",
             "seed", "created")
_MAX_MANIFEST = 64 << 20  # a manifest larger than 64 MiB is not one of ours


# ---- fingerprints ----------------------------------------------------------------------
def fingerprint(dataset) -> dict[str, Any]:
    """What identifies the data a model was fitted on: source, columns, frequency,
    series, first and last timestamps, row count and a SHA-256 of timestamps and values."""
    frame = dataset.frame
    h = hashlib.sha256()
    ds = np.ascontiguousarray(dataset.index.asi8)
    h.update(ds.tobytes())
    values = dataset.values()
    h.update(np.ascontiguousarray(values).tobytes())
    if dataset.id_col is not None:
        h.update("\x00".join(map(str, frame[dataset.id_col].to_numpy())).encode())
    last = dataset.last_timestamps()
    b = dataset.bounds
    first = {str(u): frame[dataset.time_col].iloc[b[i]].isoformat()
             for i, u in enumerate(dataset.ids)}
    report = dataset.report
    return {
        "name": str(dataset.name),
        "source": str(report.source),
        "target": list(dataset.target),
        "covariates": list(dataset.covariates),
        "columns": [str(c) for c in frame.columns],
        "id_col": dataset.id_col,
        "frequency": dataset.freq.alias,
        "frequency_name": dataset.freq.name,
        "n_series": int(dataset.n_series),
        "rows": int(len(frame)),
        "first_timestamp": first,
        "last_timestamp": {str(u): t.isoformat() for u, t in last.items()},
        "content_sha256": h.hexdigest(),
        "gap_policy": report.gap_policy,
        "points_filled": int(report.points_filled),
        "missing_timestamps": int(report.missing_timestamps),
    }


# ---- model files -----------------------------------------------------------------------
@dataclass
class ModelFile:
    """A loaded model file: the fitted model and its manifest."""

    model: Any
    manifest: dict[str, Any]
    path: Path | None = None
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.manifest["model"].get("name") or self.manifest["model"]["class"]

    @property
    def data(self) -> dict[str, Any]:
        return self.manifest["data"]

    @property
    def backtest(self) -> dict[str, Any] | None:
        return self.manifest.get("backtest")


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("numba", "pandas", "scipy"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:  # pragma: no cover - all are dependencies
            pass
    return out


def _digest(manifest_bytes: bytes, arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    h.update(manifest_bytes)
    for name in sorted(arrays):
        a = arrays[name]
        h.update(f"\x00{name}\x00{a.dtype.str}\x00{list(a.shape)}\x00".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _transforms(meta: dict[str, Any]) -> list[dict[str, Any]]:
    params = meta.get("params", {})
    out = [{"kind": "series_standardize", "applies_to": "target",
            "arrays": ["series_loc_", "series_scale_"],
            "note": "per-series mean and standard deviation of the training rows (identity "
                    "for baselines)"},
           {"kind": "covariate_standardize", "arrays": ["cov_loc_", "cov_scale_"]}]
    if "normalize" in params:
        out.append({"kind": "window_normalize", "mode": params["normalize"]})
    fitted = meta.get("fitted") or {}
    if fitted.get("calendar_"):
        out.append({"kind": "calendar_features", "features": fitted["calendar_"]})
    return out


def save_model(path, model, dataset=None, *, name: str | None = None,
               backtest: dict[str, Any] | None = None,
               extra: dict[str, Any] | None = None) -> Path:
    """Write fitted `model` to `path` (atomically). `dataset` is the data it was fitted
    on (for the fingerprint and the checks of `predict` on new data), `name` the short
    model name (``gru``), `backtest` JSON-safe backtest metrics, `extra` anything else
    JSON-safe to keep (training time, load options)."""
    return write_bytes(path, dump_model(model, dataset, name=name, backtest=backtest,
                                        extra=extra))


def dump_model(model, dataset=None, *, name: str | None = None,
               backtest: dict[str, Any] | None = None,
               extra: dict[str, Any] | None = None) -> bytes:
    """The bytes of the model file `save_model` writes (for sending a model between
    processes or machines; `load_model_bytes` reads them back)."""
    from forecast.models import check_is_fitted

    check_is_fitted(model, "save_model")
    meta, arrays = model.to_state()
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    for key, a in arrays.items():
        if a.dtype.name not in _ALLOWED_DTYPES:
            raise ModelFileError(f"array {key!r} has dtype {a.dtype}; model files hold only "
                                 f"{sorted(_ALLOWED_DTYPES)}")
    fitted = meta.get("fitted") or {}
    levels = fitted.get("levels_") or []
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "package": "forecast",
        "package_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
        "model": {"name": name, "class": meta["type"], "state": meta},
        "arrays": {k: {"dtype": a.dtype.name, "shape": list(a.shape)}
                   for k, a in sorted(arrays.items())},
        "transforms": _transforms(meta),
        "data": fingerprint(dataset) if dataset is not None else None,
        "seed": meta.get("params", {}).get("random_state"),
        "calibration": {"method": "split-conformal" if "conformal_radius_" in arrays
                        else ("quantile-head" if fitted.get("quantiles_") else None),
                        "levels": levels,
                        "array": "conformal_radius_" if "conformal_radius_" in arrays else None,
                        **({"per_series": fitted["calibration_"]}
                           if fitted.get("calibration_") else {})},
        "backtest": backtest,
        "extra": extra or {},
    }
    try:
        text = json.dumps(manifest, allow_nan=False, sort_keys=True)
    except ValueError as exc:
        raise ModelFileError(f"the model description cannot be stored as JSON: {exc}") from None
    mbytes = text.encode("utf-8")
    payload = {"manifest": np.frombuffer(mbytes, dtype=np.uint8)}
    payload["checksum"] = np.frombuffer(_digest(mbytes, arrays).encode("ascii"), np.uint8)
    for k, a in arrays.items():
        payload[f"a.{k}"] = a
    buf = _io.BytesIO()
    np.savez(buf, **payload)
    return buf.getvalue()


def _open(path, data: bytes | None = None
          ) -> tuple[dict[str, Any], dict[str, np.ndarray], bytes, str]:
    if data is None:
        path = Path(path)
        if not path.exists():
            raise ModelFileError(f"model file {path} does not exist; fit one with "
                                 "`forecast fit`")
        if path.is_dir():
            raise ModelFileError(f"{path} is a folder, not a model file")
        try:
            with open(path, "rb") as fh:
                magic = fh.read(4)
        except OSError as exc:
            raise ModelFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    else:
        magic = bytes(data[:4])
    if magic != b"PK\x03\x04":
        raise ModelFileError(f"{path} is not a forecast model file (not a zip archive); "
                             "fit one with `forecast fit`")
    try:
        with np.load(path if data is None else _io.BytesIO(data), allow_pickle=False) as z:
            names = list(z.files)
            if "manifest" not in names or "checksum" not in names:
                raise ModelFileError(f"{path} is not a forecast model file (no manifest); "
                                     "fit one with `forecast fit`")
            entries = {n: z.zip.getinfo(n + ".npy").file_size for n in names}
            if entries["manifest"] > _MAX_MANIFEST:
                raise ModelFileError(f"{path}: the manifest is implausibly large")
            mbytes = bytes(z["manifest"].tobytes())
            checksum = bytes(z["checksum"].tobytes()).decode("ascii", "replace")
            manifest = _parse_manifest(mbytes, path)
            arrays = {}
            declared = manifest["arrays"]
            for n in names:
                if n in ("manifest", "checksum"):
                    continue
                if not n.startswith("a.") or n[2:] not in declared:
                    raise ModelFileError(f"{path}: unexpected entry {n!r} not listed in the "
                                         "manifest (the file was modified)")
                spec = declared[n[2:]]
                limit = 16 * (int(np.prod(spec.get("shape") or [1])) + 16) + 1024
                if entries[n] > limit:
                    raise ModelFileError(f"{path}: array {n[2:]!r} is larger than its "
                                         "declared shape (the file was modified)")
                arrays[n[2:]] = z[n]
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as exc:
        raise ModelFileError(f"{path} is truncated, damaged or not a model file ({exc}); "
                             "save it again with `forecast fit`") from None
    except ValueError as exc:  # object arrays (pickles) and malformed .npy headers
        raise ModelFileError(f"{path} holds data that is not a plain array ({exc}); "
                             "model files never contain pickles") from None
    return manifest, arrays, mbytes, checksum


def _parse_manifest(mbytes: bytes, path) -> dict[str, Any]:
    try:
        manifest = json.loads(mbytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: the manifest is not valid JSON ({exc}); the file is "
                             "damaged") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelFileError(f"{path} is not a forecast model file (format "
                             f"{manifest.get('format') if isinstance(manifest, dict) else None!r})")
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise ModelFileError(f"{path}: the manifest has no integer format_version")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{path} uses model file format {version}, written by forecast "
            f"{manifest.get('package_version', '?')}; this forecast {__version__} reads format "
            f"{FORMAT_VERSION} and older: upgrade forecast (pip install -U forecast)")
    if version < 1:
        raise ModelFileError(f"{path}: format_version {version} is not valid")
    missing = [k for k in _REQUIRED if k not in manifest]
    if missing:
        raise ModelFileError(f"{path}: the manifest lacks {missing}; the file is damaged")
    if not isinstance(manifest["arrays"], dict) or not isinstance(manifest["model"], dict) \
            or not isinstance(manifest["model"].get("state"), dict):
        raise ModelFileError(f"{path}: the manifest's model or arrays entry is malformed")
    return manifest


def read_manifest(path) -> dict[str, Any]:
    """The manifest of a model file, verified like :func:`load_model` does."""
    return load_model(path).manifest


def load_model(path) -> ModelFile:
    """Read and verify a model file (see the module docstring) and rebuild its model."""
    return _load(path, None)


def load_model_bytes(data: bytes, label: str = "model file") -> ModelFile:
    """`load_model` for the bytes of a model file (`dump_model`); `label` names it in
    error messages."""
    return _load(label, bytes(data))


def _load(path, data: bytes | None) -> ModelFile:
    from forecast.models import model_from_state

    manifest, arrays, mbytes, checksum = _open(path, data)
    if _digest(mbytes, arrays) != checksum:
        raise ModelFileError(f"{path}: checksum mismatch: the manifest or the weights were "
                             "modified after saving; refit or restore the file")
    declared = manifest["arrays"]
    for name, spec in declared.items():
        if name not in arrays:
            raise ModelFileError(f"{path}: array {name!r} listed in the manifest is missing")
        a = arrays[name]
        if a.dtype.name != spec.get("dtype") or a.dtype.name not in _ALLOWED_DTYPES:
            raise ModelFileError(f"{path}: array {name!r} has dtype {a.dtype}, the manifest "
                                 f"says {spec.get('dtype')}")
        if list(a.shape) != list(spec.get("shape", [])):
            raise ModelFileError(f"{path}: array {name!r} has shape {list(a.shape)}, the "
                                 f"manifest says {spec.get('shape')}")
    model = model_from_state(manifest["model"]["state"], arrays)
    return ModelFile(model, manifest, Path(path), arrays)


# ---- new data against a saved model ----------------------------------------------------
def check_new_data(manifest: dict[str, Any], dataset) -> None:
    """Raise `DataError` unless `dataset` can feed the model of `manifest`: the same
    target and covariate columns, the same frequency and no gap after the training end
    (the new rows must start at or before the first step after it)."""
    fp = manifest.get("data")
    state = manifest["model"]["state"]
    fitted = state.get("fitted") or {}
    where = f"{dataset.report.source}"
    columns = list(fitted.get("columns_") or (fp or {}).get("target") or [])
    if columns:
        from forecast.transforms import CALENDAR_FEATURES

        calendar = {CALENDAR_FEATURES[c] for c in (fitted.get("calendar_") or ())
                    if c in CALENDAR_FEATURES}
        have = set(map(str, dataset.frame.columns))
        need = [c for c in columns[1:] if c not in have and c.rsplit("_", 1)[0] not in calendar]
        if need:
            raise DataError(f"{where} lacks column(s) {need} that the model was fitted with; "
                            f"it has {list(dataset.columns)}: give data with the same columns")
    freq = fitted.get("freq_") or (fp or {}).get("frequency")
    if freq and dataset.freq.alias != freq:
        raise DataError(f"{where} has frequency {dataset.freq.alias!r} ({dataset.freq.name}) "
                        f"but the model was fitted on {freq!r} data; resample the data to "
                        f"{freq!r} or fit a new model")
    if not fp:
        return
    from forecast.data import Frequency
    import pandas as pd

    grid = Frequency(freq or dataset.freq.alias)
    train_last = fp.get("last_timestamp") or {}
    b = dataset.bounds
    for i, uid in enumerate(dataset.ids):
        key = str(uid) if str(uid) in train_last else (
            next(iter(train_last)) if len(train_last) == 1 and dataset.n_series == 1 else None)
        if key is None:
            continue
        end = pd.Timestamp(train_last[key])
        first = pd.Timestamp(dataset.frame[dataset.time_col].iloc[b[i]])
        if first.tz is None and end.tz is not None:
            first = first.tz_localize(end.tz)
        nxt = grid.future(end, 1)[0]
        if first > nxt:
            raise DataError(f"{where} starts at {first} but the training data ended at {end}; "
                            f"the rows from {nxt} are missing (a gap after the training "
                            "end): include them or fit a new model")
