"""The baseline detectors apply their published thresholds (hand-built snapshots, no framework)."""

from __future__ import annotations

import numpy as np

from _bench import load
from netdoctor.snapshot import (
    KIND_ACTIVATION,
    KIND_LINEAR,
    ROLE_WEIGHT,
    DataStats,
    LayerRecord,
    LossInfo,
    ModelSnapshot,
    OutputInfo,
    ParamRecord,
    TensorStats,
)

baselines = load("baselines")


def _dense(name: str, w: np.ndarray, g: np.ndarray, act: str = "relu", out: np.ndarray | None = None) -> LayerRecord:
    p = ParamRecord("weight", ROLE_WEIGHT, TensorStats.from_array(w), grad=TensorStats.from_array(g),
                    fan_in=w.shape[1], fan_out=w.shape[0], units=w.shape[0])
    return LayerRecord(name, "Linear", KIND_LINEAR, activation=act, params=(p,),
                       output=None if out is None else TensorStats.from_array(out, unit_axis=-1))


def _snap(layers, *, loss=1.0, loss_name="MSELoss", x=None, out=None, final=None) -> ModelSnapshot:
    data = None if x is None else DataStats(inputs={"x": TensorStats.from_array(x, unit_axis=-1)}, num_samples=len(x))
    o = None if out is None else OutputInfo(TensorStats.from_array(out, unit_axis=-1), final_activation=final)
    return ModelSnapshot("torch", layers=tuple(layers), data=data, output=o,
                         loss=LossInfo(loss_name, expects="any", value=loss, source="user"))


rng = np.random.default_rng(0)
W = rng.normal(size=(5, 5))


def test_autotrainer_vanishing_needs_ratio_and_absolute_norm():
    small = _snap([_dense("a", W, W * 1e-6), _dense("b", W, W * 1e-2), _dense("c", W, W * 1.0)])
    assert "ND301" in baselines.autotrainer(small)            # ratio 1e-6, |g_first| ~5e-6
    ratio_only = _snap([_dense("a", W, W * 1e-4 * 50), _dense("c", W, W * 1e2)])
    assert "ND301" not in baselines.autotrainer(ratio_only)   # ratio 5e-5 but |g_first| ~2e-2 > 1e-4
    uniform_tiny = _snap([_dense("a", W, W * 1e-10), _dense("c", W, W * 1e-11)])
    assert "ND301" not in baselines.autotrainer(uniform_tiny)  # F06: tiny everywhere, ratio 10
    assert "ND301" in baselines.smdebugger(uniform_tiny)       # absolute threshold catches it


def test_autotrainer_exploding_ratio_and_loss():
    grow = _snap([_dense("a", W, W * 100.0), _dense("c", W, W * 1.0)])
    assert "ND302" in baselines.autotrainer(grow)
    assert "ND302" in baselines.autotrainer(_snap([_dense("a", W, W), _dense("c", W, W)], loss=5e3))
    nan = _snap([_dense("a", W, W), _dense("c", W, W)], loss=float("nan"))
    assert {"ND302", "ND303"} <= set(baselines.autotrainer(nan))


def test_autotrainer_dying_relu_from_zero_gradient_entries():
    g = W.copy()
    g[:4] = 0.0  # 80% of the entries exactly zero
    assert "ND401" in baselines.autotrainer(_snap([_dense("a", W, g), _dense("c", W, g)]))
    assert "ND401" not in baselines.autotrainer(_snap([_dense("a", W, W), _dense("c", W, W)]))


def test_autotrainer_abnormal_data_and_output_rules():
    hidden = _dense("a", W, W, out=np.full((8, 5), 20.0))
    snap = _snap([hidden, _dense("c", W, W, act=None)])
    assert "ND101" in baselines.autotrainer(snap)
    relu_out = _snap([_dense("a", W, W)], loss_name="categorical_crossentropy", out=np.abs(rng.normal(size=(8, 3))),
                     final="relu")
    assert "ND503" in baselines.autotrainer(relu_out)
    probs = np.full((8, 3), 1 / 3)
    softmax = _snap([_dense("a", W, W)], loss_name="categorical_crossentropy", out=probs, final="softmax")
    assert "ND503" not in baselines.autotrainer(softmax)


def test_smdebugger_input_range_dead_relu_and_variance_ratio():
    assert "ND101" in baselines.smdebugger(_snap([_dense("a", W, W)], x=rng.normal(size=(16, 3))))  # standardized, outliers
    assert "ND101" not in baselines.smdebugger(_snap([_dense("a", W, W)], x=rng.uniform(0, 1, size=(16, 3))))
    act = LayerRecord("a/relu", "ReLU", KIND_ACTIVATION, activation="relu",
                      unit_active=np.array([0.0, 0.005, 0.0, 0.5]))
    assert "ND401" in baselines.smdebugger(_snap([_dense("a", W, W), act]))
    l1 = _dense("a", W, W, out=rng.normal(size=(16, 5)))
    l2 = _dense("b", W, W, out=rng.normal(size=(16, 5)) * 10)
    assert "ND203" in baselines.smdebugger(_snap([l1, l2]))
