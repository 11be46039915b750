"""Offline data for the detection benchmark (scikit-learn bundled datasets and generators only).

Every function is deterministic (fixed ``random_state``), independent of the model seed, and
returns float32/int64 numpy arrays of at most ``n`` rows: the probe batch netdoctor sees.
Case files import this module by name (``import _benchdata as bd``); netdoctor's loader puts the
case file's directory on ``sys.path`` while it imports the file and calls its functions.
"""

from __future__ import annotations

import numpy as np

PROBE = 256  # netdoctor's default probe batch cap


def standardize(x: np.ndarray) -> np.ndarray:
    """Per-column z-score with the batch's own mean/std (constant columns are left at 0)."""
    x = np.asarray(x, dtype=np.float64)
    std = x.std(axis=0)
    return ((x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)).astype(np.float32)


def one_hot(y: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k, dtype=np.float32)[np.asarray(y, dtype=np.int64)]


def circle(n: int = PROBE) -> tuple[np.ndarray, np.ndarray]:
    """AUTOTRAINER's Circle set: ``make_circles(1000, noise=0.1, random_state=1)``, training rows first."""
    from sklearn.datasets import make_circles

    x, y = make_circles(n_samples=1000, noise=0.1, random_state=1)
    return x[:n].astype(np.float32), y[:n].astype(np.float32)


def blob(n: int = PROBE) -> tuple[np.ndarray, np.ndarray]:
    """AUTOTRAINER's Blob set: ``make_blobs(1000, centers=3, n_features=2, cluster_std=2, random_state=2)``;
    raw coordinates (|x| up to ~14) and integer labels 0..2."""
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=1000, centers=3, n_features=2, cluster_std=2, random_state=2)
    return x[:n].astype(np.float32), y[:n].astype(np.int64)


def digits(n: int = PROBE, scale: float = 1.0 / 16.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``load_digits``: 8x8 images flattened to 64 pixels (0..16) times ``scale``; a fixed shuffled subset."""
    from sklearn.datasets import load_digits

    d = load_digits()
    idx = np.random.default_rng(seed).permutation(len(d.target))[:n]
    return (d.data[idx] * scale).astype(np.float32), d.target[idx].astype(np.int64)


def digits_all(scale: float = 1.0 / 16.0) -> tuple[np.ndarray, np.ndarray]:
    """All 1797 digits (for the few cases that train before they are checked)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data * scale).astype(np.float32), d.target.astype(np.int64)


def breast_cancer(n: int = PROBE, scaled: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """30 raw features (``worst area`` up to 4254) or standardized; binary labels as float."""
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    x = standardize(d.data) if scaled else d.data.astype(np.float32)
    idx = np.random.default_rng(0).permutation(len(d.target))[:n]
    return x[idx].astype(np.float32), d.target[idx].astype(np.float32)


def diabetes(n: int = PROBE, scaled: bool = False, target_scaled: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``load_diabetes``: 10 raw clinical features (age 19-79, s1 97-301) or scikit-learn's scaled
    version; target 25-346 or standardized."""
    from sklearn.datasets import load_diabetes

    d = load_diabetes(scaled=scaled)
    x = standardize(d.data) if scaled else d.data.astype(np.float32)
    t = d.target.astype(np.float64)
    t = (t - t.mean()) / t.std() if target_scaled else t
    return x[:n].astype(np.float32), t[:n, None].astype(np.float32)


def iris(n: int = PROBE, scaled: bool = False) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    d = load_iris()
    x = standardize(d.data) if scaled else d.data.astype(np.float32)
    idx = np.random.default_rng(0).permutation(len(d.target))[:n]
    return x[idx], d.target[idx].astype(np.int64)


def wine(n: int = PROBE, scaled: bool = True) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_wine

    d = load_wine()
    x = standardize(d.data) if scaled else d.data.astype(np.float32)
    idx = np.random.default_rng(0).permutation(len(d.target))[:n]
    return x[idx], d.target[idx].astype(np.int64)


def multilabel(n: int = PROBE) -> tuple[np.ndarray, np.ndarray]:
    """SO 38648195's data: ``make_multilabel_classification(n_features=20, n_classes=3)``; count
    features up to ~13, multi-hot targets."""
    from sklearn.datasets import make_multilabel_classification

    x, y = make_multilabel_classification(n_samples=n, n_features=20, n_classes=3, random_state=0)
    return x.astype(np.float32), y.astype(np.float32)


def classification(n: int = PROBE, n_features: int = 16, n_classes: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=n, n_features=n_features, n_informative=min(8, n_features),
                               n_classes=n_classes, random_state=seed)
    return x.astype(np.float32), y.astype(np.int64)


def tokens(n: int = 64, seq: int = 16, vocab: int = 500, classes: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic token ids (int64) and class labels that depend on them (so a loss exists)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab, size=(n, seq)).astype(np.int64)
    y = (ids[:, 0] % classes).astype(np.int64)
    return ids, y


def sequences(n: int = 128, steps: int = 20, features: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Standardized noisy sine sequences and the next value as a regression target."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 4 * np.pi, steps + 1)
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 1))
    freq = rng.uniform(0.5, 1.5, size=(n, 1, features))
    s = np.sin(freq * t[None, :, None] + phase) + 0.1 * rng.normal(size=(n, steps + 1, features))
    return s[:, :steps].astype(np.float32), s[:, steps, :1].astype(np.float32)
