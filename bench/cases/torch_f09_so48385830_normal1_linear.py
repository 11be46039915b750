"""SO 48385830 (DeepLocalize; DeepFD #1): 64 -> Dense(30) -> Dense(10) with no activations, kernels
and biases N(0, 1), MSE against one-hot targets (digits / 16 instead of MNIST). N(0, 1) is ~6x the
Xavier std for these fans; the loss diverges to NaN within four SGD steps at lr 3. Ground truth for
ND302, measured with plain torch: gradient norms 4-12x the weight norms, and one SGD step at the post's
lr 3.0 multiplies the loss by ~1e8 (at lr 0.01 it falls)."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": ["ND203", "ND302"],
    "not": ["ND101", "ND303", "ND301"],
    "source": "SO 48385830 via DeepLocalize/DeepFD (BENCHMARK-CASES F09)",
    "seeds": 2,
    "gate": True,
}


def build_model():
    m = tk.dense_stack([64, 30, 10], "linear", "normal1")
    with torch.no_grad():
        for lin in (m[0], m[1]):
            lin.bias.normal_(0.0, 1.0)
    return m


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x), torch.from_numpy(bd.one_hot(y, 10))


loss_fn = nn.MSELoss()
