"""Fuzzing: random torch and Keras architectures never make ``check`` raise anything but NetdoctorError.

hypothesis draws a stack of layers (dense, convolutional, recurrent, normalization, dropout,
activations, odd initializations and scales, NaN weights) and a batch (sometimes with NaN,
huge values or constant features). ``netdoctor.check`` (and ``verify=True`` on some) must
return a report or raise :class:`~netdoctor.errors.NetdoctorError`, and leave the model's
parameters and buffers exactly as they were.

A few examples run in CI; ``NETDOCTOR_FUZZ_EXAMPLES=500 pytest tests/core/test_fuzz.py`` runs more.
"""

from __future__ import annotations

import copy
import math
import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import netdoctor  # noqa: E402
from netdoctor.errors import NetdoctorError  # noqa: E402

EXAMPLES = int(os.environ.get("NETDOCTOR_FUZZ_EXAMPLES", "12"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="NETDOCTOR_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=list(HealthCheck))

ACTS = ["relu", "tanh", "sigmoid", "gelu", "softmax", "none", "leaky_relu", "selu", "exp"]
INITS = ["default", "zeros", "constant", "tiny", "huge", "nan"]


@st.composite
def dense_stacks(draw):
    depth = draw(st.integers(1, 6))
    layers = [(draw(st.integers(1, 24)), draw(st.sampled_from(ACTS)), draw(st.sampled_from(INITS)),
               draw(st.booleans()), draw(st.sampled_from([0.0, 0.0, 0.5])))
              for _ in range(depth)]
    return {
        "features": draw(st.integers(1, 12)),
        "layers": layers,
        "out": draw(st.integers(1, 5)),
        "out_act": draw(st.sampled_from(["none", "softmax", "sigmoid", "relu"])),
        "batch": draw(st.integers(1, 40)),
        "data": draw(st.sampled_from(["normal", "huge", "constant", "nan", "ints"])),
        "targets": draw(st.sampled_from(["none", "classes", "floats", "wide_floats"])),
        "recurrent": draw(st.sampled_from([None, "lstm", "gru", "conv"])),
        "verify": draw(st.booleans()) and depth <= 3,
    }


def batch(spec, rng):
    n, f = spec["batch"], spec["features"]
    x = rng.standard_normal((n, f)).astype("float32")
    if spec["data"] == "huge":
        x *= 1e6
    elif spec["data"] == "constant":
        x[:, 0] = 3.0
    elif spec["data"] == "nan":
        x[0, 0] = np.nan
    elif spec["data"] == "ints":
        x = rng.integers(0, 255, (n, f)).astype("float32")
    y = None
    if spec["targets"] == "classes":
        y = rng.integers(0, spec["out"], n)
    elif spec["targets"] == "floats":
        y = rng.standard_normal((n, spec["out"])).astype("float32")
    elif spec["targets"] == "wide_floats":
        y = (rng.standard_normal((n, spec["out"])) * 1e4).astype("float32")
    return x, y


def torch_model(spec):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU, "softmax": lambda: nn.Softmax(-1),
            "none": nn.Identity, "leaky_relu": nn.LeakyReLU, "selu": nn.SELU}

    class Exp(nn.Module):
        def forward(self, x):
            return torch.exp(x)

    mods: list = []
    width = spec["features"]
    if spec["recurrent"] == "conv":
        mods += [nn.Unflatten(1, (1, width)), nn.Conv1d(1, 2, 1), nn.Flatten()]
        width *= 2
    for units, act, init, bn, drop in spec["layers"]:
        lin = nn.Linear(width, units)
        with torch.no_grad():
            if init == "zeros":
                lin.weight.zero_()
            elif init == "constant":
                lin.weight.fill_(0.3)
            elif init == "tiny":
                lin.weight.mul_(1e-6)
            elif init == "huge":
                lin.weight.mul_(1e3)
            elif init == "nan":
                lin.weight[0, 0] = float("nan")
        mods.append(lin)
        if drop:
            mods.append(nn.Dropout(drop))
        if bn:
            mods.append(nn.BatchNorm1d(units))
        mods.append(Exp() if act == "exp" else acts[act]())
        width = units
    mods.append(nn.Linear(width, spec["out"]))
    if spec["out_act"] != "none":
        mods.append(acts[spec["out_act"]]())
    model = nn.Sequential(*mods)
    if spec["recurrent"] in ("lstm", "gru"):
        rnn_cls = nn.LSTM if spec["recurrent"] == "lstm" else nn.GRU

        class Seq(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn = rnn_cls(1, 3, batch_first=True)
                self.head = model
                self.proj = nn.Linear(3, spec["features"])

            def forward(self, x):
                out, _ = self.rnn(x.unsqueeze(-1))
                return self.head(self.proj(out[:, -1]))

        return Seq()
    return model


def state_of(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_state(a, b):
    import torch

    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) or (a[k].is_floating_point() and torch.equal(a[k].isnan(), b[k].isnan())
                                     and torch.equal(a[k].nan_to_num(), b[k].nan_to_num())) for k in a)


@FUZZ
@given(spec=dense_stacks())
def test_fuzzed_torch_models(spec) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch_model(spec)
    model.train(bool(spec["batch"] % 2))
    x, y = batch(spec, np.random.default_rng(spec["batch"]))
    before, mode = state_of(model), model.training
    try:
        report = netdoctor.check(model, torch.from_numpy(x), None if y is None else torch.from_numpy(y),
                                 verify=spec["verify"])
        assert math.isfinite(report.timings.get("total", 0.0))
    except NetdoctorError as exc:
        assert str(exc) and "\n" not in str(exc)
    assert same_state(before, state_of(model)), "check changed the model"
    assert model.training == mode


def keras_model(spec):
    keras = pytest.importorskip("keras")
    acts = {"none": None, "leaky_relu": "leaky_relu", "exp": "exponential"}
    inp = keras.Input((spec["features"],))
    h = inp
    if spec["recurrent"] in ("lstm", "gru"):
        h = keras.layers.Reshape((spec["features"], 1))(h)
        h = (keras.layers.LSTM if spec["recurrent"] == "lstm" else keras.layers.GRU)(3)(h)
    for units, act, init, bn, drop in spec["layers"]:
        kinit = {"zeros": "zeros", "constant": keras.initializers.Constant(0.3),
                 "tiny": keras.initializers.RandomNormal(stddev=1e-6),
                 "huge": keras.initializers.RandomNormal(stddev=1e3)}.get(init, "glorot_uniform")
        h = keras.layers.Dense(units, kernel_initializer=kinit)(h)
        if drop:
            h = keras.layers.Dropout(drop)(h)
        if bn:
            h = keras.layers.BatchNormalization()(h)
        h = keras.layers.Activation(acts.get(act, act) or "linear")(h)
    out = keras.layers.Dense(spec["out"], activation=None if spec["out_act"] == "none" else spec["out_act"])(h)
    model = keras.Model(inp, out)
    for layer in model.layers:
        if spec["layers"] and spec["layers"][0][2] == "nan" and layer.weights:
            w = layer.get_weights()
            w[0][0, 0] = np.nan
            layer.set_weights(w)
            break
    return model


@FUZZ
@given(spec=dense_stacks())
def test_fuzzed_keras_models(spec) -> None:
    keras = pytest.importorskip("keras")
    keras.utils.set_random_seed(0)
    spec = {**spec, "verify": False, "layers": spec["layers"][:3]}
    model = keras_model(spec)
    x, y = batch(spec, np.random.default_rng(spec["batch"]))
    before = [np.array(w, copy=True) for w in model.get_weights()]
    try:
        netdoctor.check(model, x, y)
    except NetdoctorError as exc:
        assert str(exc) and "\n" not in str(exc)
    after = model.get_weights()
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(before, after)), "check changed the model"
    keras.backend.clear_session()
