"""The training probe of a torch fix: a few seeded optimizer steps on the probe batch.

:func:`probe` trains the original or a fixed copy; :func:`score` gives both final losses in the
same terms. The probe trains with a written-out Adam, on one intra-op thread for small CPU
models; the minibatch mode (gradient spikes, ND604) also reports the largest gradient-norm spike.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from netdoctor.adapters._common import Applied
from netdoctor.adapters.torch.fix.context import FixContext
from netdoctor.adapters.torch.fix.edits import map_arrays
from netdoctor.adapters.torch.io import (
    main_output,
    output_info,
    prepare_inputs,
    prepare_targets,
    synthetic_inputs,
)
from netdoctor.adapters.torch.loss import compute_loss, loss_name
from netdoctor.adapters.torch.state import cuda_devices
from netdoctor.verify.protocol import NotApplicable, ProbeResult, max_spike


def probe(ctx: FixContext, applied: Applied | None, steps: int, mode: str = "full",
          minibatch: int = 16, stop_below: float | None = None) -> ProbeResult:
    """``steps`` Adam(1e-3) steps on the probe batch (seeded); ``applied=None`` probes the original.

    ``stop_below``: stop early once the training loss is below it (the fit probe's "fitted")."""
    a = applied or Applied(copy.deepcopy(ctx.model), ctx.inputs, ctx.targets, ctx.loss_fn)
    model = a.model  # a fresh copy either way: the fixed copy is measured before it is probed
    x, y = _batch(ctx, a)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise NotApplicable("the model has no trainable parameters")
    opt = _Adam(params)
    losses, norms, name, note = [], [], loss_name(a.loss_fn) if a.loss_fn is not None else "default", None
    gen = torch.Generator().manual_seed(ctx.seed + 1)
    n = _batch_size(x)
    torch.manual_seed(ctx.seed)
    model.train()
    looks: list[str] = []
    try:
        with _few_threads(params):
            for _ in range(steps):
                idx = torch.randperm(n, generator=gen)[:minibatch] if mode == "minibatch" and n > minibatch else None
                xb, yb = (x, y) if idx is None else (_rows(x, idx, n), _rows(y, idx, n))
                loss, name = _loss(ctx, model, xb, yb, a.loss_fn, looks=looks)
                grads = torch.autograd.grad(loss, params, allow_unused=True)
                for p, g in zip(params, grads):
                    p.grad = g
                total = float(nn.utils.clip_grad_norm_(params, a.clip if a.clip else math.inf))
                norms.append(min(total, a.clip) if a.clip else total)
                opt.step()
                losses.append(float(loss.detach()))
                if stop_below is not None and losses[-1] < stop_below:
                    break
            final = _final(ctx, model, x, y, a.loss_fn, None, looks)
    except (RuntimeError, ValueError) as exc:
        final, note = float("nan"), f"the probe stopped: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    spike = max_spike(norms) if mode == "minibatch" else None
    return ProbeResult(model, a, final, len(losses) if stop_below is not None else steps, "Adam(lr=0.001)", name,
                       a.clip, note, spike, losses)


def score(ctx: FixContext, base: ProbeResult, fixed: ProbeResult, applied: Applied) -> tuple[float, float]:
    """Final probe losses (original, fixed) in the same terms: the fixed loss when the fix changed it."""
    if applied.transform is None and applied.loss_fn is ctx.loss_fn:
        return base.final, fixed.final
    x, y = _batch(ctx, base.applied)
    try:
        before = _final(ctx, base.model, x, y, applied.loss_fn, applied.transform, [])
    except (RuntimeError, ValueError):
        before = float("nan")
    return before, fixed.final


def _batch(ctx: FixContext, a: Applied) -> tuple[Any, Any]:
    s = ctx.settings
    if a.inputs is None:
        x = synthetic_inputs(ctx.input_shape, ctx.device, ctx.dtype, ctx.seed, s.max_samples)
    else:
        x = prepare_inputs(a.inputs, ctx.device, ctx.dtype, s.max_samples)
    return x, prepare_targets(a.targets, ctx.device, ctx.dtype, s.max_samples)


def _loss(ctx: FixContext, model: nn.Module, x: Any, y: Any, loss_fn: Any, transform: str | None = None,
          looks: list[str] | None = None) -> tuple[Any, str]:
    """Probe loss as the adapter computes it; ``looks`` caches the output kind of the first call."""
    out = model(*x.args, **x.kwargs)
    main = main_output(out)
    if transform is not None and main is not None:
        main = torch.log(main.clamp_min(1e-12)) if transform == "log" else torch.logit(main, eps=1e-6)
        out = main
    looks = [] if looks is None else looks
    if not looks:
        looks.append(output_info(main.detach(), 1, ctx.settings.max_units).looks_like if main is not None
                     else "unknown")
    loss, info, _ = compute_loss(loss_fn, out, main, y, looks[0], ctx.seed)
    return loss, info.name


def _final(ctx: FixContext, model: nn.Module, x: Any, y: Any, loss_fn: Any, transform: str | None,
           looks: list[str]) -> float:
    with torch.random.fork_rng(devices=cuda_devices(model)), torch.no_grad():
        torch.manual_seed(ctx.seed + 2)
        return float(_loss(ctx, model, x, y, loss_fn, transform, looks)[0])


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


def _batch_size(x: Any) -> int:
    return int(getattr(x, "batch_size", 0) or 0)


def _rows(data: Any, idx: torch.Tensor, n: int) -> Any:
    """Rows ``idx`` of every leaf with ``n`` rows (ProbeInputs keep their structure)."""
    if hasattr(data, "args") and hasattr(data, "kwargs"):
        return dataclasses.replace(data, args=_rows(tuple(data.args), idx, n), kwargs=_rows(dict(data.kwargs), idx, n),
                                   batch_size=len(idx))
    return map_arrays(data, lambda t: t[idx.to(t.device)] if t.dim() and t.shape[0] == n else t)

