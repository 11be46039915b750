"""A credit-scoring MLP with two classic faults. Run: ``netdoctor check examples/mlp_torch.py``.

Fault 1: the tabular features reach the network raw: age in years, income in dollars, a
ratio in [0, 1]. Their scales differ by five orders of magnitude.
Fault 2: five sigmoid layers initialized from a small N(0, 0.05^2). Every sigmoid passes
back at most a quarter of the gradient (its slope is <= 0.25) and the small weights shrink it
further, so the gradient vanishes on its way back to the first layer.

``examples/healthy_torch.py`` is the same task done right.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

FEATURES = ("age", "income", "debt_ratio", "open_accounts", "balance", "late_payments")


class CreditMLP(nn.Module):
    """Six raw features -> five sigmoid hidden layers -> two classes (default / no default)."""

    def __init__(self, n_features: int = len(FEATURES), hidden: int = 64, depth: int = 5) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_features
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.Sigmoid()]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(hidden, 2)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, mean=0.0, std=0.05)  # fault 2: small init, deep sigmoid
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def build_model() -> nn.Module:
    torch.manual_seed(0)
    return CreditMLP()


def raw_credit_data(n: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic loan applications, unscaled, as they come out of the database."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 80, n)
    income = rng.lognormal(mean=10.8, sigma=0.5, size=n)
    debt_ratio = rng.beta(2, 5, n)
    open_accounts = rng.poisson(4, n).astype(float)
    balance = rng.normal(8_000, 4_000, n).clip(0)
    late_payments = rng.poisson(0.6, n).astype(float)
    x = np.stack([age, income, debt_ratio, open_accounts, balance, late_payments], axis=1)
    risk = 3 * debt_ratio + 0.8 * late_payments - income / 60_000 - (age - 18) / 60
    y = (risk + rng.normal(0, 0.5, n) > np.median(risk)).astype(np.int64)
    return x.astype(np.float32), y


def sample_batch() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = raw_credit_data()  # fault 1: no standardization
    return torch.from_numpy(x), torch.from_numpy(y)


loss_fn = nn.CrossEntropyLoss()
