"""Healthy control (BENCHMARK-CASES H08 / F19 fixed): standardized breast cancer, Dense(12)+ReLU ->
Dense(12)+ReLU -> Dense(1) logits into BCEWithLogitsLoss; trained 20 epochs with Adam."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": [],
    "not": ["ND103"],
    "source": "BENCHMARK-CASES H08 (control in F19); DeepLocalize SO 44066044 Correct Code",
}


def build_model():
    m = tk.dense_stack([30, 12, 12, 1], "relu", "he_uniform")
    x, y = bd.breast_cancer(n=569, scaled=True)
    return tk.fit(m, x, y[:, None], nn.BCEWithLogitsLoss(), lr=1e-3, epochs=20, batch=32)


def sample_batch():
    x, y = bd.breast_cancer(scaled=True)
    return torch.from_numpy(x), torch.from_numpy(y)[:, None]


loss_fn = nn.BCEWithLogitsLoss()
