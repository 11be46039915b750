"""Issue 16: ND302 on recurrent layers measures the input and the recurrent kernel separately
instead of the layer as a whole. An LSTM whose recurrent kernel is scaled x5 is an error naming
both kernels; the same LSTM unscaled stays quiet (torch and Keras)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from netdoctor.findings import Severity

os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _nd302(report):
    return [f for f in report.findings if f.code == "ND302"]


@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_torch_lstm_recurrent_kernel_scaled(scale):
    torch = pytest.importorskip("torch")
    from torch import nn

    import netdoctor

    torch.set_num_threads(1)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.head = nn.LSTM(4, 32, batch_first=True), nn.Linear(32, 1)
            with torch.no_grad():
                self.lstm.weight_hh_l0.mul_(scale)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    torch.manual_seed(0)
    x, y = torch.randn(128, 50, 4), torch.randn(128, 1)
    torch.manual_seed(0)
    found = _nd302(netdoctor.check(Net(), x, y, loss_fn=nn.MSELoss()))
    if scale == 1.0:
        assert not found
        return
    (f,) = found
    assert f.severity == Severity.ERROR and f.layer == "lstm"
    rel = f.evidence["relative_grads"]
    assert set(rel) == {"lstm[input kernel]", "lstm[recurrent kernel]"}
    assert rel["lstm[input kernel]"] > 0.05 and f.evidence["recurrent_gain"] > 2.0
    # measured through time as well: the gradient sent into step 50 reaches step 1 larger, not shrunk
    assert f.evidence["time_steps"] == 50 and f.evidence["time_growth"] > 1.0


@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_keras_lstm_recurrent_kernel_scaled(scale):
    keras = pytest.importorskip("keras")
    from keras import layers

    import netdoctor

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(128, 50, 4)).astype("float32"), rng.normal(size=(128, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((50, 4)), layers.LSTM(32, name="lstm"), layers.Dense(1)])
    cell = model.layers[0].cell
    cell.recurrent_kernel.assign(cell.recurrent_kernel * scale)
    model.compile(loss="mse", optimizer="adam")
    found = _nd302(netdoctor.check(model, x, y))
    if scale == 1.0:
        assert not found
        assert _time_growth("keras", model, x, y)["lstm"] < 1e-3  # orthogonal init: shrinks backward in time
    else:
        assert found and found[0].severity == Severity.ERROR and found[0].evidence["recurrent_gain"] > 2.0
        assert found[0].evidence["time_steps"] == 50 and found[0].evidence["time_growth"] > 1.0


def _time_growth(framework, model, x, y, loss_fn=None):
    """``{recurrent layer: time_growth}`` of one collect, as netdoctor.check measures it."""
    from netdoctor.config import Config
    from netdoctor.engine import merged_needs, selected_rules
    from netdoctor.frameworks import get_adapter
    from netdoctor.snapshot import ProbeSettings

    snap = get_adapter(framework).collect(model, inputs=x, targets=y, loss_fn=loss_fn,
                                          needs=merged_needs(selected_rules(Config(), one_shot=True)),
                                          settings=ProbeSettings(), input_shape=None)
    return {r.name: r.attrs["time_growth"] for r in snap.layers if "time_growth" in r.attrs}


def test_torch_tanh_rnn_gradient_grows_backward_in_time():
    """A tanh RNN whose recurrent kernel is x3: the per-kernel test sees a gain of only 1.7, the replay
    through time measures the gradient of the last step reaching the first ~200x larger."""
    torch = pytest.importorskip("torch")
    from torch import nn

    import netdoctor

    torch.set_num_threads(1)

    class Net(nn.Module):
        def __init__(self, scale):
            super().__init__()
            self.rnn, self.head = nn.RNN(4, 32, batch_first=True), nn.Linear(32, 1)
            with torch.no_grad():
                self.rnn.weight_hh_l0.mul_(scale)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    torch.manual_seed(0)
    x, y = torch.randn(128, 50, 4), torch.randn(128, 1)
    torch.manual_seed(0)
    model = Net(3.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    timed = [f for f in _nd302(netdoctor.check(model, x, y, loss_fn=nn.MSELoss())) if f.evidence.get("time_growth")]
    assert timed and timed[0].layer == "rnn" and timed[0].evidence["time_growth"] > 10
    assert "grows backward in time" in timed[0].message
    # one finding for the layer: the per-kernel/through-time one, not also the whole-layer one
    assert [f.layer for f in _nd302(netdoctor.check(model, x, y, loss_fn=nn.MSELoss()))].count("rnn") == 1
    # the replay leaves the model as it was: weights, training flag, no .grad
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert model.rnn.training and all(p.grad is None for p in model.parameters())
    torch.manual_seed(0)
    assert not _nd302(netdoctor.check(Net(1.0), x, y, loss_fn=nn.MSELoss()))


def test_torch_lstm_language_model_stays_quiet():
    torch = pytest.importorskip("torch")
    from torch import nn
    import torch.nn.functional as F

    import netdoctor

    torch.set_num_threads(1)

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(100, 64)
            self.lstm = nn.LSTM(64, 128, num_layers=2, batch_first=True, dropout=0.1)
            self.out = nn.Linear(128, 100)

        def forward(self, t):
            return self.out(self.lstm(self.emb(t))[0])

    def lm_loss(o, t):
        return F.cross_entropy(o[:, :-1].reshape(-1, 100), t[:, 1:].reshape(-1))

    torch.manual_seed(0)
    t = torch.randint(0, 100, (16, 35))
    torch.manual_seed(0)
    assert not ({"ND301", "ND302"} & netdoctor.check(LM(), t, t, loss_fn=lm_loss).codes())
    torch.manual_seed(0)
    assert _time_growth("torch", LM(), t, t, lm_loss)["lstm"] < 1e-3


def test_torch_bidirectional_layers_are_replayed_per_direction():
    """A bidirectional module is replayed one layer and one direction at a time: its forward direction
    measures exactly what the same weights measure as a unidirectional module, the backward direction
    runs on the reversed sequence, and a healthy bidirectional LSTM stays quiet."""
    torch = pytest.importorskip("torch")
    from torch import nn

    import netdoctor

    torch.set_num_threads(1)

    class Uni(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn, self.head = nn.RNN(4, 32, batch_first=True), nn.Linear(32, 1)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    class Bi(nn.Module):
        def __init__(self, cell=nn.RNN, layers=1):
            super().__init__()
            self.rnn = cell(4, 32, num_layers=layers, batch_first=True, bidirectional=True)
            self.head = nn.Linear(64, 1)

        def forward(self, x):
            return self.head(self.rnn(x)[0][:, -1])

    torch.manual_seed(0)
    x, y = torch.randn(64, 50, 4), torch.randn(64, 1)
    torch.manual_seed(0)
    uni = Uni()
    torch.manual_seed(0)
    bi = Bi()
    with torch.no_grad():
        uni.rnn.weight_hh_l0.mul_(3.0)
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(bi.rnn, name).copy_(getattr(uni.rnn, name))
    before = {k: v.clone() for k, v in bi.state_dict().items()}
    expected = _time_growth("torch", uni, x, y, nn.MSELoss())["rnn"]
    assert expected > 10
    assert _time_growth("torch", bi, x, y, nn.MSELoss())["rnn"] == pytest.approx(expected, rel=1e-4)
    timed = [f for f in _nd302(netdoctor.check(bi, x, y, loss_fn=nn.MSELoss())) if f.evidence.get("time_growth")]
    assert timed and timed[0].layer == "rnn" and timed[0].evidence["time_growth"] > 10
    assert all(torch.equal(before[k], v) for k, v in bi.state_dict().items())
    assert all(p.grad is None for p in bi.parameters())
    torch.manual_seed(0)
    healthy = Bi(nn.LSTM, layers=2)
    assert _time_growth("torch", healthy, x, y, nn.MSELoss())["rnn"] < 1e-3
    assert not ({"ND301", "ND302"} & netdoctor.check(healthy, x, y, loss_fn=nn.MSELoss()).codes())
