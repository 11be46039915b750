"""The framework-free part of --verify: which fix for which finding, and the verdict arithmetic."""

from __future__ import annotations

import math

from netdoctor.findings import Category, Finding, Report, Severity
from netdoctor.snapshot import (
    LayerRecord,
    LossInfo,
    ModelSnapshot,
    OutputInfo,
    ParamRecord,
    TensorStats,
)
from netdoctor.verify import (
    FixPlan,
    VerifyOptions,
    describe,
    join_blocks,
    original_name,
    plan_for,
    step,
)
from netdoctor.verify.verdict import persists as _persists
from netdoctor.verify.verdict import worse as _worse


def _finding(code: str, layer: str | None = None, **evidence) -> Finding:
    return Finding(code, "x", Severity.ERROR, Category.from_code(code), "msg", layer=layer, evidence=evidence)


def _dense(name: str, act: str, fan_in: int = 8, units: int = 8) -> LayerRecord:
    w = ParamRecord("weight", "weight", TensorStats(shape=(units, fan_in), std=0.0), fan_in=fan_in, fan_out=units,
                    units=units)
    return LayerRecord(name, "Linear", "linear", activation=act, params=(w,))


def test_reinit_follows_the_activation():
    snap = ModelSnapshot("torch", layers=(_dense("a", "relu"), _dense("b", "tanh"), _dense("c", "selu"),
                                          _dense("d", "leaky_relu")))
    inits = {}
    for name in "abcd":
        plan = plan_for(_finding("ND202", name, param="weight"), Report(), snap)
        assert isinstance(plan, FixPlan)
        [s] = plan.steps
        inits[name] = s.get("init")
    assert inits == {"a": "he:relu", "b": "glorot:tanh", "c": "lecun", "d": "he:leaky_relu"}
    assert describe(FixPlan((step("reinit", "a", param="weight", init="he:relu"),)), snap) == \
        "re-initialize `a` with He normal (ReLU)"


def test_output_loss_mismatch_plans_differ_by_framework():
    out = OutputInfo(TensorStats(shape=(4, 10)), looks_like="probabilities", final_activation="softmax",
                     final_layer="3")
    loss = LossInfo("CrossEntropyLoss", expects="logits")
    f = _finding("ND503", "2", final_activation="softmax", units=10, expects="logits")
    torch_plan = plan_for(f, Report(), ModelSnapshot("torch", output=out, loss=loss))
    assert torch_plan.steps == (step("remove", "3", transform="log"),)
    keras_plan = plan_for(f, Report(), ModelSnapshot("keras", output=out, loss=LossInfo("scce", "logits", from_logits=True)))
    assert keras_plan.steps == (step("loss_form", form="probabilities"),)
    one_unit = _finding("ND503", "2", final_activation="softmax", units=1)
    assert "one sigmoid unit" in plan_for(one_unit, Report(), ModelSnapshot("torch", output=out, loss=loss))


def test_rules_without_a_mechanical_fix_say_why():
    reason = plan_for(_finding("ND103"), Report(), ModelSnapshot("torch"))
    assert isinstance(reason, str) and "data pipeline" in reason
    cut = plan_for(_finding("ND304", "enc", cause="cut:enc"), Report(), ModelSnapshot("torch"))
    assert isinstance(cut, str) and "by hand" in cut


def test_probe_loss_tolerance():
    o = VerifyOptions(tolerance=0.05, abs_tolerance=1e-4)
    assert _worse(1.0, 1.04, o) is None
    assert "worse after the fix (1 -> 1.1" in _worse(1.0, 1.1, o)
    assert _worse(0.0, 5e-5, o) is None and _worse(0.0, 2e-4, o)
    assert _worse(math.nan, 0.3, o) is None  # a NaN probe fixed is an improvement
    assert "is nan" in _worse(0.3, math.nan, o)


def test_symptom_is_judged_where_it_fired_through_renames():
    f = _finding("ND201", "fc2", param="weight")
    rename = {"fc2": "fc2.0"}
    still = Report(findings=(_finding("ND201", "fc2.0"),))
    elsewhere = Report(findings=(_finding("ND201", "fc3"),))
    assert _persists(f, still, rename) and not _persists(f, elsewhere, rename)
    wide = _finding("ND301", "0")
    assert _persists(wide, Report(findings=(_finding("ND301", "4.0"),)), {"0": "0.0"})  # model-wide rule
    assert original_name("dense_1_act", {"dense_1/relu": "dense_1_act"}) == "dense_1/relu"
    assert original_name("fc1.0/relu", {"fc1": "fc1.0"}) == "fc1/relu"


def test_diff_blocks_are_deduplicated_and_capped():
    blocks = [("standardize", ["+ a"]), ("standardize", ["+ a"])] + [("reinit", [f"+ init {i}"]) for i in range(6)]
    assert join_blocks(blocks).splitlines() == ["+ a", "+ init 0", "+ init 1", "+ init 2", "+ init 3",
                                                "# ... and 2 more layers the same way"]
