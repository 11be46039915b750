"""Issue 16, the remaining gaps: regression targets under a classification loss, a log-loss on an
unbounded head, and a loss summed over the batch for a regression.

Every model is plain torch or Keras on scikit-learn's bundled regression sets (diabetes: one
target; linnerud: three), with the loss as users write it; each faulty case has a correct twin
that must stay quiet.
"""

from __future__ import annotations

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


def _standardize(a: np.ndarray) -> np.ndarray:
    return ((a - a.mean(0)) / a.std(0)).astype("float32")


def _diabetes(n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_diabetes

    d = load_diabetes()
    return _standardize(d.data[:n]), _standardize(d.target[:n, None])


def _linnerud() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_linnerud

    d = load_linnerud()  # 20 samples, 3 exercise features -> 3 physiological targets
    return _standardize(d.data), _standardize(d.target)


def _mlp(n_in: int, n_out: int, *tail: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(n_in, 32), nn.ReLU(), nn.Linear(32, n_out), *tail)


def _check(model, x, y, loss_fn):
    import netdoctor

    return netdoctor.check(model, torch.from_numpy(x), torch.from_numpy(y), loss_fn=loss_fn)


def _probe(framework: str, model, x, y, loss_fn=None):
    """The loss probe of one collect, as netdoctor.check measures it."""
    from netdoctor.config import Config
    from netdoctor.engine import merged_needs, selected_rules
    from netdoctor.frameworks import get_adapter
    from netdoctor.snapshot import ProbeSettings

    if framework == "torch":
        x, y = torch.from_numpy(x), torch.from_numpy(y)
    snap = get_adapter(framework).collect(model, inputs=x, targets=y, loss_fn=loss_fn,
                                          needs=merged_needs(selected_rules(Config(), one_shot=True)),
                                          settings=ProbeSettings(), input_shape=None)
    return snap.loss_probe


def _finding(report, code):
    return next((f for f in report.findings if f.code == code), None)


def _soft_ce(z, t):
    return -(t * F.log_softmax(z, dim=1)).sum(1).mean()


# -- cross-entropy for a regression --------------------------------------------------------------

def test_cross_entropy_on_one_unit_regression_head_is_constant():
    x, y = _diabetes()
    report = _check(_mlp(10, 1), x, y, nn.CrossEntropyLoss())
    f = _finding(report, "ND503")
    assert f is not None and f.severity == Severity.ERROR, report.findings
    assert f.evidence["zero_grad_rows"] == 1.0  # a softmax over one class: the loss sends nothing back
    assert f.evidence["loss_value"] == 0.0
    assert "MSE" in f.recommendation and "nn.MSELoss()" in f.snippet
    # the zero gradient is explained by the loss (info), not reported as an unexplained disconnection
    zero = _finding(report, "ND304")
    assert zero is not None and zero.severity == Severity.INFO and "single output unit" in zero.message
    assert not ({"ND503", "ND304"} & _check(_mlp(10, 1), x, y, nn.MSELoss()).codes())


@pytest.mark.parametrize("loss_fn", [nn.CrossEntropyLoss(), _soft_ce], ids=["CrossEntropyLoss", "handwritten-soft-ce"])
def test_cross_entropy_on_multi_output_regression_targets(loss_fn):
    x, y = _linnerud()
    report = _check(_mlp(3, 3), x, y, loss_fn)
    f = _finding(report, "ND503")
    assert f is not None and f.severity == Severity.ERROR, report.findings
    assert f.evidence["target_not_dist"] == 1.0  # standardized targets: negative entries, rows not summing to 1
    if loss_fn is _soft_ce:  # no name to go by: the gradient is measured to be soft-target cross-entropy's
        assert f.evidence["soft_ce_err"] < 1e-3
    assert "ND503" not in _check(_mlp(3, 3), x, y, nn.MSELoss()).codes()


def test_soft_label_cross_entropy_with_distributions_stays_quiet():
    x, _ = _linnerud()
    teacher = torch.softmax(torch.from_numpy(x) @ torch.randn(3, 3, generator=torch.Generator().manual_seed(1)), 1)
    for loss_fn in (nn.CrossEntropyLoss(), _soft_ce):  # distillation: float targets that are distributions
        report = _check(_mlp(3, 3), x, teacher.numpy(), loss_fn)
        assert "ND503" not in report.codes(), report.findings


# -- a log-loss on an unbounded head --------------------------------------------------------------

def _binary() -> tuple[np.ndarray, np.ndarray]:
    x, y = _diabetes()
    return x, (y > 0).astype("float32")


def test_bce_loss_on_linear_head_is_a_finding_not_a_failed_check():
    x, y = _binary()
    # torch's BCELoss raises on inputs outside [0, 1]: before, the whole check failed with a LossError
    report = _check(_mlp(10, 1), x, y, nn.BCELoss())
    f = _finding(report, "ND503")
    assert f is not None and f.severity == Severity.ERROR
    assert "between 0 and 1" in f.evidence["loss_error"]
    assert f.evidence["output_min"] < 0 <= f.evidence["output_max"]
    assert "BCEWithLogitsLoss" in f.snippet
    assert "ND303" not in report.codes()  # the loss raised, nothing became NaN
    assert any("clamped into (0, 1)" in n for t in report.targets for n in t.notes)


def test_handwritten_log_loss_on_linear_head_names_the_cause():
    x, y = _binary()

    def log_loss(p, t):
        return -(t * torch.log(p) + (1 - t) * torch.log(1 - p)).mean()

    report = _check(_mlp(10, 1), x, y, log_loss)
    f = _finding(report, "ND503")
    assert f is not None and f.severity == Severity.ERROR, report.findings
    assert f.evidence["unit_range"] is True and f.evidence["output_min"] < 0
    nan = _finding(report, "ND303")
    assert nan is not None and "see ND503" in nan.message
    # the same loss on a sigmoid head, and the logits form on the linear head, are correct
    assert not ({"ND503", "ND303"} & _check(_mlp(10, 1, nn.Sigmoid()), x, y, log_loss).codes())
    assert not ({"ND503", "ND303"} & _check(_mlp(10, 1), x, y, nn.BCEWithLogitsLoss()).codes())


# -- a summed regression loss -------------------------------------------------------------------------

@pytest.mark.parametrize("loss_fn", [nn.MSELoss(reduction="sum"), lambda p, t: ((p - t) ** 2).sum()],
                         ids=["MSELoss-sum", "handwritten-sum"])
def test_summed_regression_loss(loss_fn):
    x, y = _diabetes()
    f = _finding(_check(_mlp(10, 1), x, y, loss_fn), "ND510")
    assert f is not None and f.severity == Severity.WARNING
    assert f.evidence["sum_ratio"] == pytest.approx(1.0, abs=1e-4)
    assert 'reduction="mean"' in f.snippet


@pytest.mark.parametrize("loss_fn", [nn.MSELoss(), nn.L1Loss(), lambda p, t: ((p - t) ** 2).sum(1).mean()],
                         ids=["MSELoss", "L1Loss", "sum-over-outputs-then-mean"])
def test_mean_regression_losses_stay_quiet(loss_fn):
    x, y = _linnerud()
    x = np.tile(x, (2, 1))  # 40 rows: enough to split the batch
    y = np.tile(y, (2, 1))
    assert "ND510" not in _check(_mlp(3, 3), x, y, loss_fn).codes()
    assert _probe("torch", _mlp(3, 3), x, y, loss_fn).sum_ratio == pytest.approx(2.0, rel=1e-4)


def test_summed_loss_points_to_nd510_not_to_exploding_gradients():
    """A summed loss sends batch-size times a mean's gradient: ND302 judges that at the mean's scale, so
    a healthy network under it gets ND510 (the cause), not an exploding-gradient error; a network whose
    gradients explode even at the mean's scale still gets ND302, which names the summed loss."""
    x, y = _diabetes()
    summed = nn.MSELoss(reduction="sum")
    report = _check(_mlp(10, 1), x, y, summed)
    assert "ND510" in report.codes() and "ND302" not in report.codes()
    assert "at the mean's scale" in _finding(report, "ND510").message
    assert _check(_mlp(10, 1), x, y, nn.MSELoss()).codes().isdisjoint({"ND302", "ND510"})

    torch.manual_seed(0)
    wide = nn.Sequential(nn.Linear(10, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256),
                         nn.ReLU(), nn.Linear(256, 1))
    for m in wide:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=1.0)  # explodes whatever the reduction
    f = _finding(_check(wide, x, y, summed), "ND302")
    assert f is not None and "summed over the batch (ND510)" in f.message
    assert _finding(_check(wide, x, y, nn.MSELoss()), "ND302") is not None


def test_summed_loss_is_not_judged_on_a_small_batch():
    x, y = _diabetes(8)
    assert "ND510" not in _check(_mlp(10, 1), x, y, nn.MSELoss(reduction="sum")).codes()
    assert _probe("torch", _mlp(10, 1), x, y, nn.MSELoss(reduction="sum")).sum_ratio is None


# -- Keras ------------------------------------------------------------------------------------------------

def _keras_model(loss, n_in: int, n_out: int, activation=None):
    keras = pytest.importorskip("keras")
    from keras import layers

    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((n_in,)), layers.Dense(32, activation="relu"),
                          layers.Dense(n_out, activation=activation)])
    m.compile(optimizer="adam", loss=loss)
    return m


def _kcheck(model, x, y):
    import netdoctor

    return netdoctor.check(model, x, y)


def test_keras_categorical_crossentropy_on_regression():
    x, y = _diabetes()
    one = _kcheck(_keras_model("categorical_crossentropy", 10, 1), x, y)
    f = _finding(one, "ND503")
    assert f is not None and "single output unit" in f.message and f.evidence["zero_grad_rows"] == 1.0
    xl, yl = _linnerud()
    many = _kcheck(_keras_model("categorical_crossentropy", 3, 3), xl, yl)
    f = _finding(many, "ND503")
    assert f is not None and f.evidence["target_not_dist"] == 1.0, many.findings
    assert 'loss="mse"' in f.snippet
    assert "ND503" not in _kcheck(_keras_model("mse", 3, 3), xl, yl).codes()


def test_keras_log_losses_on_linear_head():
    keras = pytest.importorskip("keras")
    from keras import ops

    x, y = _binary()
    # Keras clips the probabilities: no NaN, but the measured range shows the logits
    f = _finding(_kcheck(_keras_model("binary_crossentropy", 10, 1), x, y), "ND503")
    assert f is not None and f.evidence["output_min"] < 0 and "outside [0, 1]" in f.message

    def log_loss(t, p):
        return -ops.mean(t * ops.log(p) + (1 - t) * ops.log(1 - p))

    report = _kcheck(_keras_model(log_loss, 10, 1), x, y)
    f = _finding(report, "ND503")
    assert f is not None and f.evidence["unit_range"] is True, report.findings
    assert "see ND503" in _finding(report, "ND303").message
    quiet = _kcheck(_keras_model(keras.losses.BinaryCrossentropy(from_logits=True), 10, 1), x, y)
    assert not ({"ND503", "ND303"} & quiet.codes())
    assert not ({"ND503", "ND303"} & _kcheck(_keras_model(log_loss, 10, 1, "sigmoid"), x, y).codes())


def test_keras_summed_regression_loss():
    keras = pytest.importorskip("keras")
    x, y = _diabetes()
    f = _finding(_kcheck(_keras_model(keras.losses.MeanSquaredError(reduction="sum"), 10, 1), x, y), "ND510")
    assert f is not None and f.evidence["sum_ratio"] == pytest.approx(1.0, abs=1e-4)
    assert "ND510" not in _kcheck(_keras_model("mse", 10, 1), x, y).codes()
    assert _probe("keras", _keras_model("mse", 10, 1), x, y).sum_ratio == pytest.approx(2.0, rel=1e-4)


def test_sum_ratio_reuses_the_probe_loss_on_the_whole_batch():
    """The half-batch test evaluates the user's loss on the two halves only: the whole batch's loss is
    the probe pass's own (torch and Keras share this in batch_additivity)."""
    x, y = _diabetes()
    calls = []

    def counted(p, t):
        calls.append(int(p.shape[0]))
        return nn.functional.mse_loss(p, t, reduction="sum")

    assert "ND510" in _check(_mlp(10, 1), x, y, counted).codes()
    assert calls == [256, 128, 128]
