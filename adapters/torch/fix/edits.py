"""The edits of a torch fix: what each :class:`~netdoctor.verify.protocol.FixStep` changes in the copy.

:func:`apply` makes every edit on ``copy.deepcopy(model)`` or on copies of the probe batch / the
loss, recorded in an :class:`~netdoctor.adapters._common.Applied`; one ``_op_<op>`` function per
edit. Also here: the loss in its logits/probability form and the helpers that standardize the
inputs or drop non-finite rows (shared with the probe and the diff snippets).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from netdoctor.adapters._common import Applied
from netdoctor.adapters.torch.fix.context import FixContext
from netdoctor.adapters.torch.loss import loss_name
from netdoctor.verify.protocol import FixStep, NotApplicable


class ProbabilityCrossEntropy(nn.Module):
    """Cross-entropy of class probabilities (NLL of their log): CrossEntropyLoss for softmax outputs."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.nll_loss(torch.log(p.clamp_min(1e-12)), y, reduction=self.reduction)


def apply(ctx: FixContext, steps: Sequence[FixStep]) -> Applied:
    """Apply ``steps`` to a deep copy of the model (and copies of the data/loss)."""
    torch.manual_seed(ctx.seed)
    a = Applied(copy.deepcopy(ctx.model), ctx.inputs, ctx.targets, ctx.loss_fn)
    for s in steps:
        _OPS[s.op](ctx, a, s)
    return a


def _module(a: Applied, name: str | None) -> nn.Module:
    if not name or "/" in name:
        raise NotApplicable(f"`{name}` is a function call inside forward(), not a module; change it by hand")
    try:
        return a.model.get_submodule(a.rename.get(name, name))
    except AttributeError:
        raise NotApplicable(f"no module named `{name}` in the copy") from None


def _replace(a: Applied, name: str, new: nn.Module) -> None:
    parent, _, child = a.rename.get(name, name).rpartition(".")
    setattr(a.model.get_submodule(parent) if parent else a.model, child, new)


def _op_reinit(ctx: FixContext, a: Applied, s: FixStep) -> None:
    p = getattr(_module(a, s.layer), str(s.get("param")), None)
    if not isinstance(p, torch.Tensor):
        raise NotApplicable(f"`{s.layer}` has no parameter {s.get('param')!r}")
    with torch.no_grad():
        init = str(s.get("init"))
        if init.startswith("he"):
            nn.init.kaiming_normal_(p, nonlinearity=init.split(":")[1])
        elif init == "lecun":
            nn.init.kaiming_normal_(p, nonlinearity="linear")
        elif init.startswith("glorot"):
            nn.init.xavier_uniform_(p, gain=nn.init.calculate_gain("tanh") if init.endswith("tanh") else 1.0)
        elif init == "orthogonal":
            nn.init.orthogonal_(p)
        else:
            nn.init.normal_(p, std=1.0)


def _op_insert_norm(ctx: FixContext, a: Applied, s: FixStep) -> None:
    m = _module(a, s.layer)
    if isinstance(m, nn.Linear):
        norm: nn.Module = nn.BatchNorm1d(m.out_features) if s.get("rank", 2) == 2 else nn.LayerNorm(m.out_features)
    elif isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        norm = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[m.weight.dim() - 2](m.out_channels)
    else:
        raise NotApplicable(f"cannot insert a normalization after `{s.layer}` ({type(m).__name__})")
    m.register_parameter("bias", None)  # the normalization's shift replaces it (see ND504)
    _replace(a, str(s.layer), nn.Sequential(m, norm.to(m.weight.device, m.weight.dtype)))
    a.rename[str(s.layer)] = f"{s.layer}.0"


def _op_remove(ctx: FixContext, a: Applied, s: FixStep) -> None:
    _module(a, s.layer)
    _replace(a, str(s.layer), nn.Identity())
    a.transform = s.get("transform")


def _op_move_dropout(ctx: FixContext, a: Applied, s: FixStep) -> None:
    drop, after = _module(a, s.layer), _module(a, s.get("after"))
    _replace(a, str(s.layer), nn.Identity())
    _replace(a, str(s.get("after")), nn.Sequential(after, drop))
    a.rename[str(s.get("after"))] = f"{s.get('after')}.0"


def _op_set_activation(ctx: FixContext, a: Applied, s: FixStep) -> None:
    old = _module(a, s.layer)
    dim = getattr(old, "dim", None)
    dim = -1 if dim is None else dim
    new = nn.LogSoftmax(dim=dim) if s.get("activation") == "log_softmax" else nn.Softmax(dim=dim)
    _replace(a, str(s.layer), new)
    a.transform = s.get("transform")


def _op_loss_form(ctx: FixContext, a: Applied, s: FixStep) -> None:
    a.loss_fn = loss_in_form(a.loss_fn, str(s.get("form")), int(s.get("units") or 1))


def _op_standardize(ctx: FixContext, a: Applied, s: FixStep) -> None:
    channels_first = _first_weight_is_conv(ctx.model)
    a.inputs = map_arrays(a.inputs, lambda t: _standardize(t, channels_first))


def _op_drop_rows(ctx: FixContext, a: Applied, s: FixStep) -> None:
    leaves = [t for t in _leaves(a.inputs) + _leaves(a.targets) if t.dim() >= 1]
    n = leaves[0].shape[0] if leaves else 0
    keep = torch.ones(n, dtype=torch.bool)
    for t in leaves:
        if t.shape[0] == n and t.is_floating_point():
            keep &= torch.isfinite(t.reshape(n, -1)).all(dim=1).cpu()
    if not bool(keep.any()):
        raise NotApplicable("every sample contains NaN/Inf")
    a.inputs, a.targets = (map_arrays(v, lambda t: t[keep.to(t.device)] if t.dim() and t.shape[0] == n else t)
                           for v in (a.inputs, a.targets))


def _op_clip(ctx: FixContext, a: Applied, s: FixStep) -> None:
    a.clip = float(s.get("max_norm"))


def _op_zero_bias(ctx: FixContext, a: Applied, s: FixStep) -> None:
    m = _module(a, s.layer)
    if getattr(m, "bias", None) is None:
        raise NotApplicable(f"`{s.layer}` has no bias")
    with torch.no_grad():
        nn.init.zeros_(m.bias)


def _op_no_bias(ctx: FixContext, a: Applied, s: FixStep) -> None:
    m = _module(a, s.layer)
    if not isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        raise NotApplicable(f"cannot remove the bias of `{s.layer}` ({type(m).__name__})")
    m.register_parameter("bias", None)


def _op_reset_nonfinite(ctx: FixContext, a: Applied, s: FixStep) -> None:
    m = _module(a, s.layer)
    for fn in ("reset_parameters", "reset_running_stats"):
        if callable(getattr(m, fn, None)):
            getattr(m, fn)()
    if any(not torch.isfinite(t).all() for t in list(m.parameters(recurse=False)) + list(m.buffers(recurse=False))):
        raise NotApplicable(f"`{s.layer}` ({type(m).__name__}) cannot re-initialize itself; reload a checkpoint")


_OPS: dict[str, Callable[[FixContext, Applied, FixStep], None]] = {
    "reinit": _op_reinit,
    "insert_norm": _op_insert_norm,
    "remove": _op_remove,
    "move_dropout": _op_move_dropout,
    "set_activation": _op_set_activation,
    "loss_form": _op_loss_form,
    "standardize": _op_standardize,
    "drop_rows": _op_drop_rows,
    "clip": _op_clip,
    "zero_bias": _op_zero_bias,
    "no_bias": _op_no_bias,
    "reset_nonfinite": _op_reset_nonfinite,
}


def loss_in_form(loss_fn: Any, form: str, units: int) -> nn.Module:
    """The user's loss in the form that takes ``form`` ("logits" or "probabilities")."""
    name = loss_name(loss_fn).replace("_", "").lower() if loss_fn is not None else ""
    red = getattr(loss_fn, "reduction", "mean")
    if form == "logits":
        if "bce" in name or "binary" in name or units == 1:
            return nn.BCEWithLogitsLoss(reduction=red)
        return nn.CrossEntropyLoss(reduction=red)
    if "bcewithlogits" in name or "binary" in name:
        return nn.BCELoss(reduction=red)
    return ProbabilityCrossEntropy(reduction=red)


def _first_weight_is_conv(model: nn.Module) -> bool:
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            return True
        if isinstance(m, (nn.Linear, nn.Embedding, nn.RNNBase, nn.MultiheadAttention)):
            return False
    return False


def _standardize(t: torch.Tensor, channels_first: bool) -> torch.Tensor:
    if not t.is_floating_point() or t.dim() < 2:
        return t
    keep = 1 if channels_first and t.dim() >= 3 else t.dim() - 1
    dims = tuple(d for d in range(t.dim()) if d != keep)
    mean = t.mean(dim=dims, keepdim=True)
    std = t.std(dim=dims, keepdim=True).clamp_min(1e-8)
    return (t - mean) / std


def _leaves(data: Any) -> list[torch.Tensor]:
    if data is None:
        return []
    if isinstance(data, dict):
        return [t for v in data.values() for t in _leaves(v)]
    if isinstance(data, (list, tuple)):
        return [t for v in data for t in _leaves(v)]
    if isinstance(data, (torch.Tensor, np.ndarray)):
        return [torch.as_tensor(data)]
    return []


def map_arrays(data: Any, fn: Any) -> Any:
    """Apply ``fn`` to every tensor/array leaf, keeping the container and the array type."""
    if isinstance(data, dict):
        return {k: map_arrays(v, fn) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(map_arrays(v, fn) for v in data)
    if isinstance(data, np.ndarray):
        return fn(torch.as_tensor(data)).numpy()
    if isinstance(data, torch.Tensor):
        return fn(data)
    return data
