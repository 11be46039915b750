"""Deep sigmoid MLP with N(0, 1) weights on 256-wide layers (netdoctor examples/mlp_torch.py fault 2;
SO 39817949 "saturated sigmoid" in TheDeepChecker's pitfalls): the hidden pre-activations have a
spread of ~10, so most units sit at 0 or 1 for most samples. Inputs are digits/16 (well scaled): the
weights alone saturate them."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": ["ND402", "ND203"],
    "not": ["ND101", "ND201", "ND401"],
    "source": "SO 39817949 (TheDeepChecker pitfalls: saturated sigmoid); DeepDiagnosis saturation study",
    "seeds": 2,
}


def build_model():
    return tk.dense_stack([64, 256, 256, 256, 10], "sigmoid", "normal1")


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
