"""The diff snippet of a torch fix: the code change as the user would write it.

:func:`diff` writes, per edit, ``-`` old and ``+`` new lines in the user's own layer names
(``self.fc1 = nn.Linear(4, 64)`` or ``nn.Linear(4, 64),  # model[0]``), joined by
:func:`~netdoctor.verify.protocol.join_blocks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from netdoctor.adapters.torch.fix.context import FixContext
from netdoctor.adapters.torch.fix.edits import ProbabilityCrossEntropy, loss_in_form
from netdoctor.adapters.torch.loss import loss_name
from netdoctor.rules.snippets import torch_ref
from netdoctor.verify.protocol import FixStep, join_blocks

INIT_CALLS = {
    "he:relu": 'nn.init.kaiming_normal_({w}, nonlinearity="relu")',
    "he:leaky_relu": 'nn.init.kaiming_normal_({w}, nonlinearity="leaky_relu")',
    "lecun": 'nn.init.kaiming_normal_({w}, nonlinearity="linear")  # LeCun normal',
    "glorot": "nn.init.xavier_uniform_({w})",
    "glorot:tanh": 'nn.init.xavier_uniform_({w}, gain=nn.init.calculate_gain("tanh"))',
    "orthogonal": "nn.init.orthogonal_({w})",
    "normal": "nn.init.normal_({w}, std=1.0)",
}


def diff(ctx: FixContext, steps: Sequence[FixStep]) -> str:
    """A diff-like snippet of the fix in the user's own layer names (``-`` old, ``+`` new lines)."""
    return join_blocks([(s.op, _lines(ctx, s)) for s in steps])


def _ref(ctx: FixContext, name: str) -> str:
    return torch_ref(name, "model" if ctx.sequential_root else "self")


def _decl(ctx: FixContext, name: str, ctor: str | None = None) -> str:
    """How the layer is declared: ``self.fc1 = nn.Linear(4, 64)`` or ``nn.Linear(4, 64),  # model[0]``."""
    try:
        ctor = ctor or _ctor(ctx.model.get_submodule(name))
    except AttributeError:
        ctor = ctor or "..."
    ref = _ref(ctx, name)
    return f"{ctor},  # {ref}" if ctx.sequential_root or "[" in ref else f"{ref} = {ctor}"


def _lines(ctx: FixContext, s: FixStep) -> list[str]:
    name = str(s.layer)
    if s.op == "reinit":
        call = INIT_CALLS[str(s.get("init"))].format(w=f"{_ref(ctx, name)}.{s.get('param')}")
        return [f"  {_decl(ctx, name)}", "+ " + call]
    if s.op == "insert_norm":
        m = ctx.model.get_submodule(name)
        norm = (f"nn.BatchNorm{m.weight.dim() - 2}d({m.out_channels})" if not isinstance(m, nn.Linear) else
                f"nn.BatchNorm1d({m.out_features})" if s.get("rank", 2) == 2 else f"nn.LayerNorm({m.out_features})")
        new = f"{_ctor(m, bias=False)}, {norm}"
        new = new if ctx.sequential_root else f"nn.Sequential({new})"
        return [f"- {_decl(ctx, name)}", f"+ {_decl(ctx, name, new)}"]
    if s.op == "remove":
        why = {"log": "the loss applies log-softmax itself", "logit": "the loss applies the sigmoid itself"}
        decl, note = _decl(ctx, name), why.get(str(s.get("transform")))
        return [f"- {decl}" + ((": " if "  # " in decl else "  # ") + note if note else "")]
    if s.op == "move_dropout":
        after = str(s.get("after"))
        return [f"- {_decl(ctx, name)}", f"  {_decl(ctx, after)}",
                f"+ {_ctor(ctx.model.get_submodule(name))},  # right after {_ref(ctx, after)}"]
    if s.op == "set_activation":
        new = "nn.LogSoftmax(dim=-1)" if s.get("activation") == "log_softmax" else "nn.Softmax(dim=-1)"
        return [f"- {_decl(ctx, name)}", f"+ {_decl(ctx, name, new)}"]
    if s.op == "loss_form":
        new = loss_in_form(ctx.loss_fn, str(s.get("form")), int(s.get("units") or 1))
        code = _ctor(new) if not isinstance(new, ProbabilityCrossEntropy) else \
            "lambda p, y: F.nll_loss(torch.log(p.clamp_min(1e-12)), y)  # p: the model's softmax output"
        return [f"- loss_fn = {_ctor(ctx.loss_fn) if isinstance(ctx.loss_fn, nn.Module) else loss_name(ctx.loss_fn)}",
                f"+ loss_fn = {code}"]
    if s.op == "no_bias":
        m = ctx.model.get_submodule(name)
        return [f"- {_decl(ctx, name)}", f"+ {_decl(ctx, name, _ctor(m, bias=False))}"]
    if s.op == "zero_bias":
        return [f"  {_decl(ctx, name)}", f"+ nn.init.zeros_({_ref(ctx, name)}.bias)"]
    if s.op == "reset_nonfinite":
        return [f"+ {_ref(ctx, name)}.reset_parameters()  # or reload a checkpoint from before the divergence"]
    return _DATA_DIFF.get(s.op, "").format(**dict(s.args)).splitlines()


_DATA_DIFF = {
    "standardize": ("+ mean = x_train.mean(dim=0, keepdim=True)\n+ std = x_train.std(dim=0, keepdim=True).clamp_min(1e-8)\n"
                    "+ x = (x - mean) / std  # the same mean/std at inference"),
    "drop_rows": ("+ ok = torch.isfinite(x).reshape(len(x), -1).all(1) & torch.isfinite(y).reshape(len(y), -1).all(1)\n"
                  "+ x, y = x[ok], y[ok]"),
    "clip": ("  loss.backward()\n+ torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm={max_norm:g})\n"
             "  optimizer.step()"),
}


def _ctor(m: Any, bias: bool | None = None) -> str:
    """Constructor call of a module as the user wrote it (``nn.Linear(784, 256)``)."""
    no_bias = ", bias=False" if bias is False or (bias is None and getattr(m, "bias", True) is None) else ""
    if isinstance(m, nn.Linear):
        return f"nn.Linear({m.in_features}, {m.out_features}{no_bias})"
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        k = m.kernel_size[0] if len(set(m.kernel_size)) == 1 else tuple(m.kernel_size)
        pad = f", padding={m.padding[0] if len(set(m.padding)) == 1 else m.padding}" if any(m.padding) else ""
        return f"nn.{type(m).__name__}({m.in_channels}, {m.out_channels}, {k}{pad}{no_bias})"
    if isinstance(m, nn.modules.dropout._DropoutNd):
        return f"nn.{type(m).__name__}({m.p:g})"
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return f"nn.{type(m).__name__}({m.num_features})"
    if isinstance(m, (nn.Softmax, nn.LogSoftmax)):
        return f"nn.{type(m).__name__}(dim={m.dim})"
    if isinstance(m, nn.Module):
        return f"nn.{type(m).__name__}()"
    return loss_name(m)
