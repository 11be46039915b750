"""High learning rate kills ReLUs (BENCHMARK-CASES F30 constructed control; TheDeepChecker high_lr,
SO 37624102): digits/16, 64 -> 128 -> 128 -> 10 ReLU, trained 10 epochs of SGD at lr 2.0 (batch 32)
inside build_model. Measured by the recipe: 83% and 100% of the two layers' units dead, accuracy
0.10 (at lr 0.05: 2% / 7%, see torch_h07)."""

import _benchdata as bd
import _torchkit as tk
import torch
from torch import nn

EXPECT = {
    "raise": ["ND401"],
    "not": ["ND101", "ND201", "ND202"],
    "source": "TheDeepChecker high_lr / SO 37624102; BENCHMARK-CASES F30 dying-ReLU control",
    "seeds": 3,
}


def build_model():
    m = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10))
    x, y = bd.digits_all()
    return tk.fit(m, x, y, nn.CrossEntropyLoss(), opt="sgd", lr=2.0, epochs=10, batch=32)


def sample_batch():
    x, y = bd.digits()
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
