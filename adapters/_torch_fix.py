"""Apply netdoctor's recommended fixes to a deep copy of a torch model, and run training probes.

Used by :mod:`netdoctor.verify`, which decides which :class:`~netdoctor.verify.FixStep` answers a
finding. Every edit happens on ``copy.deepcopy(model)`` (or on copies of the probe batch / the
loss); the user's model is only read. :meth:`Fixer.guard` restores the global RNGs (torch CPU
and CUDA, numpy, Python ``random``) after the verification; every random draw inside it
(re-initialization, dropout masks, minibatch order) is seeded from ``ProbeSettings.seed``.

Structural edits: a layer is wrapped as ``nn.Sequential(layer, nn.BatchNorm1d(n))`` (its name
``fc1`` becomes ``fc1.0`` in the copy; ``Applied.rename`` records it), removed layers become
``nn.Identity()``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from netdoctor.adapters._torch_io import (
    main_output,
    model_device_dtype,
    output_info,
    prepare_inputs,
    prepare_targets,
    synthetic_inputs,
)
from netdoctor.adapters._torch_loss import compute_loss, loss_name
from netdoctor.adapters._torch_state import cuda_devices
from torch import nn

from netdoctor.rules._util import torch_ref
from netdoctor.snapshot import ModelSnapshot, ProbeSettings
from netdoctor.verify import FixStep, NotApplicable, join_blocks

INIT_CALLS = {
    "he:relu": 'nn.init.kaiming_normal_({w}, nonlinearity="relu")',
    "he:leaky_relu": 'nn.init.kaiming_normal_({w}, nonlinearity="leaky_relu")',
    "lecun": 'nn.init.kaiming_normal_({w}, nonlinearity="linear")  # LeCun normal',
    "glorot": "nn.init.xavier_uniform_({w})",
    "glorot:tanh": 'nn.init.xavier_uniform_({w}, gain=nn.init.calculate_gain("tanh"))',
    "orthogonal": "nn.init.orthogonal_({w})",
    "normal": "nn.init.normal_({w}, std=1.0)",
}


@dataclass
class Applied:
    """A fixed copy: the model and what the probe and the adapter should feed it."""

    model: nn.Module
    inputs: Any
    targets: Any
    loss_fn: Any
    rename: dict[str, str] = field(default_factory=dict)
    clip: float | None = None
    transform: str | None = None  # how to read the original's output in the fixed loss's form: log/logit


@dataclass
class ProbeResult:
    """A training probe: final loss, settings, and the trained copy (for re-scoring)."""

    model: nn.Module
    applied: Applied
    final: float
    steps: int
    optimizer: str
    loss_name: str
    clip: float | None = None
    note: str | None = None
    max_spike: float | None = None
    losses: list[float] = field(default_factory=list)


class ProbabilityCrossEntropy(nn.Module):
    """Cross-entropy of class probabilities (NLL of their log): CrossEntropyLoss for softmax outputs."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.nll_loss(torch.log(p.clamp_min(1e-12)), y, reduction=self.reduction)


class Fixer:
    """Fixes and probes for one torch model (see the module docstring)."""

    def __init__(self, model: nn.Module, *, inputs: Any, targets: Any, loss_fn: Any, settings: ProbeSettings,
                 input_shape: Any) -> None:
        self.model, self.inputs, self.targets, self.loss_fn = model, inputs, targets, loss_fn
        self.settings, self.input_shape = settings, input_shape
        self.seed = int(settings.seed)
        self.device, self.dtype = model_device_dtype(model)
        self.sequential_root = isinstance(model, (nn.Sequential, nn.ModuleList))

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Restore the torch (CPU and CUDA), numpy and Python RNG states afterwards."""
        py, npy = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=cuda_devices(self.model), enabled=True):
                yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)

    # -- fixes ---------------------------------------------------------------------------------
    def apply(self, steps: Sequence[FixStep], snap: ModelSnapshot) -> Applied:
        """Apply ``steps`` to a deep copy of the model (and copies of the data/loss)."""
        torch.manual_seed(self.seed)
        a = Applied(copy.deepcopy(self.model), self.inputs, self.targets, self.loss_fn)
        for s in steps:
            getattr(self, f"_op_{s.op}")(a, s)
        return a

    def _module(self, a: Applied, name: str | None) -> nn.Module:
        if not name or "/" in name:
            raise NotApplicable(f"`{name}` is a function call inside forward(), not a module; change it by hand")
        try:
            return a.model.get_submodule(a.rename.get(name, name))
        except AttributeError:
            raise NotApplicable(f"no module named `{name}` in the copy") from None

    def _replace(self, a: Applied, name: str, new: nn.Module) -> None:
        parent, _, child = a.rename.get(name, name).rpartition(".")
        setattr(a.model.get_submodule(parent) if parent else a.model, child, new)

    def _op_reinit(self, a: Applied, s: FixStep) -> None:
        p = getattr(self._module(a, s.layer), str(s.get("param")), None)
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

    def _op_insert_norm(self, a: Applied, s: FixStep) -> None:
        m = self._module(a, s.layer)
        if isinstance(m, nn.Linear):
            norm: nn.Module = nn.BatchNorm1d(m.out_features) if s.get("rank", 2) == 2 else nn.LayerNorm(m.out_features)
        elif isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            norm = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[m.weight.dim() - 2](m.out_channels)
        else:
            raise NotApplicable(f"cannot insert a normalization after `{s.layer}` ({type(m).__name__})")
        m.register_parameter("bias", None)  # the normalization's shift replaces it (see ND504)
        self._replace(a, str(s.layer), nn.Sequential(m, norm.to(m.weight.device, m.weight.dtype)))
        a.rename[str(s.layer)] = f"{s.layer}.0"

    def _op_remove(self, a: Applied, s: FixStep) -> None:
        self._module(a, s.layer)
        self._replace(a, str(s.layer), nn.Identity())
        a.transform = s.get("transform")

    def _op_move_dropout(self, a: Applied, s: FixStep) -> None:
        drop, after = self._module(a, s.layer), self._module(a, s.get("after"))
        self._replace(a, str(s.layer), nn.Identity())
        self._replace(a, str(s.get("after")), nn.Sequential(after, drop))
        a.rename[str(s.get("after"))] = f"{s.get('after')}.0"

    def _op_set_activation(self, a: Applied, s: FixStep) -> None:
        old = self._module(a, s.layer)
        dim = getattr(old, "dim", None)
        dim = -1 if dim is None else dim
        new = nn.LogSoftmax(dim=dim) if s.get("activation") == "log_softmax" else nn.Softmax(dim=dim)
        self._replace(a, str(s.layer), new)
        a.transform = s.get("transform")

    def _op_loss_form(self, a: Applied, s: FixStep) -> None:
        a.loss_fn = _loss_in_form(a.loss_fn, str(s.get("form")), int(s.get("units") or 1))

    def _op_standardize(self, a: Applied, s: FixStep) -> None:
        channels_first = _first_weight_is_conv(self.model)
        a.inputs = _map_arrays(a.inputs, lambda t: _standardize(t, channels_first))

    def _op_drop_rows(self, a: Applied, s: FixStep) -> None:
        leaves = [t for t in _leaves(a.inputs) + _leaves(a.targets) if t.dim() >= 1]
        n = leaves[0].shape[0] if leaves else 0
        keep = torch.ones(n, dtype=torch.bool)
        for t in leaves:
            if t.shape[0] == n and t.is_floating_point():
                keep &= torch.isfinite(t.reshape(n, -1)).all(dim=1).cpu()
        if not bool(keep.any()):
            raise NotApplicable("every sample contains NaN/Inf")
        a.inputs, a.targets = (_map_arrays(v, lambda t: t[keep.to(t.device)] if t.dim() and t.shape[0] == n else t)
                               for v in (a.inputs, a.targets))

    def _op_clip(self, a: Applied, s: FixStep) -> None:
        a.clip = float(s.get("max_norm"))

    def _op_zero_bias(self, a: Applied, s: FixStep) -> None:
        m = self._module(a, s.layer)
        if getattr(m, "bias", None) is None:
            raise NotApplicable(f"`{s.layer}` has no bias")
        with torch.no_grad():
            nn.init.zeros_(m.bias)

    def _op_no_bias(self, a: Applied, s: FixStep) -> None:
        m = self._module(a, s.layer)
        if not isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            raise NotApplicable(f"cannot remove the bias of `{s.layer}` ({type(m).__name__})")
        m.register_parameter("bias", None)

    def _op_reset_nonfinite(self, a: Applied, s: FixStep) -> None:
        m = self._module(a, s.layer)
        for fn in ("reset_parameters", "reset_running_stats"):
            if callable(getattr(m, fn, None)):
                getattr(m, fn)()
        if any(not torch.isfinite(t).all() for t in list(m.parameters(recurse=False)) + list(m.buffers(recurse=False))):
            raise NotApplicable(f"`{s.layer}` ({type(m).__name__}) cannot re-initialize itself; reload a checkpoint")

    # -- training probe ------------------------------------------------------------------------
    def probe(self, applied: Applied | None, steps: int, mode: str = "full", minibatch: int = 16) -> ProbeResult:
        """``steps`` Adam(1e-3) steps on the probe batch (seeded); ``applied=None`` probes the original."""
        a = applied or Applied(copy.deepcopy(self.model), self.inputs, self.targets, self.loss_fn)
        model = a.model  # a fresh copy either way: the fixed copy is measured before it is probed
        x, y = self._batch(a)
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise NotApplicable("the model has no trainable parameters")
        opt = _Adam(params)
        losses, norms, name, note = [], [], loss_name(a.loss_fn) if a.loss_fn is not None else "default", None
        gen = torch.Generator().manual_seed(self.seed + 1)
        n = _batch_size(x)
        torch.manual_seed(self.seed)
        model.train()
        looks: list[str] = []
        try:
            with _few_threads(params):
                for _ in range(steps):
                    idx = torch.randperm(n, generator=gen)[:minibatch] if mode == "minibatch" and n > minibatch else None
                    xb, yb = (x, y) if idx is None else (_rows(x, idx, n), _rows(y, idx, n))
                    loss, name = self._loss(model, xb, yb, a.loss_fn, looks=looks)
                    grads = torch.autograd.grad(loss, params, allow_unused=True)
                    for p, g in zip(params, grads):
                        p.grad = g
                    total = float(nn.utils.clip_grad_norm_(params, a.clip if a.clip else math.inf))
                    norms.append(min(total, a.clip) if a.clip else total)
                    opt.step()
                    losses.append(float(loss.detach()))
                final = self._final(model, x, y, a.loss_fn, None, looks)
        except (RuntimeError, ValueError) as exc:
            final, note = float("nan"), f"the probe stopped: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
        spike = _max_spike(norms) if mode == "minibatch" else None
        return ProbeResult(model, a, final, steps, "Adam(lr=0.001)", name, a.clip, note, spike, losses)

    def score(self, base: ProbeResult, fixed: ProbeResult, applied: Applied) -> tuple[float, float]:
        """Final probe losses (original, fixed) in the same terms: the fixed loss when the fix changed it."""
        if applied.transform is None and applied.loss_fn is self.loss_fn:
            return base.final, fixed.final
        x, y = self._batch(base.applied)
        try:
            before = self._final(base.model, x, y, applied.loss_fn, applied.transform, [])
        except (RuntimeError, ValueError):
            before = float("nan")
        return before, fixed.final

    def _batch(self, a: Applied) -> tuple[Any, Any]:
        s = self.settings
        if a.inputs is None:
            x = synthetic_inputs(self.input_shape, self.device, self.dtype, self.seed)
        else:
            x = prepare_inputs(a.inputs, self.device, self.dtype, s.max_samples)
        return x, prepare_targets(a.targets, self.device, self.dtype, s.max_samples)

    def _loss(self, model: nn.Module, x: Any, y: Any, loss_fn: Any, transform: str | None = None,
              looks: list[str] | None = None) -> tuple[Any, str]:
        """Probe loss as the adapter computes it; ``looks`` caches the output kind of the first call."""
        out = model(*x.args, **x.kwargs)
        main = main_output(out)
        if transform is not None and main is not None:
            main = torch.log(main.clamp_min(1e-12)) if transform == "log" else torch.logit(main, eps=1e-6)
            out = main
        looks = [] if looks is None else looks
        if not looks:
            looks.append(output_info(main.detach(), 1, self.settings.max_units).looks_like if main is not None
                         else "unknown")
        loss, info, _ = compute_loss(loss_fn, out, main, y, looks[0], self.seed)
        return loss, info.name

    def _final(self, model: nn.Module, x: Any, y: Any, loss_fn: Any, transform: str | None,
               looks: list[str]) -> float:
        with torch.random.fork_rng(devices=cuda_devices(model)), torch.no_grad():
            torch.manual_seed(self.seed + 2)
            return float(self._loss(model, x, y, loss_fn, transform, looks)[0])

    # -- the code change, as the user would write it -------------------------------------------
    def diff(self, steps: Sequence[FixStep], snap: ModelSnapshot) -> str:
        """A diff-like snippet of the fix in the user's own layer names (``-`` old, ``+`` new lines)."""
        return join_blocks([(s.op, self._diff(s)) for s in steps])

    def _ref(self, name: str) -> str:
        return torch_ref(name, "model" if self.sequential_root else "self")

    def _decl(self, name: str, ctor: str | None = None) -> str:
        """How the layer is declared: ``self.fc1 = nn.Linear(4, 64)`` or ``nn.Linear(4, 64),  # model[0]``."""
        try:
            ctor = ctor or _ctor(self.model.get_submodule(name))
        except AttributeError:
            ctor = ctor or "..."
        ref = self._ref(name)
        return f"{ctor},  # {ref}" if self.sequential_root or "[" in ref else f"{ref} = {ctor}"

    def _diff(self, s: FixStep) -> list[str]:
        name = str(s.layer)
        if s.op == "reinit":
            return [f"  {self._decl(name)}", "+ " + INIT_CALLS[str(s.get("init"))].format(w=f"{self._ref(name)}.{s.get('param')}")]
        if s.op == "insert_norm":
            m = self.model.get_submodule(name)
            norm = (f"nn.BatchNorm{m.weight.dim() - 2}d({m.out_channels})" if not isinstance(m, nn.Linear) else
                    f"nn.BatchNorm1d({m.out_features})" if s.get("rank", 2) == 2 else f"nn.LayerNorm({m.out_features})")
            new = f"{_ctor(m, bias=False)}, {norm}"
            new = new if self.sequential_root else f"nn.Sequential({new})"
            return [f"- {self._decl(name)}", f"+ {self._decl(name, new)}"]
        if s.op == "remove":
            why = {"log": "the loss applies log-softmax itself", "logit": "the loss applies the sigmoid itself"}
            decl, note = self._decl(name), why.get(str(s.get("transform")))
            return [f"- {decl}" + ((": " if "  # " in decl else "  # ") + note if note else "")]
        if s.op == "move_dropout":
            after = str(s.get("after"))
            return [f"- {self._decl(name)}", f"  {self._decl(after)}",
                    f"+ {_ctor(self.model.get_submodule(name))},  # right after {self._ref(after)}"]
        if s.op == "set_activation":
            new = "nn.LogSoftmax(dim=-1)" if s.get("activation") == "log_softmax" else "nn.Softmax(dim=-1)"
            return [f"- {self._decl(name)}", f"+ {self._decl(name, new)}"]
        if s.op == "loss_form":
            new = _loss_in_form(self.loss_fn, str(s.get("form")), int(s.get("units") or 1))
            code = _ctor(new) if not isinstance(new, ProbabilityCrossEntropy) else \
                "lambda p, y: F.nll_loss(torch.log(p.clamp_min(1e-12)), y)  # p: the model's softmax output"
            return [f"- loss_fn = {_ctor(self.loss_fn) if isinstance(self.loss_fn, nn.Module) else loss_name(self.loss_fn)}",
                    f"+ loss_fn = {code}"]
        if s.op == "no_bias":
            m = self.model.get_submodule(name)
            return [f"- {self._decl(name)}", f"+ {self._decl(name, _ctor(m, bias=False))}"]
        if s.op == "zero_bias":
            return [f"  {self._decl(name)}", f"+ nn.init.zeros_({self._ref(name)}.bias)"]
        if s.op == "reset_nonfinite":
            return [f"+ {self._ref(name)}.reset_parameters()  # or reload a checkpoint from before the divergence"]
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


@contextlib.contextmanager
def _few_threads(params: list[torch.Tensor]) -> Iterator[None]:
    """One intra-op thread while probing a small CPU model (restored afterwards): thread start-up and
    synchronization cost more than they save on tensors this small, a lot more on a busy machine."""
    small = sum(p.numel() for p in params) < 1_000_000 and all(p.device.type == "cpu" for p in params)
    before = torch.get_num_threads()
    if small and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


class _Adam:
    """Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8) on ``.grad``, as ``torch.optim.Adam`` computes it.

    Written out because ``torch.optim`` imports ``torch._dynamo`` on first use (seconds of start-up).
    """

    def __init__(self, params: list[torch.Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps, self.t = params, lr, betas, eps, 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            m.mul_(b1).add_(p.grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            denom = (v / (1 - b2 ** self.t)).sqrt_().add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / (1 - b1 ** self.t))


def _loss_in_form(loss_fn: Any, form: str, units: int) -> nn.Module:
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


def _map_arrays(data: Any, fn: Any) -> Any:
    """Apply ``fn`` to every tensor/array leaf, keeping the container and the array type."""
    if isinstance(data, dict):
        return {k: _map_arrays(v, fn) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(_map_arrays(v, fn) for v in data)
    if isinstance(data, np.ndarray):
        return fn(torch.as_tensor(data)).numpy()
    if isinstance(data, torch.Tensor):
        return fn(data)
    return data


def _batch_size(x: Any) -> int:
    return int(getattr(x, "batch_size", 0) or 0)


def _rows(data: Any, idx: torch.Tensor, n: int) -> Any:
    """Rows ``idx`` of every leaf with ``n`` rows (ProbeInputs keep their structure)."""
    if hasattr(data, "args") and hasattr(data, "kwargs"):
        return dataclasses.replace(data, args=_rows(tuple(data.args), idx, n), kwargs=_rows(dict(data.kwargs), idx, n),
                                   batch_size=len(idx))
    return _map_arrays(data, lambda t: t[idx.to(t.device)] if t.dim() and t.shape[0] == n else t)


def _max_spike(norms: list[float], warmup: int = 5) -> float | None:
    """Largest gradient norm relative to the median of the steps before it."""
    best = None
    for i in range(warmup, len(norms)):
        med = float(np.median(norms[:i]))
        if med > 0 and math.isfinite(norms[i]):
            best = max(best or 0.0, norms[i] / med)
    return best
