"""PyTorch training-loop monitor: ``netdoctor.watch(model, optimizer, every=N)``.

Usage::

    with netdoctor.watch(model, optimizer, log_to="run.jsonl") as monitor:
        for x, y in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            monitor.step(loss)          # after optimizer.step()
    print(monitor.report().summary())

Cost model. Steps are counted from 0; step ``t`` is *sampled* when ``t % every == 0``.

* Every step: ``loss.detach()`` and the per-tensor gradient norms (one
  ``torch._foreach_norm`` call, kept on the device) are appended to lists (no device sync);
  they become the per-step loss and total gradient norm on the next sampled step, so ND604
  sees every spike, not only those on sampled steps.
* At the end of the step *before* a sampled step the monitor copies the weight matrices
  (for the update-to-weight ratio of the next optimizer step) and registers forward hooks on
  the activation modules; the hooks reduce dead/saturated fractions on the device during
  the sampled step's forward pass and are removed right after it.
* On the sampled step: gradient norms (``torch._foreach_norm``), weight norms and update
  norms are reduced on the device, packed with the pending losses into one vector, and
  copied to the host in one transfer (one sync every ``every`` steps). Under
  ``torch.distributed`` that vector is ``all_reduce``-d (one collective per sampled step)
  and only rank 0 logs, writes and shows the status line.

Between sampled steps there are no hooks, no copies and no syncs.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any, Iterable

import numpy as np
import torch

from netdoctor import suppress
from netdoctor.adapters._common import saturation_threshold
from netdoctor.adapters.torch.kinds import module_activation, module_kind
from netdoctor.config import Config
from netdoctor.findings import Report
from netdoctor.history import DYING_ACTIVATIONS, SATURATING_ACTIVATIONS, History, Sample
from netdoctor.monitor.core import MonitorCore
from netdoctor.snapshot import KIND_OTHER, WEIGHT_KINDS


#: Per-step gradient norms of tensors above this many entries use a strided subsample...
_SUB_MIN = 32768
#: ...of at least this many entries.
_SUB_KEEP = 8192

NO_GRAD_WARNING = ("netdoctor: no gradient was found on a sampled step (the gradients are None or all "
                   "zero), so the gradient rules ND604/ND608/ND609 are skipped; call monitor.step(loss) after "
                   "loss.backward() and before optimizer.zero_grad()")


def _kind(module: torch.nn.Module) -> str:
    """The weight-layer kind of ``module`` as ``collect`` names it (``"other"`` outside ``WEIGHT_KINDS``)."""
    kind = module_kind(module)
    return kind if kind in WEIGHT_KINDS else KIND_OTHER


class TorchMonitor:
    """Watches a PyTorch training loop; see the module docstring.

    Args:
        model: The ``nn.Module`` being trained (a ``DistributedDataParallel`` wrapper is unwrapped).
        optimizer: Optional; used to read the learning rate of the first parameter group.
        every: Sampling period in steps (default 50: under 3% overhead, see bench/bench_monitor.py).
        log_to: JSONL log path (rank 0 only).
        live: Live status line: ``"auto"`` (only on a terminal), ``True`` or ``False``.
        print_report: Print the text report to stderr at :meth:`close`.
        on_error: ``"warn"``, ``"stop"`` (sets :attr:`should_stop`) or ``"raise"``
            (:class:`netdoctor.monitor.TrainingError` from :meth:`step`).
        fail_on: Severity that triggers ``on_error`` (default ``"error"``).
        select: Rule codes/prefixes/names to run.
        ignore: Rule codes/prefixes/names not to run.
        config: A full :class:`~netdoctor.config.Config` (rule options and severities).
        activations: Measure dead/saturated fractions of activation modules.
        update_ratio: Measure update-to-weight ratios (costs one copy of the weight
            matrices, made only at the step before a sampled step).
        saturation_preact: Pre-activation magnitude beyond which a sigmoid/tanh unit is saturated.
        max_samples: Samples kept in memory (older ones are thinned).
        grad_scaler: A ``torch.amp.GradScaler`` whose scale is still in the gradients when
            :meth:`step` runs (mixed precision without ``scaler.unscale_()``); gradient norms are
            divided by the scale that was in effect for that backward pass. Leave it out when
            you call ``scaler.unscale_(optimizer)`` (e.g. for clipping) or do not use AMP.
        scheduler: The learning-rate scheduler, if any; only its class name is used (advice
            names it). Without it a schedule is still seen in the recorded learning rates.
        step_grad_norm: Measure the total gradient norm of every step (one ``_foreach_norm``
            per step, no sync), not only of sampled steps.
    """

    def __init__(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None, *,
                 every: int = 50, log_to: str | os.PathLike | None = None, live: bool | str = "auto",
                 print_report: bool = False, on_error: str = "warn", fail_on: str = "error",
                 select: Iterable[str] | None = None, ignore: Iterable[str] | None = None,
                 config: Config | None = None, activations: bool = True, update_ratio: bool = True,
                 saturation_preact: float = 5.0, max_samples: int = 256, grad_scaler: Any = None,
                 scheduler: Any = None, step_grad_norm: bool = True) -> None:
        inner = model.module if type(model).__name__ == "DistributedDataParallel" else model
        self.model = inner
        self.optimizer = optimizer
        dist = torch.distributed
        self._world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        rank = dist.get_rank() if self._world > 1 else 0
        self.core = MonitorCore("torch", every=every, log_to=log_to, live=live, print_report=print_report,
                                on_error=on_error, fail_on=fail_on, select=select, ignore=ignore, config=config,
                                is_main=rank == 0, max_samples=max_samples)
        self.every = self.core.every
        self._update_ratio = update_ratio
        self._scaler = grad_scaler
        self._grad_scale = 1.0
        self._t = 0
        self._pending: list[Any] = []
        self._pending_g: list[Any] = []  # per step: the gradient norms of each tensor, or None
        self._step_grad = step_grad_norm
        self._warned_no_grad = False
        self._pending_start = 0
        self._prev: list[torch.Tensor] | None = None
        self._hooks: list[Any] = []
        self._act_calls: list[tuple[int, Any, int]] = []  # (activation index, bad units, units) per call
        self._closed = False

        # Weight layers: modules owning trainable parameters with >= 2 dims.
        self._layers: list[tuple[str, str, list[torch.nn.Parameter]]] = []
        for name, mod in inner.named_modules():
            ps = [p for p in mod.parameters(recurse=False) if p.requires_grad and p.dim() >= 2]
            if ps:
                self._layers.append((name or type(inner).__name__, _kind(mod), ps))
        self._weights = [p for _, _, ps in self._layers for p in ps]
        self._slot_list = [i for i, (_, _, ps) in enumerate(self._layers) for _ in ps]
        self._index_cache: dict[tuple[int, ...], torch.Tensor] = {}
        self._params = [p for p in inner.parameters() if p.requires_grad]
        self._strides = [max(1, p.numel() // _SUB_KEEP) if p.numel() > _SUB_MIN else 1 for p in self._params]
        self._scales: dict[tuple[int, ...], torch.Tensor] = {}
        self._any_stride = any(k > 1 for k in self._strides)
        self._all_key = tuple(range(len(self._params)))
        has_conv1d = any(isinstance(m, torch.nn.Conv1d) for m in inner.modules())
        self._unit_axis3 = 1 if has_conv1d else -1
        self._acts: list[tuple[str, str, torch.nn.Module, tuple[float, float] | None]] = []
        if activations:
            for name, mod in inner.named_modules():
                act = module_activation(mod)
                if act in DYING_ACTIVATIONS or act in SATURATING_ACTIVATIONS:
                    self._acts.append((name, act, mod, saturation_threshold(act, saturation_preact)))
        self._act_output = _output_activations(inner, [m for _, _, m, _ in self._acts])
        first = next(iter(inner.parameters()), None)
        self._device = first.device if first is not None else torch.device("cpu")
        marks = {name: dict(suppress.marks_of(mod)) for name, mod in inner.named_modules()}
        self.core.start({
            "framework_version": torch.__version__, "model_class": type(inner).__name__,
            "param_count": sum(p.numel() for p in inner.parameters()),
            "trainable_param_count": sum(p.numel() for p in self._params),
            "layers": [n for n, _, _ in self._layers], "layer_kinds": [k for _, k, _ in self._layers],
            "act_layers": [n for n, _, _, _ in self._acts], "act_kinds": [a for _, a, _, _ in self._acts],
            "grad_source": "backward", "world_size": self._world, "act_output": self._act_output,
            "optimizer": _optimizer_name(optimizer),
            "scheduler": type(scheduler).__name__ if scheduler is not None else None,
            "suppressions": {k: v for k, v in marks.items() if v},
        })
        self._prepare()  # step 0 is sampled

    # -- public API ----------------------------------------------------------------
    def step(self, loss: Any) -> None:
        """Record one training step; call it after ``loss.backward()`` and before the next
        ``optimizer.zero_grad()`` (right after ``optimizer.step()`` is the usual place).

        Args:
            loss: The step's loss (a scalar tensor or a float). It is detached, never synced
                except on sampled steps.

        Raises:
            netdoctor.monitor.TrainingError: With ``on_error="raise"``, when a finding at
                ``fail_on`` fires.
        """
        if self._closed:
            raise RuntimeError("monitor.step() after monitor.close()")
        self._pending.append(loss.detach() if isinstance(loss, torch.Tensor) else float(loss))
        if self._step_grad:
            gs = [p.grad for p in self._params]
            if all(g is not None for g in gs):  # the usual case: every parameter has a gradient
                if self._any_stride:
                    gs = [g.reshape(-1)[::k] if k > 1 else g for g, k in zip(gs, self._strides)]
                self._pending_g.append((self._all_key, _norms(gs)))
            else:
                st = self._strides
                idx = tuple(i for i, g in enumerate(gs) if g is not None)
                if idx:
                    self._pending_g.append((idx, _norms([gs[i].reshape(-1)[::st[i]] if st[i] > 1 else gs[i]
                                                         for i in idx])))
                else:
                    self._pending_g.append(None)
        t = self._t
        self._t = t + 1
        if t % self.every == 0:
            self._sample(t)
        if self._t % self.every == 0:
            t0 = time.perf_counter()
            self._prepare()
            self.core.overhead_s += time.perf_counter() - t0

    @property
    def should_stop(self) -> bool:
        """True once a finding at ``fail_on`` fired with ``on_error="stop"``."""
        return self.core.should_stop

    def report(self) -> Report:
        """The findings of the run so far as a :class:`~netdoctor.findings.Report`."""
        return self.core.report()

    def history(self) -> History:
        """The recorded :class:`~netdoctor.history.History`."""
        return self.core.history()

    def plot(self, path: str | os.PathLike, **kwargs: Any) -> str:
        """Write the loss curve PNG with the steps where findings fired (needs matplotlib)."""
        return self.core.plot(path, **kwargs)

    def close(self) -> None:
        """Remove every hook, drop the weight copy, flush the log. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._disarm()
        self._prev = None
        tail = self._host_losses(self._pending)
        tail_g = self._host_grads(self._pending_g) if self._step_grad else None
        self.core.close(self._pending_start, tail, tail_g)
        self._pending = []
        self._pending_g = []

    def __enter__(self) -> TorchMonitor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- sampling ------------------------------------------------------------------
    def _prepare(self) -> None:
        """Before a sampled step: copy the weights, arm the activation hooks, note the AMP scale."""
        if self._scaler is not None and self._scaler.is_enabled():
            self._grad_scale = float(self._scaler.get_scale())  # the scale of the next backward pass
        if self._update_ratio and self._weights:
            with torch.no_grad():
                self._prev = [p.detach().clone() for p in self._weights]
        self._act_calls = []
        for i, (_, act, mod, thr) in enumerate(self._acts):
            self._hooks.append(mod.register_forward_hook(self._make_hook(i, act, thr)))

    def _disarm(self) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks = []

    def _make_hook(self, i: int, act: str, thr: tuple[float, float] | None):
        def hook(module: torch.nn.Module, inputs: Any, output: Any) -> None:
            if not (module.training and torch.is_grad_enabled() and isinstance(output, torch.Tensor)):
                return
            with torch.no_grad():
                y = output.detach()
                axis = 1 if y.dim() >= 4 else (self._unit_axis3 if y.dim() == 3 else -1)
                y = y.movedim(axis, -1).reshape(-1, y.shape[axis]) if y.dim() >= 2 else y.reshape(-1, 1)
                if thr is None:  # dying family: units that output > 0 at least once on the batch
                    bad = y.shape[1] - (y > 0).any(dim=0).sum()
                else:  # saturating: units pinned at a bound for more than half of the rows
                    bad = (((y <= thr[0]) | (y >= thr[1])).sum(dim=0) > y.shape[0] / 2).sum()
            self._act_calls.append((i, bad, y.shape[1]))
        return hook

    def _host_losses(self, pending: list[Any]) -> np.ndarray:
        if not pending:
            return np.zeros(0)
        return _stack_losses(pending, self._device).cpu().numpy().astype(np.float64)

    def _host_grads(self, pending: list[Any]) -> np.ndarray:
        """Total gradient norm per pending step (NaN where the step had no gradient).

        Tensors above ``_SUB_MIN`` entries were measured on a fixed strided subsample (every
        k-th entry, at least ``_SUB_KEEP`` of them); their squared norms are scaled back up by
        ``numel / entries kept``. On ordinary gradients the estimate is within ~1% of the exact
        norm (a 1024x1024 layer: 1063 vs 1062); sampled steps still measure exact norms.
        """
        out = np.full(len(pending), np.nan)
        have = [i for i, g in enumerate(pending) if g]
        if have:
            dev = self._device
            keys = {pending[i][0] for i in have}
            if len(keys) == 1:  # the usual case: one stack for all steps
                (key,) = keys
                norms = torch.stack([n for i in have for n in pending[i][1]]).float().to(dev).view(len(have), len(key))
                tot = (norms.square() * self._scale_of(key)).sum(1)
            else:
                tot = torch.stack([(torch.stack(pending[i][1]).float().to(dev).square()
                                    * self._scale_of(pending[i][0])).sum() for i in have])
            if self._world > 1:
                torch.distributed.all_reduce(tot)
                tot /= self._world
            out[have] = tot.sqrt().cpu().numpy().astype(np.float64) / self._grad_scale
        return out

    def _scale_of(self, key: tuple[int, ...]) -> torch.Tensor:
        scale = self._scales.get(key)
        if scale is None:
            ns = [self._params[i].numel() for i in key]
            scale = self._scales[key] = torch.tensor(
                [n / len(range(0, n, self._strides[i])) for i, n in zip(key, ns)], device=self._device)
        return scale

    def _sample(self, t: int) -> None:
        t0 = time.perf_counter()
        self._disarm()
        pend_g, self._pending_g = self._pending_g, []
        pend, self._pending = self._pending, []
        start, self._pending_start = self._pending_start, t + 1
        calls, self._act_calls = self._act_calls, []
        prev, self._prev = self._prev, None
        dev, L, A = self._device, len(self._layers), len(self._acts)
        with torch.no_grad():
            # every norm in one foreach call, summed per slot with one index_add:
            # slot 0 = all gradients, 1+l = layer grads, 1+L+l = weights, 1+2L+l = updates, 1+3L+l = weights before
            grads = [p.grad for p in self._params if p.grad is not None]
            wgrads = [(k, p.grad) for k, p in enumerate(self._weights) if p.grad is not None]
            weights = [p.detach() for p in self._weights]
            tensors = grads + [g for _, g in wgrads] + weights
            slots = [0] * len(grads) + [1 + self._slot_list[k] for k, _ in wgrads] \
                + [1 + L + x for x in self._slot_list]
            if prev is not None:
                tensors += list(torch._foreach_sub(weights, prev)) + prev
                slots += [1 + 2 * L + x for x in self._slot_list] + [1 + 3 * L + x for x in self._slot_list]
            sq = torch.stack([n.float() for n in _norms(tensors)]).to(dev).square() if tensors else None
            sums = torch.zeros(1 + 4 * L, device=dev)
            if sq is not None:
                key = tuple(slots)
                index = self._index_cache.get(key)
                if index is None:  # the layout only changes when gradients appear/disappear
                    index = self._index_cache[key] = torch.tensor(slots, device=dev)
                sums.index_add_(0, index, sq)
            parts = [_stack_losses(pend, dev), sums]
            if calls:
                parts.append(torch.stack([torch.as_tensor(c[1], device=dev) for c in calls]).float())
            vec = torch.cat(parts)
            if self._world > 1:
                torch.distributed.all_reduce(vec)
                vec /= self._world
            host = vec.cpu().numpy().astype(np.float64)
        k = len(pend)
        losses, sums_h, bad = host[:k], host[k:k + 1 + 4 * L], host[k + 1 + 4 * L:]
        sums_h[:1 + L] /= self._grad_scale ** 2  # squared gradient norms of a scaled loss
        lg, lw, ld, lp = (sums_h[1 + m * L:1 + (m + 1) * L] for m in range(4))
        frac = np.full(A, np.nan)
        if calls:
            n_bad, n_units = np.zeros(A), np.zeros(A)
            np.add.at(n_bad, [c[0] for c in calls], bad)
            np.add.at(n_units, [c[0] for c in calls], [c[2] for c in calls])
            with np.errstate(invalid="ignore", divide="ignore"):
                frac = np.where(n_units > 0, n_bad / n_units, np.nan)
        dying = np.asarray([a in DYING_ACTIVATIONS for _, a, _, _ in self._acts], dtype=bool)
        with np.errstate(invalid="ignore", divide="ignore"):
            update = np.sqrt(ld) / np.sqrt(lp) if prev is not None else None
        have_grad = bool(grads) and sums_h[0] != 0  # all-zero gradients: zero_grad() ran before step()
        if not have_grad and self._params and not self._warned_no_grad and self.core.is_main:
            self._warned_no_grad = True
            warnings.warn(NO_GRAD_WARNING, stacklevel=3)
        step_g = self._host_grads(pend_g) if self._step_grad else None
        if step_g is not None:
            step_g[step_g == 0] = np.nan
        sample = Sample(
            step=t, grad_norm=float(np.sqrt(sums_h[0])) if have_grad else None,
            layer_grad=np.sqrt(lg) if have_grad else None, layer_weight=np.sqrt(lw), layer_update=update,
            act_dead=np.where(dying, frac, np.nan) if A else None,
            act_saturated=np.where(~dying, frac, np.nan) if A else None, lr=self._lr(),
        )
        self.core.overhead_s += time.perf_counter() - t0
        self.core.record(start, losses, sample, step_g)

    def _lr(self) -> float | None:
        """The largest learning rate of the parameter groups (the one that sets the step size)."""
        if self.optimizer is None or not self.optimizer.param_groups:
            return None
        lrs = [float(g["lr"]) for g in self.optimizer.param_groups if g.get("lr") is not None]
        return max(lrs) if lrs else None


def _optimizer_name(optimizer: Any) -> str | None:
    """Class name of the user's optimizer, through wrappers (accelerate's AcceleratedOptimizer,
    Lightning's LightningOptimizer)."""
    for _ in range(3):
        inner = getattr(optimizer, "optimizer", None) or getattr(optimizer, "_optimizer", None)
        if inner is None or inner is optimizer:
            break
        optimizer = inner
    return type(optimizer).__name__ if optimizer is not None else None


def _output_activations(model: torch.nn.Module, acts: list[torch.nn.Module]) -> list[bool]:
    """Per watched activation module, whether it is the model's output activation: the last
    module of the registration order with no weight layer after it (``nn.Sequential`` heads,
    ``self.out = nn.Sigmoid()`` last in ``__init__``)."""
    order = [m for m in model.modules() if next(m.children(), None) is None]  # leaf modules in order
    last_weight = max((i for i, m in enumerate(order) if any(p.dim() >= 2 for p in m.parameters(recurse=False))),
                      default=-1)
    pos = {id(m): i for i, m in enumerate(order)}
    after = [m for m in acts if pos.get(id(m), -1) > last_weight]
    out = after[-1] if after else None
    return [m is out for m in acts]


def _stack_losses(pending: list[Any], dev: torch.device) -> torch.Tensor:
    """One float tensor of the pending losses on ``dev`` (one op in the common case: 0-d tensors)."""
    if all(isinstance(x, torch.Tensor) for x in pending):
        try:
            return torch.stack(pending).reshape(len(pending), -1)[:, 0].float().to(dev)
        except RuntimeError:  # different shapes, dtypes or devices
            return torch.stack([x.reshape(-1)[0].float().to(dev) for x in pending])
    return torch.tensor([float(x) for x in pending], device=dev)


def _norms(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """L2 norm of each tensor (``torch._foreach_norm`` when all are dense)."""
    if not tensors:
        return []
    if any(t.is_sparse for t in tensors):
        return [t.coalesce().values().norm() if t.is_sparse else t.norm() for t in tensors]
    try:
        return list(torch._foreach_norm(tensors))
    except (RuntimeError, AttributeError):  # mixed devices/dtypes or an old torch
        return [t.norm() for t in tensors]
