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


@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_keras_lstm_recurrent_kernel_scaled(scale):
    keras = pytest.importorskip("keras")
    from keras import layers

    import netdoctor

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(128, 50, 4)).astype("float32"), rng.normal(size=(128, 1)).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((50, 4)), layers.LSTM(32), layers.Dense(1)])
    cell = model.layers[0].cell
    cell.recurrent_kernel.assign(cell.recurrent_kernel * scale)
    model.compile(loss="mse", optimizer="adam")
    found = _nd302(netdoctor.check(model, x, y))
    if scale == 1.0:
        assert not found
    else:
        assert found and found[0].severity == Severity.ERROR and found[0].evidence["recurrent_gain"] > 2.0
