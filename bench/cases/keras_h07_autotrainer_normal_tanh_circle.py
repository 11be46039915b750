"""Healthy control (BENCHMARK-CASES H01): an AUTOTRAINER-"normal" model from DeepDiagnosis'
difference-threshold set - Circle, 7 hidden Dense(5, tanh), He-uniform, Dense(1, sigmoid), binary
cross-entropy, Adam 1e-3. AUTOTRAINER with lowered thresholds "found" explode/vanish here (a documented
false positive). Eight plain weight layers: ND502's structural warning is not scored (the recipe calls
the model healthy for its gradients)."""

import _benchdata as bd
import _keraskit as kk

EXPECT = {
    "raise": [],
    "allow": ["ND502"],
    "source": "DeepDiagnosis/ICSE2022 difference threshold/Circle (AUTOTRAINER normal, model_mi_7 family) (BENCHMARK-CASES H01)",
    "seeds": 3,
    "gate": True,
}


def build_model():
    m = kk.dense_stack([2] + [5] * 7 + [1], "tanh", "he_uniform", out_act="sigmoid")
    m.compile(optimizer="adam", loss="binary_crossentropy")
    return m


def sample_batch():
    x, y = bd.circle()
    return x, y[:, None]
