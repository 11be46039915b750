"""AUTOTRAINER's vanishing-gradient demo (demo_case/Gradient_Vanish_Case): Circle data;
2 -> 8 x Dense(5, sigmoid) -> Dense(1, sigmoid), He-uniform kernels, zero biases, binary
cross-entropy, Adam 1e-3. Measured by the recipe: gradient norms from 1.1e-7 (first layer) to 0.22
(last), accuracy 0.50 after 60 epochs. Inputs within +-1.2."""

import _benchdata as bd
import _keraskit as kk

EXPECT = {
    "raise": ["ND301", "ND502"],
    "not": ["ND101", "ND302", "ND303", "ND401"],
    "source": "AUTOTRAINER demo_case/Gradient_Vanish_Case (BENCHMARK-CASES F01)",
    "seeds": 2,
    "gate": True,
}


def build_model():
    m = kk.dense_stack([2] + [5] * 8 + [1], "sigmoid", "he_uniform", out_act="sigmoid")
    m.compile(optimizer="adam", loss="binary_crossentropy")
    return m


def sample_batch():
    x, y = bd.circle()
    return x, y[:, None]
