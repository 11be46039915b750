"""Issue 16, the blind spot: what the output can reach against what the loss asks.

Each model is built the way the issue describes it, with plain torch or Keras and a loss written by
hand; the healthy twins are correct custom losses that must stay quiet.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from netdoctor.findings import Severity

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def _digits(n: int = 256, scale: float = 1 / 16):
    from sklearn.datasets import load_digits

    d = load_digits()
    return torch.tensor(d.data[:n] * scale, dtype=torch.float32), torch.tensor(d.target[:n])


def _mlp(*tail: nn.Module, hidden: nn.Module | None = None) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 64), hidden or nn.ReLU(), nn.Linear(64, 10), *tail)


def _check(model, x, y, loss_fn):
    import netdoctor

    return netdoctor.check(model, x, y, loss_fn=loss_fn)


def _codes(report) -> set[str]:
    return {f.code for f in report.findings if f.severity >= Severity.WARNING}


def test_mse_on_softmax_is_weak_gradient():
    x, y = _digits()
    report = _check(_mlp(nn.Softmax(dim=1)), x, y, lambda p, t: F.mse_loss(p, F.one_hot(t, 10).float()))
    f = next(f for f in report.findings if f.code == "ND505")
    assert f.severity == Severity.ERROR
    assert f.evidence["grad_vs_ce"] < 0.05  # ~0.02: the softmax Jacobian shrinks the error


def test_double_softmax_then_log_loss_is_confined():
    x, y = _digits()
    report = _check(_mlp(nn.Softmax(dim=1), nn.Softmax(dim=1)), x, y, lambda p, t: F.nll_loss(torch.log(p), t))
    f = next(f for f in report.findings if f.code == "ND506")
    assert f.evidence["ceiling"] == pytest.approx(math.e / (math.e + 9))
    assert "ND503" not in report.codes()


def test_sigmoid_for_targets_in_minus_one_one_is_unreachable():
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = torch.tanh(x[:, :1] * 2)  # in [-1, 1], about half negative
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1), nn.Sigmoid())
    report = _check(model, x, y, nn.MSELoss())
    f = next(f for f in report.findings if f.code == "ND503")
    assert f.evidence["target_outside"] > 0.3
    assert f.evidence["mse_floor"] > 0.1 * f.evidence["target_var"]
    # the same model with targets in (0, 1) is a correct bounded regression
    assert "ND503" not in _check(model, x, (y + 1) / 2, nn.MSELoss()).codes()


def test_softmax_over_the_batch_axis():
    x, y = _digits()
    report = _check(_mlp(nn.Softmax(dim=0)), x, y, lambda p, t: F.nll_loss(torch.log(p), t))
    assert "ND507" in report.codes()
    assert "ND507" not in _check(_mlp(nn.Softmax(dim=1)), x, y, lambda p, t: F.nll_loss(torch.log(p), t)).codes()


def test_clamped_handwritten_ce_on_logits_ignores_wrong_samples():
    x, y = _digits(scale=1 / 4)

    def clamped_ce(z, t):
        return -torch.log(torch.gather(z, 1, t[:, None]).clamp(1e-16, 1.0)).mean()

    report = _check(_mlp(), x, y, clamped_ce)
    f = next(f for f in report.findings if f.code == "ND505")
    assert f.evidence["zero_grad_wrong"] > 0.1
    assert f.evidence["loss_value"] > 3 * f.evidence["expected_init_loss"]  # ln 10 = 2.30


def test_hidden_softmax():
    x, y = _digits()
    report = _check(_mlp(hidden=nn.Softmax(dim=1)), x, y, nn.CrossEntropyLoss())
    assert "ND508" in report.codes()
    assert "ND508" not in _check(_mlp(), x, y, nn.CrossEntropyLoss()).codes()


def _train(model, x, y, loss_fn, steps=150, lr=1e-2):
    params = list(model.parameters())
    for _ in range(steps):
        loss = loss_fn(model(x), y)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * 10 * g
    return model


def _focal(z, t, gamma=2.0):
    ce = F.cross_entropy(z, t, reduction="none")
    return ((1 - torch.exp(-ce)) ** gamma * ce).mean()


def _smoothed(z, t, eps=0.1):
    logp = F.log_softmax(z, dim=1)
    k = z.shape[1]
    target = torch.full_like(logp, eps / k).scatter_(1, t[:, None], 1 - eps + eps / k)
    return -(target * logp).sum(1).mean()


@pytest.mark.parametrize("loss_fn", [_focal, _smoothed, nn.MultiMarginLoss(),
                                     lambda p, t: -torch.log(p.gather(1, t[:, None]).clamp_min(1e-12)).mean()],
                         ids=["focal", "label-smoothing", "hinge", "handwritten-ce-on-softmax"])
@pytest.mark.parametrize("trained", [False, True], ids=["init", "trained"])
def test_correct_custom_losses_stay_quiet(loss_fn, trained):
    x, y = _digits()
    softmax = loss_fn not in (_focal, _smoothed) and not isinstance(loss_fn, nn.Module)
    model = _mlp(nn.Softmax(dim=1)) if softmax else _mlp()
    if trained:
        _train(model, x, y, loss_fn)
    report = _check(model, x, y, loss_fn)
    assert not ({"ND503", "ND505", "ND506", "ND507", "ND508"} & report.codes()), report.findings


def test_keras_mse_on_softmax_and_from_logits_severity():
    keras = pytest.importorskip("keras")
    from keras import layers

    import netdoctor

    x, y = _digits()
    x, y = x.numpy(), y.numpy()

    def model(loss):
        keras.utils.set_random_seed(0)
        m = keras.Sequential([keras.Input((64,)), layers.Dense(64, activation="relu"),
                              layers.Dense(10, activation="softmax")])
        m.compile(optimizer="adam", loss=loss)
        return m

    onehot = np.eye(10, dtype="float32")[y]
    assert "ND505" in netdoctor.check(model("mean_squared_error"), x, onehot).codes()
    assert "ND505" not in netdoctor.check(model("categorical_crossentropy"), x, onehot).codes()
    # softmax + from_logits=True: on TensorFlow Keras reads the logits the softmax output carries,
    # so the gradient at the logits is cross-entropy's and the finding is a warning, not an error.
    report = netdoctor.check(model(keras.losses.SparseCategoricalCrossentropy(from_logits=True)), x, y)
    f = next(f for f in report.findings if f.code == "ND503")
    if keras.backend.backend() == "tensorflow":
        assert f.severity == Severity.WARNING
        assert f.evidence["grad_vs_ce"] == pytest.approx(1.0, rel=1e-3)
    else:
        assert f.severity == Severity.ERROR


def test_summed_cross_entropy_is_a_reduction_bug():
    x, y = _digits()
    report = _check(_mlp(), x, y, nn.CrossEntropyLoss(reduction="sum"))
    f = next(f for f in report.findings if f.code == "ND510")
    assert f.evidence["grad_vs_ce"] == pytest.approx(256, rel=0.01)
    assert "ND510" not in _check(_mlp(), x, y, nn.CrossEntropyLoss()).codes()
    # a summed loss on a batch of 8 is too small to tell from a large gradient: not judged
    assert "ND510" not in _check(_mlp(), x[:8], y[:8], nn.CrossEntropyLoss(reduction="sum")).codes()
