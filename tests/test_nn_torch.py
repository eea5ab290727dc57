"""Cross-check forecast.nn against PyTorch autograd and torch.optim.Adam.

Runs only where torch is installed (CI installs the CPU build); the rest of the suite
verifies the kernels without it (finite differences and a plain-numpy reference).
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from forecast.nn import RecurrentNet  # noqa: E402

TOL = {"float64": 1e-9, "float32": 1e-4}
TORCH_DTYPE = {"float64": torch.float64, "float32": torch.float32}


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12)


class TorchModel(torch.nn.Module):
    def __init__(self, cell, n_input, n_hidden, n_layers, n_output, activation):
        super().__init__()
        if cell == "lstm":
            self.rnn = torch.nn.LSTM(n_input, n_hidden, n_layers, batch_first=True)
        elif cell == "gru":
            self.rnn = torch.nn.GRU(n_input, n_hidden, n_layers, batch_first=True)
        else:
            self.rnn = torch.nn.RNN(n_input, n_hidden, n_layers, batch_first=True,
                                    nonlinearity=activation)
        self.head = torch.nn.Linear(n_hidden, n_output)

    def forward(self, x, lengths):
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            x, torch.as_tensor(lengths), batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        h = state[0] if isinstance(state, tuple) else state
        return self.head(h[-1])


def make_pair(cell, dtype, n_layers, activation="tanh", n_input=3, n_hidden=5, n_output=4, seed=0):
    torch.manual_seed(seed)
    tm = TorchModel(cell, n_input, n_hidden, n_layers, n_output, activation).to(TORCH_DTYPE[dtype])
    net = RecurrentNet(cell=cell, n_input=n_input, n_hidden=n_hidden, n_layers=n_layers,
                       n_output=n_output, activation=activation, dtype=dtype, seed=1)
    net.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    return tm, net


def batch(dtype, B=6, T=9, n_input=3, n_output=4, seed=0, ragged=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, n_input)).astype(dtype)
    y = rng.standard_normal((B, n_output)).astype(dtype)
    lengths = rng.integers(1, T + 1, size=B) if ragged else np.full(B, T)
    lengths[0] = T
    return x, y, lengths


CASES = [(c, a) for c in ("lstm", "gru") for a in ("tanh",)] + [("rnn", "tanh"), ("rnn", "relu")]


def test_state_dict_names_and_shapes_match_torch():
    for cell, act in CASES:
        tm, net = make_pair(cell, "float64", 2, act)
        ours = net.state_dict()
        theirs = tm.state_dict()
        assert list(ours) == list(theirs)
        for k in ours:
            assert ours[k].shape == tuple(theirs[k].shape), k


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n_layers", [1, 2])
@pytest.mark.parametrize("cell,act", CASES)
@pytest.mark.parametrize("loss", ["mse", "mae", "huber"])
def test_forward_loss_and_grads_match_torch(cell, act, n_layers, dtype, loss):
    tm, net = make_pair(cell, dtype, n_layers, act)
    x, y, lengths = batch(dtype)
    xt, yt = torch.tensor(x), torch.tensor(y)
    out = tm(xt, lengths)
    fn = {"mse": torch.nn.MSELoss(), "mae": torch.nn.L1Loss(), "huber": torch.nn.HuberLoss(delta=0.7)}[loss]
    lt = fn(out, yt)
    lt.backward()
    assert rel_err(net.forward(x, lengths), out.detach().numpy()) < TOL[dtype]
    value, grads = net.loss_and_grad(x, y, loss=loss, lengths=lengths, delta=0.7)
    assert abs(value - lt.item()) / abs(lt.item()) < TOL[dtype]
    for name, p in tm.named_parameters():
        assert rel_err(grads[name], p.grad.numpy()) < TOL[dtype], name


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_fit_batch_steps_like_torch_adam(cell, dtype):
    tm, net = make_pair(cell, dtype, 2)
    x, y, lengths = batch(dtype, B=40, ragged=True)
    opt = torch.optim.Adam(tm.parameters())
    xt, yt = torch.tensor(x), torch.tensor(y)
    for _ in range(5):
        opt.zero_grad()
        lt = torch.nn.functional.mse_loss(tm(xt, lengths), yt)
        lt.backward()
        opt.step()
        value = net.fit_batch(x, y, lengths=lengths)
        assert abs(value - lt.item()) / lt.item() < TOL[dtype]
    sd = net.state_dict()
    for name, p in tm.state_dict().items():
        # five Adam steps of size ~1e-3 on top of O(1) weights
        assert np.max(np.abs(sd[name] - p.numpy())) < (1e-12 if dtype == "float64" else 2e-6), name


def test_weight_decay_and_clipping_match_torch():
    from forecast.nn import Adam

    tm, net = make_pair("gru", "float64", 1)
    net.optimizer = Adam(lr=1e-2, weight_decay=0.1, clip_norm=0.05)
    x, y, lengths = batch("float64")
    opt = torch.optim.Adam(tm.parameters(), lr=1e-2, weight_decay=0.1)
    xt, yt = torch.tensor(x), torch.tensor(y)
    for _ in range(4):
        opt.zero_grad()
        torch.nn.functional.mse_loss(tm(xt, lengths), yt).backward()
        torch.nn.utils.clip_grad_norm_(tm.parameters(), 0.05)
        opt.step()
        net.fit_batch(x, y, lengths=lengths)
    sd = net.state_dict()
    for name, p in tm.state_dict().items():
        assert rel_err(sd[name], p.numpy()) < 1e-9, name


def test_cross_entropy_matches_torch():
    tm, net = make_pair("lstm", "float64", 1, n_output=3)
    x, _, lengths = batch("float64", n_output=3)
    classes = np.array([0, 2, 1, 1, 0, 2])
    lt = torch.nn.functional.cross_entropy(tm(torch.tensor(x), lengths), torch.tensor(classes))
    lt.backward()
    value, grads = net.loss_and_grad(x, classes, loss="cross_entropy", lengths=lengths)
    assert abs(value - lt.item()) < 1e-12
    for name, p in tm.named_parameters():
        assert rel_err(grads[name], p.grad.numpy()) < 1e-9, name
