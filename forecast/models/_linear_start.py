"""The linear start of a recurrent forecaster (`RNNForecaster` with ``highway_init="ols"``):
the least-squares model its training begins from, so that the recurrent part only has
to learn what a linear model cannot.

For every output step ``s`` the start is a ridge regression of the normalised target on

* the window's normalised last ``A`` target values (the highway; NLinear's inputs),
* optionally the window's *level* (its normalisation offset, in the series' scaled
  units: the last value with ``normalize="last"``). A window that is normalised by its
  last value has lost where it sits; with the level and the calendar terms a linear
  model can pull a forecast back towards the seasonal mean (a cold spell in July warms
  up, a warm one does not last), which the lags alone cannot,
* optionally the known-future covariates of step ``s`` (calendar sine/cosine terms and
  the user's known covariates).

Which of these enter and how strongly the coefficients are shrunk (`ALPHAS`) is chosen
by the mean squared error on the validation windows, so a random-walk price series,
where a level term would only fit noise, keeps the plain lags. Columns are standardised
on the training windows before shrinking and the intercept is never shrunk.

**The random walk is the null hypothesis.** With ``null_z`` (the recurrent models pass
theirs, 2 by default) the chosen start is kept only when it beats persistence (the last
value, which is the zero forecast in these units) by at least ``null_z`` standard errors
of the gain in mean squared error (`blocks_z`), out of sample on every window: the
training and validation windows scored by blocked cross-validation of the chosen
choice (NULL_FOLDS contiguous runs in time order, each by the same choice refitted on the
other windows less a horizon of windows on either side, `_cv_gains`); a z of at least
SETTLED times ``null_z`` on the validation windows alone settles it without the five
refits. Otherwise the start *is* persistence: zero coefficients and intercept, and the
recurrent models train no network from it (`random_walk_note`). The validation windows
alone (a fifth of the data) were too few: on short price files they passed a noise fit
in 4 of 54 cases and on short weather files they failed real ones; the training windows
give the test four times the data. On a price series a ridge fit
finds a drift (its unshrunk intercept) or a little mean reversion that a validation span
favours by chance, and such starts (and networks trained from them) ended 2-9 % worse
than the naive forecast on stock files the defaults never saw; on weather and energy
series the start beats persistence by far more than two standard errors, so nothing
changes there.

All steps share the lag and level columns, so the solve uses one eigendecomposition of
their Gram matrix per candidate and a ``K x K`` Schur complement per step for the known
covariates: a few milliseconds even at a horizon of 720.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ALPHAS", "LinearStart", "fit_linear_start", "set_linear_start", "blocks_z", "window_gains", "persistence_start", "random_walk_note",
           "MIN_BLOCKS", "NULL_FOLDS", "SETTLED"]

#: ridge strengths tried, per window, on standardised columns
ALPHAS = (1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
#: fewest blocks of windows `blocks_z` needs to estimate a standard error
MIN_BLOCKS = 4
#: contiguous cross-validation folds of the windows in the random-walk test
NULL_FOLDS = 5
#: a z on the validation windows alone of this many times ``null_z`` settles the test
#: without the cross-validation (five refits; 6 % of a long fit's time)
SETTLED = 2.0


@dataclass
class LinearStart:
    """Coefficients in the units the network sees, per output step ``s``: ``lags (S, A)``,
    ``level (S,)`` or None, ``known (S, K)`` or None, ``intercept (S,)``; with the choice
    that was made (``alpha``) and its validation MSE (None without validation windows)."""

    lags: np.ndarray
    level: np.ndarray | None
    known: np.ndarray | None
    intercept: np.ndarray
    alpha: float
    val_mse: float | None
    random_walk: bool = False  # the start is persistence: the chosen fit was not better
    z: float | None = None  # the chosen fit's gain over persistence (`blocks_z`)
    z_from: str | None = None  # "validation" windows or "cross-validation"

    def summary(self) -> dict:
        return {"level": self.level is not None, "known": self.known is not None,
                "alpha": float(self.alpha),
                "val_mse": None if self.val_mse is None else float(self.val_mse),
                "random_walk": bool(self.random_walk),
                "z": None if self.z is None else round(float(self.z), 3), "z_from": self.z_from}


def window_gains(y, pred) -> np.ndarray:
    """Per window, how much `pred (n, S)` beats the zero forecast (persistence, in units
    where the window's last value is 0) on `y (n, S)`: ``mean(y**2) - mean((y - pred)**2)``."""
    y = np.asarray(y, np.float64)
    return (y * y).mean(1) - ((y - np.asarray(pred, np.float64)) ** 2).mean(1)


def blocks_z(parts, block: int) -> float | None:
    """How many standard errors the mean gain lies above zero: `parts` are arrays of
    per-window gains (`window_gains`) of runs of consecutive windows; each is cut into
    blocks of `block` windows (windows one step apart share most of their truths, so
    single windows are far from independent; a part's earliest windows that do not fill
    a block are left out) and the standard error comes from the block means. None with
    fewer than MIN_BLOCKS blocks; positive when the forecasts are better."""
    block = max(int(block), 1)
    means = []
    for d in parts:
        nb = len(d) // block
        if nb:
            means.append(np.asarray(d[len(d) - nb * block:]).reshape(nb, block).mean(1))
    m = np.concatenate(means) if means else np.zeros(0)
    if len(m) < MIN_BLOCKS:
        return None
    se = m.std(ddof=1) / np.sqrt(len(m))
    if not np.isfinite(se) or se <= 0:
        return 0.0 if not m.mean() > 0 else float("inf")
    return float(m.mean() / se)


def _predict_start(st: "LinearStart", hw, off, F) -> np.ndarray:
    """`st`'s forecasts ``(n, S)`` for normalised lags `hw`, levels `off` and known
    covariates `F` (read in blocks)."""
    out = np.asarray(hw, np.float64) @ st.lags.T + st.intercept
    if st.level is not None:
        out += np.asarray(off, np.float64)[:, None] * st.level
    if st.known is not None:
        S = out.shape[1]
        for a in range(0, len(out), _Known.BLOCK):
            f = np.asarray(F[a:a + _Known.BLOCK, :S], np.float64)
            out[a:a + len(f)] += np.einsum("nsk,sk->ns", f, st.known)
    return out


class _Stacked:
    """Several arrays read as one, stacked along the rows, without copying them: slicing
    rows (``x[a:b]`` or ``x[a:b, ...]``) copies just those rows. The known covariates of
    the training and validation windows can be large (windows x horizon x covariates)."""

    def __init__(self, parts):
        self.parts = [p for p in parts if p is not None]
        self.ends = np.cumsum([len(p) for p in self.parts])
        self.shape = (int(self.ends[-1]),) + tuple(self.parts[0].shape[1:])

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        rows, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        a, b, _ = rows.indices(len(self))
        out, start = [], 0
        for p, end in zip(self.parts, self.ends):
            lo, hi = max(a, start), min(b, end)
            if lo < hi:
                out.append(np.asarray(p[lo - start:hi - start]))
            start = end
        x = np.concatenate(out) if len(out) > 1 else out[0]
        return x[(slice(None),) + rest] if rest else x


def _cv_forecasts(hw, off, F, Y, st: "LinearStart", block: int, folds: int) -> list:
    """Blocked cross-validation of `st`'s choice (level, known covariates, ridge
    strength) over the windows ``hw, off, F, Y`` (in time order: the training windows,
    then the validation ones): `folds` contiguous runs ``[a, b)``, each forecast by that
    choice refitted on the other windows less the `block` windows on either side of the
    run (their truths overlap the run's). A list of ``(a, b, forecasts (b - a, S))``."""
    n, S = Y.shape
    A = hw.shape[1]
    edges = np.linspace(0, n, folds + 1).astype(np.int64)
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        rows = np.ones(n, bool)
        rows[max(a - block, 0):min(b + block, n)] = False
        if b - a < block or rows.sum() < A + 2:
            continue
        Yr = Y[rows]
        prob = _Problem(_columns(hw[rows], off[rows], st.level is not None), Yr)
        kn = _Known(F, Yr - Yr.mean(0), rows) if st.known is not None else None
        bc, bf = prob.solve(st.alpha, kn)
        fit = prob.unscale(bc, bf, A, st.level is not None, st.alpha, None, kn)
        out.append((int(a), int(b), _predict_start(fit, hw[a:b], off[a:b],
                                                   None if F is None else F[a:b])))
    return out


def _cv_gains(hw, off, F, Y, st: "LinearStart", block: int, folds: int) -> list:
    """Per-window gains over persistence (`window_gains`) of each run of
    `_cv_forecasts`."""
    return [window_gains(Y[a:b], p) for a, b, p in _cv_forecasts(hw, off, F, Y, st, block,
                                                                  folds)]


def persistence_start(S: int, A: int, z: float | None, val_mse: float | None,
                      z_from: str | None = None) -> LinearStart:
    """The random walk as a start: every coefficient and the intercept at zero."""
    return LinearStart(np.zeros((S, A)), None, None, np.zeros(S), 0.0, val_mse,
                       random_walk=True, z=z, z_from=z_from)


def _std(a, axis=0):
    s = a.std(axis=axis)
    return np.where(s > 1e-8, s, 1.0)


class _Known:
    """Standardised statistics of the known covariates ``F (n, S, K)`` that do not
    depend on the other columns (computed once for every candidate). ``F`` can be large
    (many windows times a long horizon), so it is read in blocks of rows, never copied
    whole."""

    BLOCK = 4096

    def __init__(self, F, Yc, rows=None):
        S, K = F.shape[1:]
        self.rows = rows  # a boolean mask of F's rows that the statistics are over
        s1, s2, n = np.zeros((S, K)), np.zeros((S, K)), 0
        for _, f in self._raw(F, rows):
            s1 += f.sum(0)
            s2 += (f * f).sum(0)
            n += len(f)
        self.F, self.fm = F, s1 / n
        var = np.maximum(s2 / n - self.fm ** 2, 0.0)
        self.fs = np.where(var > 1e-16, np.sqrt(var), 1.0)
        self.Gff, self.Fy = np.zeros((S, K, K)), np.zeros((S, K))
        for a, fc in self.blocks(F, rows):
            self.Gff += np.einsum("nsk,nsl->skl", fc, fc)
            self.Fy += np.einsum("nsk,ns->sk", fc, Yc[a:a + len(fc)])
        self.Gff /= n
        self.Fy /= n

    def _raw(self, F, rows):
        """``(first row among the selected, float64 block)`` of `F`'s `rows` (all: None)."""
        j = 0
        for a in range(0, len(F), self.BLOCK):
            f = np.asarray(F[a:a + self.BLOCK], np.float64)
            if rows is not None:
                f = f[rows[a:a + self.BLOCK]]
            yield j, f
            j += len(f)

    def blocks(self, F, rows=None):
        """``(first row, standardised block)`` of `F` (of its `rows`), block after block."""
        for j, f in self._raw(F, rows):
            yield j, (f - self.fm) / self.fs

    def cross(self, Cc):
        """``Cc.T @ F_std / n`` as ``(p, S, K)`` (``Cc`` holds the selected rows only)."""
        n, (S, K) = len(Cc), self.fm.shape
        G = np.zeros((Cc.shape[1], S * K))
        for a, fc in self.blocks(self.F, self.rows):
            G += Cc[a:a + len(fc)].T @ fc.reshape(len(fc), S * K)
        return (G / n).reshape(-1, S, K)


class _Problem:
    """Standardised training statistics of one candidate column set ``C``. `solve` and
    `predict` take the known covariates' `_Known` statistics or None; the cross block
    with ``C`` is computed on first use."""

    def __init__(self, C, Y, stats=None):
        n = len(C)
        if stats is None:
            self.cm, self.cs = C.mean(0), _std(C)
            self.Cc = (C - self.cm) / self.cs
        else:  # the first columns of a wider set's statistics (`first`)
            self.cm, self.cs, self.Cc = stats
        self.ym = Y.mean(0)
        self.e, self.V = np.linalg.eigh(self.Cc.T @ self.Cc / n)
        self.VtCy = self.V.T @ (self.Cc.T @ (Y - self.ym) / n)  # (p, S)
        self._VtGcf = None

    def first(self, p: int, Y) -> "_Problem":
        """The problem on the first `p` columns only. Every column's mean, spread and
        standardised values are computed column by column, so they are the numbers a
        fresh `_Problem` on those columns gives (tested to rounding; the same bits with
        OpenBLAS here). This spares standardising the large lag matrix twice when the
        level column is a candidate."""
        return _Problem(self.Cc[:, :p], Y, (self.cm[:p], self.cs[:p], self.Cc[:, :p]))

    def solve(self, alpha, known: _Known | None = None):
        """Coefficients on standardised columns: ``bc (p, S)``, ``bf (S, K)`` or None."""
        d = 1.0 / (np.maximum(self.e, 0.0) + alpha)
        if known is None:
            return self.V @ (d[:, None] * self.VtCy), None
        if self._VtGcf is None:
            S, K = known.fm.shape
            self._VtGcf = (self.V.T @ known.cross(self.Cc).reshape(-1, S * K)).reshape(-1, S, K)
        VtGcf, K = self._VtGcf, known.Gff.shape[1]
        # Schur complement of the shared block: (Gff + a) - Gfc M Gcf, M = (Gcc + a)^-1
        DGcf = d[:, None, None] * VtGcf
        schur = known.Gff + alpha * np.eye(K) - np.einsum("psk,psl->skl", VtGcf, DGcf)
        rhs = known.Fy - np.einsum("psk,ps->sk", DGcf, self.VtCy)
        bf = np.linalg.solve(schur, rhs[:, :, None])[:, :, 0]
        bc = self.V @ (d[:, None] * self.VtCy - np.einsum("psk,sk->ps", DGcf, bf))
        return bc, bf

    def predict(self, bc, bf, C, F, known: _Known | None = None):
        out = ((C - self.cm) / self.cs) @ bc + self.ym
        if bf is not None:
            for a, fc in known.blocks(F):
                out[a:a + known.BLOCK] += np.einsum("nsk,sk->ns", fc, bf)
        return out

    def unscale(self, bc, bf, A, with_level, alpha, val_mse, known=None) -> LinearStart:
        coef = bc / self.cs[:, None]  # (p, S)
        intercept = self.ym - self.cm @ coef
        coef_known = None
        if bf is not None:
            coef_known = bf / known.fs
            intercept = intercept - np.einsum("sk,sk->s", known.fm, coef_known)
        return LinearStart(coef[:A].T.copy(), coef[A].copy() if with_level else None,
                           coef_known, intercept, alpha, val_mse)


def _columns(hw, off, with_level):
    hw = np.asarray(hw, np.float64)
    return np.concatenate([hw, np.asarray(off, np.float64).reshape(-1, 1)], axis=1) \
        if with_level else hw


def random_walk_note(record: dict, z_min: float | None, hold: bool, direction: bool) -> None:
    """Write into the start's `record` (`LinearStart.summary`) what a model whose start
    is the random walk does: ``last_value`` (with `hold`: its point forecast is the last
    value; no network was trained from it but a direction head) and a plain ``note``.
    Why no network: it sees the same inputs as the linear start, and a validation span
    cannot tell a gain that no linear model finds from luck (a network that had to beat
    persistence by 3 standard errors on the validation windows still passed on a warm
    refit of GOOGL at z = 3.005, then lost 8.7 % to naive on the folds after it)."""
    how = {"cross-validation": "cross-validated over all windows",
           "validation": "on the validation windows"}.get(record.get("z_from"), "out of sample")
    why = ("too few windows to test" if record.get("z") is None else
           f"z = {record['z']:.2f} < {z_min:g}, {how}")
    record["last_value"] = bool(hold)
    if hold:
        extra = "; only its direction head was trained" if direction else ""
        record["note"] = (f"forecasts the last value (a random walk): no linear start beat "
                          f"it by more than noise ({why}), so no network was trained from "
                          f"it{extra}")
    else:
        record["note"] = (f"its linear start is the random walk: none beat it by more than "
                          f"noise ({why}); the quantile head was trained from it")


def fit_linear_start(hw, off, F, Y, validation=None, levels=(False, True),
                     knowns=(False, True), alphas=ALPHAS, null_z: float | None = None,
                     block: int | None = None) -> LinearStart:
    """Ridge start from training windows: ``hw (n, A)`` normalised lags, ``off (n,)`` the
    window levels, ``F (n, >=S, K)`` or None the known covariates, ``Y (n, S)`` the
    normalised targets. ``validation`` is the same tuple ``(hw, off, F, Y)`` of later
    windows; every combination of `levels`, `knowns` (ignored without ``F``) and `alphas`
    is scored on it by MSE and the best is returned. Without validation windows the first
    option of each is taken, with the middle strength of `alphas`. With `null_z` the
    choice must beat persistence out of sample (every training and validation window, by
    blocked cross-validation, `_cv_gains`) by that many standard errors
    (`blocks_z`, blocks of `block` windows, by default the number of steps) or the start
    is `persistence_start`; too few windows to test keep the choice."""
    Y = np.asarray(Y, np.float64)
    S = Y.shape[1]
    A = hw.shape[1]
    if F is not None:
        F = F[:, :S]  # a view: _Known reads it in blocks
    else:
        knowns = (False,)
    if validation is None:  # nothing to choose on: the first terms, a middling shrinkage
        levels, knowns, alphas = levels[:1], knowns[:1], (alphas[len(alphas) // 2],)
    known_stats = _Known(F, Y - Y.mean(0)) if True in knowns else None
    if validation is not None:
        hv, ov, Fv, Yv = validation
        Fv = None if Fv is None else Fv[:, :S]
    best = None
    wide = _Problem(_columns(hw, off, True), Y) if True in levels else None
    for with_level in levels:
        # one eigendecomposition per column set; the lags alone are the level set's first
        # columns, standardised once
        prob = wide if with_level else (wide.first(A, Y) if wide is not None
                                        else _Problem(_columns(hw, off, False), Y))
        Cv = _columns(hv, ov, with_level) if validation is not None else None
        for with_known in knowns:
            kn = known_stats if with_known else None
            for alpha in alphas:
                bc, bf = prob.solve(alpha, kn)
                mse, pred = None, None
                if validation is not None:
                    pred = prob.predict(bc, bf, Cv, Fv, kn)
                    mse = float(np.mean((pred - Yv) ** 2))
                    if best is not None and not mse < best[0] - 1e-12:  # NaN never wins
                        continue
                best = (mse if mse is not None else 0.0,
                        prob.unscale(bc, bf, A, with_level, alpha, mse, kn), pred)
    start = best[1]
    if null_z is not None and validation is not None:
        block = S if block is None else int(block)
        start.z, start.z_from = blocks_z([window_gains(Yv, best[2])], block), "validation"
        if start.z is None or start.z < SETTLED * null_z:
            both = (np.concatenate([np.asarray(hw, np.float64), np.asarray(hv, np.float64)]),
                    np.concatenate([np.asarray(off, np.float64), np.asarray(ov, np.float64)]),
                    None if start.known is None else _Stacked([F, Fv]),
                    np.concatenate([Y, np.asarray(Yv, np.float64)]))
            start.z = blocks_z(_cv_gains(*both, start, block, NULL_FOLDS), block)
            start.z_from = "cross-validation"
        if start.z is not None and not start.z >= null_z:
            return persistence_start(S, A, start.z, float(np.mean(np.asarray(Yv) ** 2)),
                                     start.z_from)
    return start


def set_linear_start(v: dict, start: LinearStart, A: int, Q: int, strategy: str) -> None:
    """Put `start` into a `SeqNet`'s head views `v`: the highway (lags, then the level
    when the net has one), each step's own known covariates in ``Wk`` (``direct``: block
    diagonal; ``recursive``: step 0), the intercept in the bias and the recurrent head
    weights ``W`` at zero, so the network starts as the linear model."""
    v["Wa"][:, :A] = start.lags
    if start.level is not None:
        v["Wa"][:, A] = start.level
    S = len(start.intercept)
    if "Wk" in v:
        v["Wk"][...] = 0.0
        if start.known is not None:
            K = start.known.shape[1]
            for s in range(S):  # step s reads its own covariates only
                v["Wk"][s * Q:(s + 1) * Q, s * K:(s + 1) * K] = start.known[s]
    if strategy == "direct":
        v["b"][...] = np.repeat(start.intercept, Q)
    else:
        v["b"][...] = start.intercept.mean()
    v["W"][...] = 0.0
