"""Shared data and assertions of the --verify tests (tiny real models, seeded data)."""

from __future__ import annotations

from typing import Any

import numpy as np

import netdoctor
from netdoctor.findings import Finding, Report


def blobs(n: int = 256, features: int = 4, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Standardized Gaussian blobs (float32 features, int64 labels)."""
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=n, centers=classes, n_features=features, random_state=0)
    return ((x - x.mean(0)) / x.std(0)).astype("float32"), y.astype("int64")


def circles(n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_circles

    x, y = make_circles(n_samples=n, noise=0.1, random_state=1)
    return x.astype("float32"), y.astype("float32")[:, None]


def digits(n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.data[:n] / 16).astype("float32"), d.target[:n].astype("int64")


def raw_tabular(n: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Breast-cancer features in their raw units (0.05 to 4254)."""
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return d.data[:n].astype("float32"), d.target[:n].astype("int64")


def verified(report: Report, code: str, layer: str | None = None) -> Finding:
    """The finding ``code`` (on ``layer``), asserting that its fix was verified."""
    f = finding(report, code, layer)
    v = f.verification
    assert v["verdict"] == "verified", v
    assert v["before"]["probe_loss"] is not None and v["after"]["probe_loss"] is not None
    assert v["after"][f"{code} findings"] < v["before"][f"{code} findings"] or code == "ND604"
    assert v["seconds"] > 0 and v["diff"]
    return f


def finding(report: Report, code: str, layer: str | None = None) -> Finding:
    found = [f for f in report.findings if f.code == code and (layer is None or f.layer == layer)]
    assert found, f"no {code} finding{' on ' + layer if layer else ''}: {[(f.code, f.layer) for f in report.findings]}"
    return found[0]


def check(model: Any, x: Any, y: Any = None, **kw: Any) -> Report:
    """``netdoctor.check(..., verify=True)``; every finding must carry a verification."""
    report = netdoctor.check(model, x, y, verify=True, **kw)
    assert report.findings and all(f.verification and f.verification.get("verdict") for f in report.findings)
    assert report.timings["verify"] > 0
    return report
