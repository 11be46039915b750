"""NeuraLint TF_lenet_zeros_init / TheDeepChecker wrong_init, MLP analogue: digits/16,
64 -> 32 -> 32 -> 10 with every kernel zero. No gradient reaches the hidden layers and their units
stay identical. Trap: the all-zero activations are not dead ReLUs and the zero gradients are not a
vanishing-gradient depth effect."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": ["ND201"],
    "not": ["ND401", "ND301", "ND101", "ND203"],
    "source": "NeuraLint Synthetic Samples TF_lenet_zeros_init (BENCHMARK-CASES F25)",
    "gate": True,
}


def build_model():
    return tk.dense_stack([64, 32, 32, 10], "relu", "zeros")


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
