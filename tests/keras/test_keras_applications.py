"""Real untrained networks (keras.applications, ``weights=None``) give complete snapshots.

And, once the rules exist, no error-severity finding. A rule that false-alarms on one of
them is listed in ``KNOWN_RULE_FALSE_ALARMS`` (reported to the rules' author, never patched
here): the test then xfails with the measured message instead of failing, and fails for
any other error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from keras_helpers import collect, keras, rng

import netdoctor
from netdoctor.findings import Severity
from netdoctor.snapshot import KIND_CONV, KIND_PREPROCESS, Need

pytestmark = pytest.mark.slow

# model -> rule codes seen to false-alarm at error severity (reported, not patched here).
# ND302 (exploding-gradients) fired on MobileNetV2 and ResNet50 with an earlier rule version;
# the current rules are clean on all three.
KNOWN_RULE_FALSE_ALARMS: dict[str, set[str]] = {}

CASES = {
    # name: (constructor, input size, preprocessing the model expects)
    "MobileNetV2": (keras.applications.MobileNetV2, 64, keras.applications.mobilenet_v2.preprocess_input),
    "ResNet50": (keras.applications.ResNet50, 32, keras.applications.resnet50.preprocess_input),
    "EfficientNetB0": (keras.applications.EfficientNetB0, 32, None),  # rescales inside: raw 0-255
}


@pytest.fixture(scope="module", params=sorted(CASES))
def app(request: pytest.FixtureRequest) -> dict[str, Any]:
    build, size, prep = CASES[request.param]
    keras.backend.clear_session()  # fresh layer-name counters: the asserted names must not depend on test order
    model = build(weights=None, input_shape=(size, size, 3))
    raw = rng(0).uniform(0, 255, size=(4, size, size, 3)).astype("float32")
    x = prep(raw.copy()) if prep is not None else raw
    y = rng(1).integers(0, 1000, size=(4,))
    return {"name": request.param, "model": model, "x": x, "raw": raw, "y": y,
            "snap": collect(model, x, y, loss_fn=keras.losses.SparseCategoricalCrossentropy())}


def test_snapshot_is_complete(app: dict[str, Any]) -> None:
    snap, model = app["snap"], app["model"]
    assert snap.collected == frozenset(Need) - {Need.HISTORY, Need.FIT}
    weight = snap.weight_layers()
    n_conv = sum(1 for layer in model.layers if "Conv" in type(layer).__name__)
    assert sum(1 for r in weight if r.kind == KIND_CONV) == n_conv
    assert [r.depth for r in weight] == list(range(len(weight)))
    for r in snap.layers:
        assert r.executed and r.output is not None and r.calls == 1, r.name
        if r.is_weight_layer:
            assert r.input is not None and r.weight is not None and r.activation is not None, r.name
            assert r.weight.grad is not None and np.isfinite(r.weight.grad.l2), r.name
            assert r.weight.fan_in and r.weight.initializer, r.name
    assert snap.residual is True
    assert snap.output.final_activation == "softmax" and snap.output.looks_like == "probabilities"
    assert snap.output.final_layer == "predictions/softmax"
    assert snap.loss.source == "user" and np.isfinite(snap.loss.value)
    assert snap.param_count == model.count_params()
    entries = [r for r in weight if r.entry]
    assert [r.kind for r in entries] == [KIND_CONV] and entries[0].input.unit_mean.shape == (3,)


def test_activation_structure(app: dict[str, Any]) -> None:
    weight = app["snap"].weight_layers()
    acts = {r.activation for r in weight}
    expected = {"MobileNetV2": {"relu6", "linear", "softmax"}, "ResNet50": {"relu", "softmax"},
                "EfficientNetB0": {"silu", "sigmoid", "linear", "softmax"}}[app["name"]]
    assert expected <= acts
    bn_after = [r for r in weight if r.attrs.get("norm_after")]
    n_bn = sum(1 for layer in app["model"].layers if type(layer).__name__ == "BatchNormalization")
    assert len(bn_after) == n_bn  # every BatchNorm of these networks directly follows a conv


def test_entry_layer_sees_what_the_model_normalizes(app: dict[str, Any]) -> None:
    snap = app["snap"]
    entry = next(r for r in snap.weight_layers() if r.entry)
    preprocess = [r for r in snap.layers if r.kind == KIND_PREPROCESS]
    if app["name"] == "EfficientNetB0":
        assert [r.name for r in preprocess][:2] == ["rescaling", "normalization"]
        assert snap.data.inputs["x"].max > 200  # raw pixels go in ...
        assert entry.name == "stem_conv" and entry.input.abs_max <= 1.0  # ... the stem sees [0, 1]
        assert not entry.consumes_model_input
    else:
        assert not preprocess  # the user must call preprocess_input (done above)
        assert entry.input.max == pytest.approx(float(app["x"].max()), rel=1e-6)


def test_no_error_findings(app: dict[str, Any]) -> None:
    from netdoctor.rules import registry

    if not registry():
        pytest.skip("no rules registered yet")
    report = netdoctor.check(app["model"], app["x"], app["y"], loss_fn=keras.losses.SparseCategoricalCrossentropy())
    errors = [f for f in report.findings if f.severity == Severity.ERROR]
    codes = {f.code for f in errors}
    unexpected = codes - KNOWN_RULE_FALSE_ALARMS.get(app["name"], set())
    assert not unexpected, [f.message for f in errors]
    if errors:
        pytest.xfail("known rule false alarm (reported): " + "; ".join(f"{f.code} {f.message}" for f in errors))
