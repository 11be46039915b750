"""The bad-input corpus of the library: ``netdoctor.check`` raises only ``NetdoctorError``.

Every case hands ``check`` something a user could pass by mistake and asserts a
:class:`~netdoctor.errors.NetdoctorError` with a one-line message that names the problem, and
that a torch model comes back with the same parameters and buffers.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest

import netdoctor
from netdoctor.errors import NetdoctorError

torch = pytest.importorskip("torch")
nn = torch.nn


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


X = torch.randn(16, 4)
Y = torch.randint(0, 3, (16,))


def raising_loss(out, y):
    raise ValueError("loss broken on purpose")


class Forward(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        self.fn = fn

    def forward(self, x):
        return self.fn(self.fc(x))


# id: (model factory, args, kwargs, needle)
API_CASES: dict[str, tuple] = {
    "model None": (lambda: None, (X, Y), {}, "NoneType"),
    "model int": (lambda: 3, (X, Y), {}, "int"),
    "model string": (lambda: "model.py", (X, Y), {}, "str"),
    "model dict": (lambda: {}, (X, Y), {}, "dict"),
    "model class not instance": (lambda: nn.Linear, (X, Y), {}, "expected a torch.nn.Module"),
    "model function": (lambda: (lambda x: x), (X, Y), {}, "function"),
    "inputs string": (mlp, ("abc",), {}, "input"),
    "inputs set": (mlp, ({1, 2},), {}, "set"),
    "inputs object": (mlp, (object(),), {}, "object"),
    "inputs strings array": (mlp, (np.array([["a"] * 4] * 4),), {}, "dtype"),
    "inputs wrong width": (mlp, (torch.randn(8, 5),), {}, "5"),
    "inputs empty": (mlp, (torch.randn(0, 4), torch.zeros(0, dtype=torch.long)), {}, "empty"),
    "inputs empty numpy": (mlp, (np.zeros((0, 4), "float32"),), {}, "empty"),
    "inputs zero features": (mlp, (torch.randn(8, 0),), {}, "shape"),
    "inputs meta": (mlp, (torch.randn(8, 4, device="meta"),), {}, "meta"),
    "inputs complex": (mlp, (torch.randn(8, 4, dtype=torch.cfloat),), {}, "complex"),
    "inputs complex numpy": (mlp, (np.ones((8, 4), np.complex64),), {}, "dtype"),
    "no inputs no shape": (mlp, (), {}, "no inputs"),
    "input_shape negative": (mlp, (), {"input_shape": (-1,)}, "input_shape"),
    "input_shape zero": (mlp, (), {"input_shape": (0,)}, "input_shape"),
    "input_shape empty": (mlp, (), {"input_shape": ()}, "input_shape"),
    "input_shape string": (mlp, (), {"input_shape": "big"}, "input_shape"),
    "input_shape wrong size": (mlp, (), {"input_shape": (7,)}, "7"),
    "loss raises": (mlp, (X, Y), {"loss_fn": raising_loss}, "loss broken on purpose"),
    "loss returns None": (mlp, (X, Y), {"loss_fn": lambda o, y: None}, "loss"),
    "loss returns vector": (mlp, (X, Y), {"loss_fn": lambda o, y: o.sum(dim=1)}, "loss"),
    "loss returns string": (mlp, (X, Y), {"loss_fn": lambda o, y: "low"}, "loss"),
    "loss returns int tensor": (mlp, (X, Y), {"loss_fn": lambda o, y: torch.tensor(3)}, "loss"),
    "loss one argument": (mlp, (X, Y), {"loss_fn": lambda o: o.sum()}, "loss"),
    "loss not callable": (mlp, (X, Y), {"loss_fn": 3}, "loss"),
    "targets wrong length": (mlp, (X, torch.randint(0, 3, (5,))), {"loss_fn": nn.CrossEntropyLoss()}, "loss"),
    "targets out of range": (mlp, (X, torch.full((16,), 7)), {"loss_fn": nn.CrossEntropyLoss()}, "loss"),
    "forward raises": (lambda: Forward(lambda t: (_ for _ in ()).throw(RuntimeError("fwd broken"))), (X, Y), {},
                       "fwd broken"),
    "select unknown rule": (mlp, (X, Y), {"select": ["ND999"]}, "ND999"),
    "ignore unknown rule": (mlp, (X, Y), {"ignore": ["dead-unitz"]}, "dead-unitz"),
    "select not a list of strings": (mlp, (X, Y), {"select": [3]}, "not 3"),
}


@pytest.mark.parametrize("case", list(API_CASES))
def test_bad_api_input(case: str) -> None:
    factory, args, kwargs, needle = API_CASES[case]
    model = factory()
    before = copy.deepcopy(model.state_dict()) if isinstance(model, nn.Module) else None
    with pytest.raises(NetdoctorError) as info:
        netdoctor.check(model, *args, **kwargs)
    message = str(info.value)
    assert message and "\n" not in message, message
    assert needle in message, message
    if before is not None:
        after = model.state_dict()
        assert before.keys() == after.keys()
        assert all(torch.equal(before[k], after[k]) for k in before)


KERAS_CASES = {
    "empty batch": (lambda np_: (np_.zeros((0, 4), "float32"), np_.zeros((0,), "int64")), {}, "empty"),
    "complex inputs": (lambda np_: (np_.ones((8, 4), np_.complex64),), {}, "complex"),
    "input_shape negative": (lambda np_: (), {"input_shape": (-1,)}, "input_shape"),
    "wrong width": (lambda np_: (np_.ones((8, 5), "float32"),), {}, "5"),
    "loss raises": (lambda np_: (np_.ones((8, 4), "float32"), np_.zeros(8, "int64")),
                    {"loss_fn": raising_loss}, "loss broken on purpose"),
}


@pytest.mark.parametrize("case", list(KERAS_CASES))
def test_bad_keras_input(case: str) -> None:
    keras = pytest.importorskip("keras")
    make_args, kwargs, needle = KERAS_CASES[case]
    inp = keras.Input((4,))
    model = keras.Model(inp, keras.layers.Dense(3)(keras.layers.Dense(8, activation="relu")(inp)))
    before = [np.array(w) for w in model.get_weights()]
    with pytest.raises(NetdoctorError) as info:
        netdoctor.check(model, *make_args(np), **kwargs)
    assert needle in str(info.value) and "\n" not in str(info.value), str(info.value)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_a_per_sample_scalar_is_one_feature() -> None:
    """Inputs of shape (B,) hold one feature per sample, not B features (ND103 counts features)."""

    class Scalar(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(1, 3)

        def forward(self, x):
            return self.fc(x.unsqueeze(1))

    varying = netdoctor.check(Scalar(), torch.randn(16), Y, select=["ND103"])
    assert not varying.findings, [f.message for f in varying.findings]
    [target] = varying.targets
    assert target.rules_passed == ("ND103",)


def test_every_rng_is_left_as_it_was() -> None:
    """torch, numpy's global, python's random and TensorFlow's global generator, for both frameworks."""
    import random

    model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.ReLU(), nn.Linear(8, 3))

    def states():
        out = [torch.get_rng_state().clone(), random.getstate(), np.random.get_state()[1].copy()]
        try:
            import tensorflow as tf

            out.append(tf.random.get_global_generator().state.numpy().copy())
        except ImportError:
            pass
        return out

    def same(a, b):
        return (torch.equal(a[0], b[0]) and a[1] == b[1] and np.array_equal(a[2], b[2])
                and all(np.array_equal(x, y) for x, y in zip(a[3:], b[3:])))

    before = states()
    netdoctor.check(model, X, Y, verify=True)
    assert same(before, states()), "a torch check moved an RNG"
    keras = pytest.importorskip("keras")
    inp = keras.Input((4,))
    km = keras.Model(inp, keras.layers.Dense(3)(keras.layers.Dropout(0.5)(keras.layers.Dense(8)(inp))))
    before = states()
    netdoctor.check(km, X.numpy(), Y.numpy(), verify=True)
    assert same(before, states()), "a Keras check moved an RNG"


@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_nonfinite_values_raise_no_numpy_warnings(poison):
    """NaN and Inf in the data, the activations and the gradients are findings, not numpy's
    RuntimeWarnings on the user's console; the user's own numpy error state is left as it was."""
    model = mlp()
    x = X.clone()
    x[0, 0] = poison
    before = np.geterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        report = netdoctor.check(model, x, Y, loss_fn=nn.CrossEntropyLoss())
    assert {"ND102"} <= {f.code for f in report.findings}
    assert np.geterr() == before
