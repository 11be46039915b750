"""Fixtures of the monitor tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits, standardized (float32 features, int64 labels)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    return x.astype(np.float32), y.astype(np.int64)
