"""Loss-curve PNG of a monitored run, with the steps where findings fired.

matplotlib is an optional extra (``pip install "netdoctor-ml[plot]"``); it is imported
only when a plot is drawn, with the non-interactive ``Agg`` backend.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Iterable

import numpy as np

from netdoctor.errors import NetdoctorError
from netdoctor.findings import Finding, Severity
from netdoctor.history import History

_COLORS = {Severity.ERROR: "#c62828", Severity.WARNING: "#ef6c00", Severity.INFO: "#1565c0"}


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise NetdoctorError(
            "plotting needs matplotlib, which is not installed: pip install 'netdoctor-ml[plot]' "
            "(or pip install matplotlib)"
        ) from None
    if "matplotlib.pyplot" not in sys.modules:  # never switch the backend of a user's session
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(history: History, findings: Iterable[Finding], path: str | os.PathLike, *,
                 title: str | None = None, log_scale: bool | None = None, dpi: int = 120) -> str:
    """Draw the loss (and the sampled gradient norm, when measured) over training steps.

    Args:
        history: The monitored history.
        findings: Findings to mark: one vertical line per finding at its ``step``, colored by
            severity and labelled with the rule code.
        path: Output PNG path.
        title: Figure title (default: "netdoctor: training loss").
        log_scale: Log y axis; default: when the finite losses span more than two decades.
        dpi: Resolution.

    Returns:
        The path written.

    Raises:
        netdoctor.errors.NetdoctorError: matplotlib is not installed.
    """
    plt = _pyplot()
    steps, loss = history.finite_loss()
    gsteps, gnorm = history.series("grad_norm")
    rows = 2 if gnorm.size else 1
    fig, axes = plt.subplots(rows, 1, figsize=(8, 3.2 * rows), sharex=True, squeeze=False)
    ax = axes[0][0]
    ax.plot(steps, loss, lw=0.8, color="#37474f", label="loss")
    if loss.size >= 20:
        k = 20
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1:], smooth, lw=1.6, color="#00897b", label=f"mean of {k} steps")
    positive = loss[loss > 0]
    if log_scale is None:
        log_scale = positive.size > 0 and positive.max() / max(positive.min(), 1e-300) > 100
    if log_scale and positive.size:
        ax.set_yscale("log")
    if history.first_nonfinite_step is not None:
        ax.axvspan(history.first_nonfinite_step, max(history.last_step, history.first_nonfinite_step + 1),
                   color="#c62828", alpha=0.08, label="non-finite loss")
    ax.set_ylabel("loss")
    ax.set_title(title or "netdoctor: training loss")
    if gnorm.size:
        axg = axes[1][0]
        axg.plot(gsteps, gnorm, lw=0.9, marker="." if gnorm.size < 200 else None, color="#5e35b1")
        axg.set_ylabel("gradient norm")
        if np.all(gnorm[np.isfinite(gnorm)] > 0) and np.isfinite(gnorm).any():
            axg.set_yscale("log")
    seen: set[tuple[str, int]] = set()
    for f in sorted(findings, key=lambda f: (f.step is None, f.step or 0)):
        if f.step is None or (f.code, f.step) in seen:
            continue
        seen.add((f.code, f.step))
        for row in axes:
            row[0].axvline(f.step, color=_COLORS.get(f.severity, "#555"), lw=1.0, ls="--", alpha=0.8)
        ax.annotate(f.code, xy=(f.step, 1.0), xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                    va="top", ha="right", color=_COLORS.get(f.severity, "#555"))
    axes[-1][0].set_xlabel("step")
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    out = os.fspath(path)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
