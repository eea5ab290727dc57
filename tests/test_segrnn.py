"""SegRNN (`forecast.models.segrnn`, `forecast.models._segnet`): finite-difference gradient
checks of every piece and of the whole network (float64), a plain-numpy reference of the
forward pass, a PyTorch cross-check when torch is installed, seeded dropout, channels,
early stopping, model files and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import pytest

from forecast import io
from forecast.errors import ConfigError, DataError
from forecast.models import SegRNNForecaster, make_model, model_from_state
from forecast.models import _segnet
from forecast.models._segnet import (
    SegConfig,
    SegNet,
    dropout_mask,
    embed_backward,
    embed_forward,
    linear_backward,
    linear_forward,
)
import reference as ref  # tests/reference.py (tests/ is on sys.path under pytest)

ROOT = Path(__file__).resolve().parent.parent


def fd_grad(f, a, eps=1e-6):
    """Central finite differences of scalar ``f()`` with respect to every entry of ``a``."""
    g = np.zeros_like(a)
    flat, gf = a.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        hi = f()
        flat[i] = old - eps
        lo = f()
        flat[i] = old
        gf[i] = (hi - lo) / (2 * eps)
    return g


def close(a, b, tol=1e-7):
    scale = max(1.0, float(np.max(np.abs(b))))
    assert np.max(np.abs(a - b)) <= tol * scale, np.max(np.abs(a - b))


# ---- pieces ------------------------------------------------------------------------------
def test_embedding_gradient():
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((3, 4, 5))
    w, b = rng.standard_normal((6, 5)), rng.standard_normal(6)
    up = rng.standard_normal((3, 4, 6))
    loss = lambda: float(np.sum(embed_forward(xs, w, b)[0] * up))  # noqa: E731
    E, pre = embed_forward(xs, w, b)
    assert (E >= 0).all() and (pre < 0).any()  # the ReLU is active somewhere
    dw, db = embed_backward(up, pre, xs)
    close(dw, fd_grad(loss, w))
    close(db, fd_grad(loss, b))


def test_linear_and_dropout_gradient():
    rng = np.random.default_rng(1)
    z, w, b = rng.standard_normal((7, 4)), rng.standard_normal((3, 4)), rng.standard_normal(3)
    mask = dropout_mask(np.random.default_rng(2), z.shape, 0.4, np.float64)
    up = rng.standard_normal((7, 3))
    loss = lambda: float(np.sum(linear_forward(z * mask, w, b) * up))  # noqa: E731
    dzm, dw, db = linear_backward(up, z * mask, w)
    close(dzm * mask, fd_grad(loss, z))  # dropout backward: the same mask
    close(dw, fd_grad(loss, w))
    close(db, fd_grad(loss, b))


def test_dropout_mask_is_seeded_and_scaled():
    a = dropout_mask(np.random.default_rng(5), (200, 50), 0.25, np.float32)
    b = dropout_mask(np.random.default_rng(5), (200, 50), 0.25, np.float32)
    assert a.dtype == np.float32 and np.array_equal(a, b)
    assert set(np.unique(a)) == {0.0, np.float32(1 / 0.75)}
    assert abs((a == 0).mean() - 0.25) < 0.02
    assert dropout_mask(np.random.default_rng(5), (3, 3), 0.0, np.float32) is None


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("channel_id", [True, False])
def test_shared_decoder_step_is_the_cell_over_every_row(cell, channel_id):
    """The decoder's shared-state step against the plain one it replaces: the cell
    (`RecurrentNet`, one step) over ``N * m`` rows, row ``i * m + j`` with input
    ``[pos_j, chan_c]`` and window ``i``'s state. Same outputs, same parameter gradients,
    same gradient of the encoder state (float64, to rounding)."""
    from forecast.nn import RecurrentNet

    net = small_net(cell, channel_id, dropout=0.0)
    cfg, v = net.cfg, net.views()
    N, m, d = 5, cfg.n_out, cfg.n_hidden
    rng = np.random.default_rng(7)
    ch = np.array([0, 1, 1, 0, 1])
    h = rng.standard_normal((1, N, d))
    final = (h, rng.standard_normal((1, N, d))) if cell == "lstm" else h
    out, dcache = net._decode(v, final, ch, N, keep_cache=True)
    # the plain decoder: inputs and states repeated per segment
    pos = v["pos_emb"]
    rows = [np.concatenate([pos[j], v["channel_emb"][ch[i]]]) if channel_id else pos[j]
            for i in range(N) for j in range(m)]
    D = np.array(rows)[:, None, :]
    plain = RecurrentNet(cell, d, d, 1, 1, dtype="float64", seed=0)
    plain.params[:net.n_rnn] = net.params[:net.n_rnn]
    state = tuple(np.repeat(s, m, axis=1) for s in final) if cell == "lstm" else np.repeat(h, m, axis=1)
    _, fin, pcache = plain.forward_sequence(D, state=state)
    hy = (fin[0] if cell == "lstm" else fin)[0]
    close(out.reshape(N * m, d), hy, 1e-12)
    up = rng.standard_normal((N, m, d))
    grads = np.zeros_like(net.params)
    g = net.views(grads)
    dN = net._decode_backward(v, g, dcache, up)
    dstate = (up.reshape(1, N * m, d), np.zeros((1, N * m, d))) if cell == "lstm" else up.reshape(1, N * m, d)
    dD, d0, gp = plain.backward_sequence(pcache, np.zeros((N * m, 1, d)), dstate)
    close(grads[:net.n_rnn], gp[:net.n_rnn], 1e-12)
    dD = dD[:, 0, :].reshape(N, m, -1)
    close(g["pos_emb"], dD[:, :, :cfg.d_pos].sum(axis=0), 1e-12)
    if channel_id:
        per = dD[:, :, cfg.d_pos:].sum(axis=1)
        close(g["channel_emb"], np.array([per[ch == c].sum(axis=0) for c in range(2)]), 1e-12)
    for got, want in zip(dN if cell == "lstm" else (dN,), d0 if cell == "lstm" else (d0,)):
        close(got, want.reshape(1, N, m, d).sum(axis=2), 1e-12)


def test_prediction_in_row_blocks_gives_the_training_bits(monkeypatch):
    """A prediction-only pass decodes in blocks of rows with one cache buffer; rows never
    interact, so the forecasts are the training pass's bits."""
    net = small_net("gru", True, dropout=0.0)
    rng = np.random.default_rng(8)
    X = rng.standard_normal((7, 10))
    ch = np.array([0, 1, 1, 0, 1, 0, 0])
    want = net.forward(X, ch, keep_cache=True)[0]
    monkeypatch.setattr(_segnet, "_PREDICT_ROWS", 3)
    assert np.array_equal(net.forward(X, ch)[0], want)


# ---- the whole network -------------------------------------------------------------------
def small_net(cell="gru", channel_id=True, dropout=0.3, horizon=5, seed=1):
    cfg = SegConfig(cell, segment=3, n_seg=3, n_out=2, horizon=horizon, n_hidden=4,
                    n_channels=2, channel_id=channel_id, dropout=dropout, dtype="float64")
    return SegNet(cfg, seed)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("channel_id", [True, False])
def test_end_to_end_gradient(cell, channel_id):
    net = small_net(cell, channel_id)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 10))  # lookback 10: the last 9 steps are read
    ch = np.array([0, 1, 1, 0, 1])
    Y = rng.standard_normal((5, 5))
    mask = dropout_mask(np.random.default_rng(3), (5 * 2, 4), 0.3, np.float64)

    def loss():
        return 0.5 * float(np.sum((net.forward(X, ch, mask)[0] - Y) ** 2))

    yhat, cache = net.forward(X, ch, mask, keep_cache=True)
    grads = net.backward(cache, yhat - Y)
    num = fd_grad(loss, net.params)
    names = {k: v for k, v in net.views(num).items()}
    for name, g in net.views(grads).items():
        close(g, names[name])  # per parameter group, so a failure names the piece


def test_forward_matches_a_plain_numpy_reference():
    """Step by step, one window at a time, from the documented equations."""
    net = small_net("gru", True, dropout=0.0, horizon=5)
    v = net.views()
    rng = np.random.default_rng(4)
    X = rng.standard_normal((3, 10))
    ch = np.array([1, 0, 1])
    got = net.forward(X, ch)[0]
    w = (v["rnn.weight_ih_l0"], v["rnn.weight_hh_l0"], v["rnn.bias_ih_l0"], v["rnn.bias_hh_l0"])
    for i in range(3):
        segs = X[i, 1:].reshape(3, 3)
        h = np.zeros(4)
        for s in segs:
            e = np.maximum(v["emb.weight"] @ s + v["emb.bias"], 0)
            h = ref.gru_step(e, h, *w)
        out = []
        for j in range(2):
            dec_in = np.concatenate([v["pos_emb"][j], v["channel_emb"][ch[i]]])
            hj = ref.gru_step(dec_in, h, *w)
            out.append(v["out.weight"] @ hj + v["out.bias"])
        close(got[i], np.concatenate(out)[:5], 1e-12)


def _torch_segrnn(torch, net, cell):
    """The reference architecture in PyTorch with `net`'s weights (float64)."""
    cfg, v = net.cfg, net.views()
    t = {k: torch.tensor(a, requires_grad=True) for k, a in v.items()}
    rnn_cls = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}[cell]
    rnn = rnn_cls(cfg.n_hidden, cfg.n_hidden, batch_first=True).double()
    with torch.no_grad():
        for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(rnn, k).copy_(t["rnn." + k])

    def forward(x, ch, mask):
        N = x.shape[0]
        xs = x[:, x.shape[1] - cfg.n_seg * cfg.segment:].reshape(N, cfg.n_seg, cfg.segment)
        e = torch.relu(xs @ t["emb.weight"].T + t["emb.bias"])
        _, hn = rnn(e)
        m = cfg.n_out
        pos = t["pos_emb"].unsqueeze(0).expand(N, m, -1)
        if cfg.channel_id:
            chan = t["channel_emb"][ch].unsqueeze(1).expand(N, m, -1)
            pos = torch.cat([pos, chan], dim=-1)
        dec_in = pos.reshape(N * m, 1, cfg.n_hidden)
        if cell == "lstm":
            h0 = tuple(s.repeat_interleave(m, dim=1) for s in hn)
            _, (hy, _) = rnn(dec_in, h0)
        else:
            _, hy = rnn(dec_in, hn.repeat_interleave(m, dim=1))
        z = hy[0] * mask
        y = z @ t["out.weight"].T + t["out.bias"]
        return y.reshape(N, m * cfg.segment)[:, :cfg.horizon]
    return rnn, t, forward


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_torch_cross_check(cell):
    torch = pytest.importorskip("torch")
    net = small_net(cell, True, dropout=0.3, horizon=5)
    rng = np.random.default_rng(6)
    X = rng.standard_normal((6, 10))
    ch = np.array([0, 1, 0, 1, 1, 0])
    Y = rng.standard_normal((6, 5))
    mask = dropout_mask(np.random.default_rng(7), (12, 4), 0.3, np.float64)
    yhat, cache = net.forward(X, ch, mask, keep_cache=True)
    grads = net.views(net.backward(cache, 2 * (yhat - Y) / Y.size))
    rnn, t, forward = _torch_segrnn(torch, net, cell)
    ty = forward(torch.tensor(X), torch.tensor(ch), torch.tensor(mask))
    loss = torch.mean((ty - torch.tensor(Y)) ** 2)
    loss.backward()
    close(yhat, ty.detach().numpy(), 1e-12)
    for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
        close(grads["rnn." + k], getattr(rnn, k).grad.numpy(), 1e-10)
    for k in ("emb.weight", "emb.bias", "pos_emb", "channel_emb", "out.weight", "out.bias"):
        close(grads[k], t[k].grad.numpy(), 1e-10)


# ---- the estimator -----------------------------------------------------------------------
def windows(n=240, L=24, H=6, C=2, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n + L + H)
    cols = [np.sin(2 * np.pi * t / 12 + c) * (1 + c) + 0.1 * rng.standard_normal(t.size)
            for c in range(C)]
    X = np.stack([[col[i:i + L] for i in range(n)] for col in cols], 1)  # (n, C, L)
    Y = np.stack([[col[i + L:i + L + H] for i in range(n)] for col in cols], 1)
    ch = np.tile(np.arange(C), n)
    return X.reshape(n * C, L, 1), Y.reshape(n * C, H), ch


def tiny(**kw):
    base = dict(lookback=24, horizon=6, segment=6, n_hidden=8, max_epochs=3, batch_size=32,
                lr=3e-3, dropout=0.2, random_state=0, levels=(80,))
    return SegRNNForecaster(**{**base, **kw})


def test_fit_windows_learns_and_channels_matter():
    X, Y, ch = windows()
    n = len(X) * 3 // 4
    model = tiny(max_epochs=8).fit_windows(X[:n], Y[:n], validation=(X[n:], Y[n:]),
                                           channels=ch[:n], validation_channels=ch[n:])
    assert model.seg_config_["n_channels"] == 2 and model.seg_config_["n_seg"] == 4
    pred = model.predict_windows(X[n:], channels=ch[n:])
    mse = np.mean((pred - Y[n:]) ** 2)
    naive = np.mean((X[n:, -1:, 0] - Y[n:]) ** 2)
    assert mse < 0.5 * naive
    other = model.predict_windows(X[n:], channels=1 - ch[n:])
    assert not np.allclose(other, pred)
    with pytest.raises(DataError, match="beyond the 2 channels"):
        model.predict_windows(X[:2], channels=np.array([0, 2]))
    with pytest.raises(DataError, match="channels must be integers"):
        model.predict_windows(X[:2], channels=np.array([0.0, 1.0]))
    bounds = model.predict_interval_windows(X[n:n + 4], channels=ch[n:n + 4])
    lo, hi = bounds[80.0]
    assert (lo < hi).all()


def test_early_stopping_restores_the_best_epoch():
    X, Y, ch = windows()
    seen = []
    model = tiny(max_epochs=30, lr=3e-2, patience=1, callback=seen.append)
    model.fit_windows(X[:300], Y[:300], validation=(X[300:], Y[300:]))
    val = [v for _, v in model.history_loss_]
    assert model.best_epoch_ == int(np.argmin(val)) + 1
    assert model.n_epochs_ == len(seen) and seen[-1].stopped == (model.n_epochs_ < 30)
    Xn, off, sc = model._norm(X[300:])
    restored = model._evaluate(Xn, (Y[300:] - off) / sc, np.zeros(len(X) - 300, np.int64), sc,
                               "mse")
    assert restored == pytest.approx(min(val), rel=1e-6)


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_same_seed_same_bits_and_dropout_is_seeded(cell):
    X, Y, ch = windows(n=80)
    a = tiny(cell=cell).fit_windows(X, Y, channels=ch)
    b = tiny(cell=cell).fit_windows(X, Y, channels=ch)
    c = tiny(cell=cell, random_state=1).fit_windows(X, Y, channels=ch)
    assert np.array_equal(a.seg_params_, b.seg_params_)
    assert np.array_equal(a.predict_windows(X, channels=ch), b.predict_windows(X, channels=ch))
    assert not np.array_equal(a.seg_params_, c.seg_params_)
    d = tiny(cell=cell, dropout=0.0).fit_windows(X, Y, channels=ch)
    assert not np.array_equal(a.seg_params_, d.seg_params_)


def test_thread_count_does_not_change_the_bits():
    X, Y, ch = windows(n=100)
    saved = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = tiny(batch_size=100).fit_windows(X, Y, channels=ch).seg_params_
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = tiny(batch_size=100).fit_windows(X, Y, channels=ch).seg_params_
    finally:
        numba.set_num_threads(saved)
    assert np.array_equal(one, two)


@pytest.mark.parametrize("normalize", ["last", "instance", "none"])
def test_normalisations_and_mae_loss(normalize):
    X, Y, ch = windows(n=60)
    model = tiny(normalize=normalize, loss="mae", horizon=5, segment=4).fit_windows(X, Y[:, :5])
    assert model.seg_config_["n_out"] == 2  # ceil(5 / 4) segments, cut to 5
    assert model.predict_windows(X[:3]).shape == (3, 5)


def test_seed_ensemble_averages_members_and_round_trips(tmp_path):
    """n_members=3: member 0 is the single model of the same seed (bit for bit), the
    forecast is the members' mean, its validation loss is at most the members' mean, the
    callback counts epochs over all members, and a model file keeps every member."""
    X, Y, ch = windows()
    n = len(X) * 3 // 4
    fit = dict(validation=(X[n:], Y[n:]), channels=ch[:n], validation_channels=ch[n:])
    seen = []
    ens = tiny(n_members=3, max_epochs=4, callback=seen.append,
               linear_blend=False).fit_windows(X[:n], Y[:n], **fit)  # the members' mean alone
    assert ens.seg_params_.shape[0] == 3
    single = tiny(max_epochs=4).fit_windows(X[:n], Y[:n], **fit)
    assert np.array_equal(ens.seg_params_[0], single.seg_params_)
    assert not np.array_equal(ens.seg_params_[1], ens.seg_params_[0])
    members = []
    for m, params in enumerate(ens.seg_params_):
        one = tiny(max_epochs=4).fit_windows(X[:4], Y[:4], channels=ch[:4])  # any fitted shell
        one.seg_config_, one.seg_params_, one._nets = ens.seg_config_, params.copy(), None
        members.append(one.predict_windows(X[n:], channels=ch[n:]))
    pred = ens.predict_windows(X[n:], channels=ch[n:])
    np.testing.assert_allclose(pred, np.mean(members, axis=0), rtol=1e-12, atol=1e-12)
    assert [m["seed"] for m in ens.members_] == [0, [0, 1], [0, 2]]
    assert ens.ensemble_val_loss_ <= np.mean([m["val_loss"] for m in ens.members_]) + 1e-12
    assert ens.n_epochs_ == sum(m["epochs"] for m in ens.members_) == len(seen)
    assert all(i.max_epochs == 12 for i in seen) and seen[-1].stopped in (True, False)
    assert [i.epoch for i in seen] == sorted(i.epoch for i in seen)
    meta, arrays = ens.to_state()
    back = model_from_state(json.loads(json.dumps(meta)), arrays)
    assert np.array_equal(back.predict_windows(X[n:], channels=ch[n:]), pred)
    again = tiny(n_members=3, max_epochs=4, linear_blend=False).fit_windows(X[:n], Y[:n], **fit)
    assert np.array_equal(again.seg_params_, ens.seg_params_)  # same seed, same bits
    with pytest.raises(ConfigError, match="n_members must be an integer >= 1"):
        tiny(n_members=0).fit_windows(X[:20], Y[:20])


def test_a_loss_ensemble_trains_every_seed_on_every_loss(tmp_path):
    """loss="mse+mae": the n_members seeds are trained once per loss (each member
    early-stopped on its own loss), the forecast is the mean of all of them; the
    ensemble's validation loss is taken in the first loss (MSE), and the blend gives each
    loss's members a weight of their own, the first loss's minimum over the 0.01 grid.
    The members are those of the single-loss ensembles bit for bit; model files keep them
    and the weights; a malformed loss is a ConfigError."""
    X, Y, ch = windows()
    n = len(X) * 3 // 4
    fit = dict(validation=(X[n:], Y[n:]), channels=ch[:n], validation_channels=ch[n:])
    Xv, Yv, chv = X[n:], Y[n:], ch[n:]
    kw = dict(n_members=2, max_epochs=3)
    both = tiny(**kw, loss="mse+mae", linear_blend=False).fit_windows(X[:n], Y[:n], **fit)
    mse = tiny(**kw, linear_blend=False).fit_windows(X[:n], Y[:n], **fit)
    mae = tiny(**kw, loss="mae", linear_blend=False).fit_windows(X[:n], Y[:n], **fit)
    assert both.seg_params_.shape[0] == 4
    assert np.array_equal(both.seg_params_, np.concatenate([mse.seg_params_, mae.seg_params_]))
    assert [m["loss"] for m in both.members_] == ["mse", "mse", "mae", "mae"]
    assert [m["seed"] for m in both.members_] == [0, [0, 1], 0, [0, 1]]
    assert [m["val_loss"] for m in both.members_] == [m["val_loss"] for m in
                                                      mse.members_ + mae.members_]
    assert both.n_epochs_ == mse.n_epochs_ + mae.n_epochs_
    pred = both.predict_windows(Xv, channels=chv)
    halves = (mse.predict_windows(Xv, channels=chv) + mae.predict_windows(Xv, channels=chv)) / 2
    np.testing.assert_allclose(pred, halves, rtol=1e-12, atol=1e-12)
    sq = lambda p: float(np.mean((p - Yv) ** 2))  # noqa: E731 (last-value scale is 1)
    assert both.ensemble_val_loss_ == pytest.approx(sq(pred), rel=1e-9)  # MSE, the first loss
    # the blend: a weight for each loss's members and the rest for the linear map, the
    # MSE minimum over the 0.01 grid
    blend = tiny(**kw, loss="mse+mae").fit_windows(X[:n], Y[:n], **fit)
    assert np.array_equal(blend.seg_params_, both.seg_params_)
    a, b = blend.loss_weights_
    assert min(a, b) >= 0 and a + b <= 1 + 1e-12 and round(a, 2) == a and round(b, 2) == b
    assert blend.blend_weight_ == round(a + b, 2)
    last = Xv[:, -1:, 0]
    linear = (Xv[:, :, 0] - last) @ blend.linear_coef_.T + blend.linear_intercept_ + last
    p_mse, p_mae = (m.predict_windows(Xv, channels=chv) for m in (mse, mae))
    out = blend.predict_windows(Xv, channels=chv)
    np.testing.assert_allclose(out, a * p_mse + b * p_mae + (1 - a - b) * linear, rtol=1e-9,
                               atol=1e-9)
    assert blend.blend_val_loss_ == pytest.approx(sq(out), rel=1e-9)
    for i in range(101):
        for j in range(101 - i):
            u, v = i / 100, j / 100
            assert blend.blend_val_loss_ <= sq(u * p_mse + v * p_mae + (1 - u - v) * linear) + 1e-9
    meta, arrays = blend.to_state()
    back = model_from_state(json.loads(json.dumps(meta)), arrays)
    assert back.loss == "mse+mae" and [m["loss"] for m in back.members_] == ["mse", "mse",
                                                                             "mae", "mae"]
    assert np.array_equal(back.predict_windows(Xv, channels=chv), out)
    one = tiny(loss="mae+mse", max_epochs=2).fit_windows(X[:n], Y[:n], **fit)  # one seed
    assert one.seg_params_.shape[0] == 2 and [m["loss"] for m in one.members_] == ["mae", "mse"]
    mae_val = float(np.mean(np.abs(one.predict_windows(Xv, channels=chv) - Yv)))
    assert one.blend_val_loss_ == pytest.approx(mae_val, rel=1e-9)  # MAE, its first loss
    for bad in ("mse+mse", "mse+huber", "", "mse+", ("mse", "mae")):
        with pytest.raises(ConfigError, match="loss must be one of"):
            tiny(loss=bad).fit_windows(X[:20], Y[:20])


def test_rate_retry_reruns_a_member_whose_first_epoch_was_best(tmp_path):
    """lr_retry: a run whose best validation epoch is its first is trained again from the
    same start at the lower rate within the rest of max_epochs (the same bits as a fresh
    fit at that rate and budget); the better validation loss is kept; a run whose loss
    still fell after epoch 1 is left alone, bit for bit."""
    X, Y, ch = windows()
    n = len(X) * 3 // 4
    fit = dict(validation=(X[n:], Y[n:]), channels=ch[:n], validation_channels=ch[n:])
    seen = []
    # A rate of 1.0 overshoots, so some seeds validate best after their first epoch and
    # then do better at a tenth of the rate; which seeds depends on the BLAS's rounding
    # (AVX-512 and AVX2 kernels train different trajectories at this rate), so the test
    # looks for one instead of naming it.
    hot = dict(lr=1.0, max_epochs=8, patience=1)
    for seed in range(1, 40):
        first = tiny(**hot, random_state=seed).fit_windows(X[:n], Y[:n], **fit)
        if first.best_epoch_ != 1:
            continue
        seen.clear()
        model = tiny(**hot, random_state=seed, lr_retry=0.1,
                     callback=seen.append).fit_windows(X[:n], Y[:n], **fit)
        if model.lr_retries_[0]["kept"]:
            break
    else:
        pytest.fail("no seed in 1..39 validated best after epoch 1 at lr=1.0 and better "
                    "at lr=0.1")
    hot["random_state"] = seed
    k = first.n_epochs_
    assert k == 3 and first.lr_retries_ == [None]  # patience 1: two epochs without a gain
    fresh = tiny(**{**hot, "lr": 0.1, "max_epochs": 8 - k}).fit_windows(X[:n], Y[:n], **fit)
    (r,) = model.lr_retries_
    assert r["first_val_loss"] == first.history_loss_[0][1] and r["first_epochs"] == k
    assert r["lr"] == pytest.approx(0.1) and r["epochs"] == fresh.n_epochs_
    assert r["val_loss"] == fresh.history_loss_[fresh.best_epoch_ - 1][1]
    assert r["kept"] == (r["val_loss"] < r["first_val_loss"]) and r["kept"]
    assert np.array_equal(model.seg_params_, fresh.seg_params_)
    assert model.history_loss_ == fresh.history_loss_ and model.n_epochs_ == k + r["epochs"]
    assert [i.epoch for i in seen] == list(range(1, model.n_epochs_ + 1))
    assert all(i.max_epochs == 8 for i in seen) and not any(i.stopped for i in seen[:k])
    meta, arrays = model.to_state()
    back = model_from_state(json.loads(json.dumps(meta)), arrays)
    assert list(back.lr_retries_) == model.lr_retries_
    assert np.array_equal(back.predict_windows(X[n:], channels=ch[n:]),
                          model.predict_windows(X[n:], channels=ch[n:]))
    # the retry keeps the first run when that validates better
    worse = tiny(**hot, lr_retry=1e-6).fit_windows(X[:n], Y[:n], **fit)
    assert worse.lr_retries_[0]["kept"] is False
    assert np.array_equal(worse.seg_params_, first.seg_params_)
    assert worse.best_epoch_ == 1 and worse.history_loss_ == first.history_loss_
    # still learning after epoch 1: no retry, the same bits as without it
    calm = dict(lr=3e-2, max_epochs=8, patience=1)
    a = tiny(**calm).fit_windows(X[:n], Y[:n], **fit)
    b = tiny(**calm, lr_retry=0.3).fit_windows(X[:n], Y[:n], **fit)
    assert a.best_epoch_ > 1 and b.lr_retries_ == [None]
    assert np.array_equal(a.seg_params_, b.seg_params_)
    # no validation windows: nothing to choose on, so no retry
    c = tiny(**hot, lr_retry=0.1).fit_windows(X[:n], Y[:n], channels=ch[:n])
    assert c.lr_retries_ == [None]
    for bad in (1.0, -0.1, True, "0.3"):
        with pytest.raises(ConfigError, match="lr_retry must be in"):
            tiny(lr_retry=bad).fit_windows(X[:20], Y[:20])


@pytest.mark.parametrize("n_members", [1, 2])
def test_linear_blend_is_chosen_on_validation_and_round_trips(n_members):
    """linear_blend: the network's forecast (trained exactly as without the blend) mixed
    with the NLinear least-squares map of the same windows, the weight the validation
    minimum over a 0.01 grid, never worse on validation than the network alone or the
    map alone; the model file keeps it; no validation windows, no blend."""
    from sklearn.linear_model import LinearRegression

    X, Y, ch = windows()
    n = len(X) * 3 // 4
    fit = dict(validation=(X[n:], Y[n:]), channels=ch[:n], validation_channels=ch[n:])
    kw = dict(max_epochs=4, n_members=n_members)
    plain = tiny(**kw, linear_blend=False).fit_windows(X[:n], Y[:n], **fit)
    model = tiny(**kw).fit_windows(X[:n], Y[:n], **fit)  # the blend is the default
    assert np.array_equal(model.seg_params_, plain.seg_params_)  # training is unchanged
    w = model.blend_weight_
    assert 0.0 <= w <= 1.0 and round(w, 2) == w
    last = X[:n, -1:, 0]
    lin = LinearRegression().fit(X[:n, :, 0] - last, Y[:n] - last)
    np.testing.assert_allclose(model.linear_coef_, lin.coef_, rtol=1e-9, atol=1e-9)
    Xv, Yv = X[n:], Y[n:]
    net = plain.predict_windows(Xv, channels=ch[n:])
    linear = lin.predict(Xv[:, :, 0] - Xv[:, -1:, 0]) + Xv[:, -1:, 0]
    pred = model.predict_windows(Xv, channels=ch[n:])
    np.testing.assert_allclose(pred, w * net + (1 - w) * linear, rtol=1e-9, atol=1e-9)
    mse = lambda p: float(np.mean((p - Yv) ** 2))  # noqa: E731 (last-value scale is 1)
    assert model.blend_val_loss_ == pytest.approx(mse(pred), rel=1e-9)
    net_val = (plain.ensemble_val_loss_ if n_members > 1
               else plain.history_loss_[plain.best_epoch_ - 1][1])
    assert model.blend_val_loss_ <= min(net_val, mse(linear)) + 1e-12
    for v in (w - 0.01, w + 0.01):
        if 0 <= v <= 1:
            assert model.blend_val_loss_ <= mse(v * net + (1 - v) * linear) + 1e-12
    meta, arrays = model.to_state()
    back = model_from_state(json.loads(json.dumps(meta)), arrays)
    assert back.blend_weight_ == w
    assert np.array_equal(back.predict_windows(Xv, channels=ch[n:]), pred)
    alone = tiny(**kw).fit_windows(X[:n], Y[:n], channels=ch[:n])
    assert alone.blend_weight_ is None and alone.linear_coef_ is None
    assert np.array_equal(alone.predict_windows(Xv, channels=ch[n:]),
                          tiny(**kw, linear_blend=False).fit_windows(X[:n], Y[:n], channels=ch[:n])
                          .predict_windows(Xv, channels=ch[n:]))
    with pytest.raises(ConfigError, match="linear_blend must be true or false"):
        tiny(linear_blend="yes").fit_windows(X[:20], Y[:20])


def test_bad_parameters_are_config_errors():
    X, Y, _ = windows(n=20)
    for kw, msg in ((dict(segment=30), "segment=30 is longer than the lookback"),
                    (dict(dropout=1.0), "dropout must be in"),
                    (dict(cell="tcn"), "cell must be one of"),
                    (dict(normalize="revin"), "normalize must be one of"),
                    (dict(loss="huber"), "loss must be one of")):
        with pytest.raises(ConfigError, match=msg):
            tiny(**kw).fit_windows(X, Y)


def series(n=200, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 10 + np.sin(2 * np.pi * t / 7) + 0.2 * rng.standard_normal(n)
    return pd.Series(y, index=pd.date_range("2020-01-01", periods=n, freq="D"), name="y")


def test_fit_predict_save_load_identical(tmp_path):
    data = series()
    model = make_model("segrnn", lookback=28, horizon=7, segment=7, n_hidden=8, max_epochs=2,
                       random_state=0)
    out = model.fit(data).predict()
    assert list(out.columns) == ["unique_id", "ds", "yhat", "yhat_lower_80", "yhat_upper_80",
                                 "yhat_lower_95", "yhat_upper_95"]
    assert len(out) == 7 and np.isfinite(out["yhat"]).all()
    path = io.save_model(tmp_path / "seg.npz", model, name="segrnn")
    back = io.load_model(path).model
    pd.testing.assert_frame_equal(back.predict(), out, check_exact=True)
    meta, arrays = model.to_state()
    again = model_from_state(json.loads(json.dumps(meta)), arrays)
    pd.testing.assert_frame_equal(again.predict(), out, check_exact=True)


# ---- command line and benchmark ----------------------------------------------------------
def test_cli_fit_predict_backtest_on_a_bundled_dataset(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from forecast.cli import app

    monkeypatch.chdir(tmp_path)
    run = lambda *a: CliRunner().invoke(app, [str(x) for x in a])  # noqa: E731
    tiny_opts = ["--hidden", "8", "--epochs", "2", "--lookback", "48", "--horizon", "24"]
    res = run("fit", "etth1", "-m", "segrnn", *tiny_opts, "-p", "segment=12", "-o", "seg.npz")
    assert res.exit_code == 0, res.output
    loaded = io.load_model(tmp_path / "seg.npz")
    assert loaded.manifest["model"]["name"] == "segrnn"
    assert loaded.model.seg_config_["n_seg"] == 4
    res = run("predict", "seg.npz")
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(pd.io.common.StringIO(res.stdout))) == 24
    res = run("report", "seg.npz", "-o", "seg.html")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "seg.html").stat().st_size > 1000
    res = run("backtest", "etth1", "--models", "segrnn", *tiny_opts, "--folds", "2",
              "-o", "bt.csv")
    assert res.exit_code == 0, res.output
    assert "segrnn" in set(pd.read_csv(tmp_path / "bt.csv")["model"])


def test_benchmark_script_runs_segrnn_multivariate():
    cmd = [sys.executable, str(ROOT / "benchmarks" / "ltsf.py"), "--data",
           str(ROOT / "datasets" / "ETTh1.csv"), "--layout", "ett-hour", "--features", "M",
           "--lookback", "96", "--horizon", "24", "--model", "segrnn", "--option", "max_epochs=1",
           "--option", "n_hidden=8", "--option", "segment=24"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["settings"]["n_hidden"] == 8 and out["mse"] < 1.0
    # the script's default is a seed ensemble of three members trained on each of two
    # losses, one epoch each, blended with a validated weight per loss
    assert out["settings"]["n_members"] == 3 and out["settings"]["loss"] == "mse+mae"
    assert out["epochs"] == 6 and [m["epochs"] for m in out["members"]] == [1] * 6
    assert [m["loss"] for m in out["members"]] == ["mse"] * 3 + ["mae"] * 3
    w = out["loss_weights"]
    assert len(w) == 2 and min(w) >= 0 and out["blend_weight"] == round(sum(w), 2) <= 1
    # the rate retry is on, but one epoch leaves no budget for it: no member retried
    assert out["settings"]["lr_retry"] == 0.3 and "lr_retries" not in out
    assert out["members"][0]["seed"] == 0 and np.isfinite(out["val_loss"])
    assert out["windows"] == 2857


def test_batch_file_with_segrnn(tmp_path):
    import test_batch as tb  # tests/test_batch.py (tests/ is on sys.path under pytest)

    tb.make_series(tmp_path / "data", 2)
    defaults = tb.DEFAULTS.replace('model = "gru"', 'model = "segrnn"').replace(
        "folds = 2", "folds = 1\nparams = { segment = 5 }")
    batch = tb.write_batch(tmp_path, top="reports = false", defaults=defaults)
    res = tb.runner.invoke(tb.app, ["batch", "run", str(batch), "--run-id", "r1"])
    assert res.exit_code == 0, res.output
    table = tb.forecasts(tmp_path / "out" / "runs" / "r1")
    assert set(table["model"]) == {"segrnn"} and len(table) == 10


def test_weight_averaging_is_what_is_kept():
    X, Y, ch = windows(n=80)
    n = 120
    plain = tiny(max_epochs=2).fit_windows(X[:n], Y[:n], validation=(X[n:], Y[n:]))
    avg = tiny(max_epochs=2, average=0.9).fit_windows(X[:n], Y[:n], validation=(X[n:], Y[n:]))
    again = tiny(max_epochs=2, average=0.9).fit_windows(X[:n], Y[:n], validation=(X[n:], Y[n:]))
    assert np.array_equal(avg.seg_params_, again.seg_params_)
    assert not np.array_equal(avg.seg_params_, plain.seg_params_)
    Xn, off, sc = avg._norm(X[n:])
    score = avg._evaluate(Xn, (Y[n:] - off) / sc, np.zeros(len(X) - n, np.int64), sc, "mse")
    assert score == pytest.approx(min(v for _, v in avg.history_loss_), rel=1e-6)
    with pytest.raises(ConfigError, match="average must be in"):
        tiny(average=1.0).fit_windows(X, Y)


@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_loss_is_in_data_units_with_its_gradient(loss):
    """With instance normalisation the loss is taken on the denormalised forecast (RevIN)."""
    rng = np.random.default_rng(8)
    model = tiny(normalize="instance", loss=loss)
    X = rng.standard_normal((4, 24, 1)) * np.array([1, 5, 0.1, 2])[:, None, None]
    Y = rng.standard_normal((4, 6))
    Xn, off, sc = model._norm(X)
    Yn = (Y - off) / sc
    yhat = rng.standard_normal((4, 6))
    value, d = model._loss(yhat, Yn, sc, True, loss)
    err = yhat * sc + off - Y
    assert value == pytest.approx(np.mean(err ** 2) if loss == "mse" else np.mean(np.abs(err)))
    close(d, fd_grad(lambda: model._loss(yhat, Yn, sc, False, loss)[0], yhat), 1e-6)
