"""Dashboards as ``log_to=`` targets: a TensorBoard ``SummaryWriter`` or a ``wandb`` run.

``netdoctor.watch(model, opt, log_to=SummaryWriter(...))`` (or ``log_to=wandb.run``, or the same
on ``KerasCallback`` and the trainer callbacks) sends, on rank zero:

* every step's loss and total gradient norm: ``netdoctor/loss``, ``netdoctor/grad_norm``;
* on each sampled step, per layer: ``netdoctor/grad_norm/<layer>``,
  ``netdoctor/update_ratio/<layer>``, ``netdoctor/dead_frac/<act>``,
  ``netdoctor/saturated_frac/<act>``, and ``netdoctor/lr``;
* each finding once, when it fires: TensorBoard text ``netdoctor/findings`` at its step; on
  wandb a ``wandb.alert`` (level by severity) and ``run.summary["netdoctor/<code>"]``.

Neither package is imported here: the target is recognised by its class's module and only its
own methods are called, so TensorBoard and wandb stay optional dependencies.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from netdoctor.findings import Finding, Severity
from netdoctor.history import Sample


def is_dashboard(obj: Any) -> bool:
    """Whether ``obj`` is a TensorBoard writer or a wandb run (not a path)."""
    return _kind(obj) is not None


def _kind(obj: Any) -> str | None:
    mods = " ".join(c.__module__ for c in type(obj).__mro__)
    if "wandb" in mods and hasattr(obj, "log"):
        return "wandb"
    if ("tensorboard" in mods or "tensorboardX" in mods) and hasattr(obj, "add_scalar"):
        return "tensorboard"
    return None


class Dashboard:
    """Writes the monitor's measurements and findings to a TensorBoard writer or a wandb run.

    Args:
        target: A ``SummaryWriter`` (torch.utils.tensorboard or tensorboardX) or a wandb ``Run``.
        meta: The monitor's model description (layer and activation names).
    """

    def __init__(self, target: Any, meta: dict[str, Any]) -> None:
        self.target = target
        self.kind = _kind(target)
        if self.kind is None:
            raise TypeError(f"log_to must be a path, a SummaryWriter or a wandb run, not {type(target).__name__}")
        self.meta = meta

    def record(self, loss_start: int, losses: np.ndarray, grads: np.ndarray | None, sample: Sample | None) -> None:
        for i, loss in enumerate(np.asarray(losses, dtype=np.float64).tolist()):
            row = {"netdoctor/loss": loss}
            if grads is not None and i < len(grads) and math.isfinite(grads[i]):
                row["netdoctor/grad_norm"] = float(grads[i])
            self._scalars(loss_start + i, row)
        if sample is not None:
            self._scalars(sample.step, self._sample_row(sample))

    def _sample_row(self, s: Sample) -> dict[str, float]:
        row: dict[str, float] = {}
        layers = self.meta.get("layers", ())
        acts = self.meta.get("act_layers", ())
        for field, key, names in (("layer_grad", "grad_norm", layers), ("layer_update", "update_ratio", layers),
                                  ("act_dead", "dead_frac", acts), ("act_saturated", "saturated_frac", acts)):
            arr = getattr(s, field)
            if arr is None:
                continue
            for name, v in zip(names, arr.tolist()):
                if math.isfinite(v):
                    row[f"netdoctor/{key}/{name}"] = float(v)
        if s.lr is not None:
            row["netdoctor/lr"] = float(s.lr)
        return row

    def _scalars(self, step: int, row: dict[str, float]) -> None:
        if not row:
            return
        if self.kind == "tensorboard":
            for k, v in row.items():
                self.target.add_scalar(k, v, step)
        else:
            self.target.log(row, step=step)

    def findings(self, findings: Sequence[Finding]) -> None:
        for f in findings:
            where = f" in `{f.layer}`" if f.layer else ""
            text = f"**{f.code} {f.name}**{where} at step {f.step} ({f.severity.name.lower()}): {f.message}. " \
                   f"{f.recommendation or ''}"
            if self.kind == "tensorboard":
                self.target.add_text("netdoctor/findings", text, f.step or 0)
            else:
                self.target.summary[f"netdoctor/{f.code}"] = f"step {f.step}: {f.message}"
                try:
                    import wandb

                    level = wandb.AlertLevel.ERROR if f.severity >= Severity.ERROR else wandb.AlertLevel.WARN
                    self.target.alert(title=f"netdoctor {f.code} {f.name}", text=text, level=level)
                except Exception:  # noqa: BLE001 - alerts need a server; offline runs keep the summary
                    pass

    def flush(self) -> None:
        if self.kind == "tensorboard":
            self.target.flush()
