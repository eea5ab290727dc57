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

All steps share the lag and level columns, so the solve uses one eigendecomposition of
their Gram matrix per candidate and a ``K x K`` Schur complement per step for the known
covariates: a few milliseconds even at a horizon of 720.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ALPHAS", "LinearStart", "fit_linear_start", "set_linear_start"]

#: ridge strengths tried, per window, on standardised columns
ALPHAS = (1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


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

    def summary(self) -> dict:
        return {"level": self.level is not None, "known": self.known is not None,
                "alpha": float(self.alpha),
                "val_mse": None if self.val_mse is None else float(self.val_mse)}


def _std(a, axis=0):
    s = a.std(axis=axis)
    return np.where(s > 1e-8, s, 1.0)


class _Problem:
    """Standardised training statistics of one candidate column set. The known
    covariates ``F (n, S, K)`` can be large (many windows times a long horizon), so they
    are read in blocks of rows, never copied whole."""

    BLOCK = 4096

    def __init__(self, C, F, Y):
        n = len(C)
        self.cm, self.cs = C.mean(0), _std(C)
        self.ym = Y.mean(0)
        Cc = (C - self.cm) / self.cs
        Yc = Y - self.ym
        self.e, self.V = np.linalg.eigh(Cc.T @ Cc / n)
        self.VtCy = self.V.T @ (Cc.T @ Yc / n)  # (p, S)
        self.F = F is not None
        if self.F:
            S, K = F.shape[1], F.shape[2]
            s1, s2 = np.zeros((S, K)), np.zeros((S, K))
            for a in range(0, n, self.BLOCK):
                f = np.asarray(F[a:a + self.BLOCK], np.float64)
                s1 += f.sum(0)
                s2 += (f * f).sum(0)
            self.fm = s1 / n
            var = np.maximum(s2 / n - self.fm ** 2, 0.0)
            self.fs = np.where(var > 1e-16, np.sqrt(var), 1.0)
            Gcf = np.zeros((C.shape[1], S * K))
            self.Gff, self.Fy = np.zeros((S, K, K)), np.zeros((S, K))
            for a in range(0, n, self.BLOCK):
                fc = self._scaled(F[a:a + self.BLOCK])
                Gcf += Cc[a:a + self.BLOCK].T @ fc.reshape(len(fc), S * K)
                self.Gff += np.einsum("nsk,nsl->skl", fc, fc)
                self.Fy += np.einsum("nsk,ns->sk", fc, Yc[a:a + self.BLOCK])
            self.VtGcf = (self.V.T @ (Gcf / n)).reshape(-1, S, K)
            self.Gff /= n
            self.Fy /= n

    def _scaled(self, f):
        return (np.asarray(f, np.float64) - self.fm) / self.fs

    def solve(self, alpha):
        """Coefficients on standardised columns: ``bc (p, S)``, ``bf (S, K)`` or None."""
        d = 1.0 / (np.maximum(self.e, 0.0) + alpha)
        if not self.F:
            return self.V @ (d[:, None] * self.VtCy), None
        K = self.Gff.shape[1]
        # Schur complement of the shared block: (Gff + a) - Gfc M Gcf, M = (Gcc + a)^-1
        DGcf = d[:, None, None] * self.VtGcf
        schur = self.Gff + alpha * np.eye(K) - np.einsum("psk,psl->skl", self.VtGcf, DGcf)
        rhs = self.Fy - np.einsum("psk,ps->sk", DGcf, self.VtCy)
        bf = np.linalg.solve(schur, rhs[:, :, None])[:, :, 0]
        bc = self.V @ (d[:, None] * self.VtCy - np.einsum("psk,sk->ps", DGcf, bf))
        return bc, bf

    def predict(self, bc, bf, C, F):
        out = ((C - self.cm) / self.cs) @ bc + self.ym
        if bf is not None:
            for a in range(0, len(out), self.BLOCK):
                out[a:a + self.BLOCK] += np.einsum("nsk,sk->ns", self._scaled(F[a:a + self.BLOCK]), bf)
        return out

    def unscale(self, bc, bf, A, with_level, alpha, val_mse) -> LinearStart:
        coef = bc / self.cs[:, None]  # (p, S)
        intercept = self.ym - self.cm @ coef
        known = None
        if bf is not None:
            known = bf / self.fs
            intercept = intercept - np.einsum("sk,sk->s", self.fm, known)
        return LinearStart(coef[:A].T.copy(), coef[A].copy() if with_level else None, known,
                           intercept, alpha, val_mse)


def _columns(hw, off, with_level):
    hw = np.asarray(hw, np.float64)
    return np.concatenate([hw, np.asarray(off, np.float64).reshape(-1, 1)], axis=1) \
        if with_level else hw


def fit_linear_start(hw, off, F, Y, validation=None, levels=(False, True),
                     knowns=(False, True), alphas=ALPHAS) -> LinearStart:
    """Ridge start from training windows: ``hw (n, A)`` normalised lags, ``off (n,)`` the
    window levels, ``F (n, >=S, K)`` or None the known covariates, ``Y (n, S)`` the
    normalised targets. ``validation`` is the same tuple ``(hw, off, F, Y)`` of later
    windows; every combination of `levels`, `knowns` (ignored without ``F``) and `alphas`
    is scored on it by MSE and the best is returned. Without validation windows the first
    option of each is taken, with the middle strength of `alphas`."""
    Y = np.asarray(Y, np.float64)
    S = Y.shape[1]
    A = hw.shape[1]
    if F is not None:
        F = F[:, :S]  # a view: _Problem reads it in blocks
    else:
        knowns = (False,)
    if validation is None:  # nothing to choose on: the first terms, a middling shrinkage
        levels, knowns, alphas = levels[:1], knowns[:1], (alphas[len(alphas) // 2],)
    best = None
    for with_level in levels:
        C = _columns(hw, off, with_level)
        for with_known in knowns:
            prob = _Problem(C, F if with_known else None, Y)
            if validation is not None:
                hv, ov, Fv, Yv = validation
                Cv = _columns(hv, ov, with_level)
                Fv = Fv[:, :S] if with_known else None
            for alpha in alphas:
                bc, bf = prob.solve(alpha)
                mse = None
                if validation is not None:
                    mse = float(np.mean((prob.predict(bc, bf, Cv, Fv) - Yv) ** 2))
                    if best is not None and not mse < best[0] - 1e-12:  # NaN never wins
                        continue
                best = (mse if mse is not None else 0.0,
                        prob.unscale(bc, bf, A, with_level, alpha, mse))
    return best[1]


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
