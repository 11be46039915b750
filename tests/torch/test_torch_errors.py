"""User errors: one-line messages naming the layer, what it expects and what it got."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from torch_helpers import collect  # noqa: E402
from netdoctor.adapters.torch import load_weights  # noqa: E402
from netdoctor.errors import DataError, ModelLoadError, UnsupportedModelError  # noqa: E402

HINT = "; check sample_batch() or --input-shape"


def _message(model, x, **kw) -> str:
    with pytest.raises(DataError) as err:
        collect(model, x, **kw)
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_linear_shape_mismatch_names_layer_and_shapes():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    msg = _message(model, torch.randn(32, 100))
    assert msg == ("layer `1` (Linear) expects 784 input features but got input of shape (32, 100)" + HINT)


@pytest.mark.parametrize("model,x,expected", [
    (nn.Sequential(nn.Conv2d(3, 8, 3)), torch.randn(4, 1, 28, 28),
     "layer `0` (Conv2d) expects 3 input channels, i.e. input of shape (N, 3, H, W) but got input of shape (4, 1, 28, 28)"),
    (nn.Sequential(nn.Embedding(10, 3)), torch.randn(4, 5),
     "layer `0` (Embedding) expects integer token ids but got float32 input of shape (4, 5)"),
    (nn.Sequential(nn.Embedding(10, 3)), torch.full((4, 5), 12),
     "layer `0` (Embedding) expects integer ids in [0, 10) but got input of shape (4, 5)"),
    (nn.LSTM(8, 4), torch.randn(5, 3, 7),
     "the model (LSTM) expects 8 input features per time step but got input of shape (5, 3, 7)"),
    (nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(5)), torch.randn(8, 4),
     "layer `1` (BatchNorm1d) expects 5 channels on axis 1 but got input of shape (8, 4)"),
    (nn.Sequential(nn.LayerNorm(6)), torch.randn(8, 4),
     "layer `0` (LayerNorm) expects trailing dimensions (6,) but got input of shape (8, 4)"),
    (nn.Linear(4, 2), torch.randint(0, 3, (8, 4)),
     "the model (Linear) expects floating-point input but got int64 input of shape (8, 4)"),
])
def test_layer_specific_messages(model, x, expected):
    assert _message(model, x) == expected + HINT


def test_failure_in_user_code_names_the_module():
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return self.fc(x).view(3, -1, 7)

    msg = _message(nn.Sequential(Block()), torch.randn(8, 4))
    assert msg.startswith("layer `0` (Block) failed on input of shape (8, 4) (RuntimeError: shape '[3, -1, 7]'")
    assert msg.endswith(HINT)


def test_bad_inputs():
    assert _message(nn.Linear(4, 2), None).startswith("no inputs: pass a sample batch")
    assert "not supported" in _message(nn.Linear(4, 2), object())
    assert "dtype <U1" in _message(nn.Linear(4, 2), np.array(["a", "b"]))
    assert "is not a shape" in _message(nn.Linear(4, 2), None, input_shape=("a",))
    with pytest.raises(UnsupportedModelError):
        collect(object(), torch.randn(2, 2))


def test_load_weights_roundtrip_and_errors(tmp_path):
    torch.manual_seed(0)
    src = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    dst = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    path = tmp_path / "w.pt"
    torch.save(src.state_dict(), path)
    load_weights(dst, str(path))
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))

    ckpt = tmp_path / "ckpt.pt"
    torch.save({"epoch": 3, "model_state_dict": src.state_dict()}, ckpt)
    load_weights(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), str(ckpt))

    whole = tmp_path / "whole.pt"
    torch.save(src, whole)
    with pytest.raises(ModelLoadError) as err:
        load_weights(dst, str(whole))
    msg = str(err.value)
    assert "\n" not in msg and "not a plain state dict" in msg and "unsafe" in msg
    load_weights(dst, str(whole), unsafe=True)

    with pytest.raises(ModelLoadError, match="not found"):
        load_weights(dst, str(tmp_path / "missing.pt"))
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelLoadError, match="cannot read weights"):
        load_weights(dst, str(junk))
    with pytest.raises(ModelLoadError) as err:
        load_weights(nn.Sequential(nn.Linear(4, 5)), str(path))
    msg = str(err.value)
    assert "\n" not in msg and "do not fit Sequential" in msg
    assert "size mismatch for 0.weight" in msg and 'Unexpected key(s) in state_dict: "2.weight"' in msg


def test_load_weights_safetensors(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    src = nn.Linear(4, 3)
    path = tmp_path / "w.safetensors"
    safetensors.save_file(src.state_dict(), str(path))
    dst = nn.Linear(4, 3)
    load_weights(dst, str(path))
    assert torch.equal(src.weight, dst.weight)
