"""Leave no trace: save and restore everything the probe could change.

The probe runs the model in training mode (BatchNorm updates its running statistics,
dropout draws from the global RNG). :class:`SavedState` remembers the train/eval flag of
every module, every buffer (values and object identity), the ``requires_grad`` flag of
every parameter, and :func:`seeded` forks the global RNG so it is restored bit for bit.
Parameters and their ``.grad`` are never written (gradients come from
``torch.autograd.grad``), so they need no copy.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import nn

#: ``list(model.named_modules())``, taken once by the adapter and handed to the helpers below
Modules = Sequence[tuple[str, nn.Module]]


class SavedState:
    """Snapshot of the mutable state of a model, restorable with :meth:`restore`."""

    def __init__(self, model: nn.Module, named: Modules | None = None,
                 params: Sequence[torch.Tensor] | None = None) -> None:
        modules = list(model.modules()) if named is None else [m for _, m in named]
        self.training = [(m, m.training) for m in modules]
        self.buffers: list[tuple[nn.Module, str, torch.Tensor, torch.Tensor]] = []
        eager = [m for m in modules if not isinstance(m, torch.jit.ScriptModule)]
        self.buffer_names = [(m, set(m._buffers)) for m in eager]
        with torch.no_grad():
            for m in modules:
                own = m.named_buffers(recurse=False) if isinstance(m, torch.jit.ScriptModule) else m._buffers.items()
                for name, buf in own:
                    if buf is not None:
                        self.buffers.append((m, name, buf, buf.detach().clone()))
        self.requires_grad = [(p, p.requires_grad) for p in (model.parameters() if params is None else params)]

    def restore(self) -> None:
        """Put every saved flag and buffer back (values copied in place, same objects)."""
        with torch.no_grad():
            for m, names in self.buffer_names:
                for extra in set(m._buffers) - names:  # buffers a lazy forward registered
                    del m._buffers[extra]
            for m, name, buf, saved in self.buffers:
                if not isinstance(m, torch.jit.ScriptModule) and m._buffers.get(name) is not buf:
                    m._buffers[name] = buf
                if buf.shape == saved.shape:
                    buf.copy_(saved)
        for m, flag in self.training:
            if m.training != flag:
                m.train(flag) if isinstance(m, torch.jit.ScriptModule) else setattr(m, "training", flag)
        for p, flag in self.requires_grad:
            if p.requires_grad != flag:
                p.requires_grad_(flag)


def parameters_and_buffers(model: nn.Module, named: Modules) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``list(model.parameters()), list(model.buffers())`` (each tensor once, in that order) from the modules
    the adapter walked already, instead of two more walks (TorchScript submodules: torch's own)."""
    if any(isinstance(m, torch.jit.ScriptModule) for _, m in named):
        return list(model.parameters()), list(model.buffers())
    params = dict.fromkeys(p for _, m in named for p in m._parameters.values() if p is not None)
    buffers = dict.fromkeys(b for _, m in named for b in m._buffers.values() if b is not None)
    return list(params), list(buffers)


_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def model_hooks(model: nn.Module, named: Modules | None = None) -> list[str]:
    """Names of the modules that carry forward/backward hooks of their own (the user's, a library's).

    The probe runs them, as training would: a hook may be part of the computation (weight or
    spectral normalization, pruning masks, device placement), so it cannot be left out; the
    report says they ran. Lazy modules' own initialization hooks are not counted.
    """
    from torch.nn.modules.lazy import LazyModuleMixin

    out = []
    for name, m in (model.named_modules() if named is None else named):
        hooks = [h for attr in _HOOK_DICTS for h in (m.__dict__.get(attr) or {}).values()]
        if isinstance(m, LazyModuleMixin):
            hooks = [h for h in hooks if getattr(h, "__self__", None) is not m]
        if hooks:
            out.append(name or type(m).__name__)
    return out


def global_forward_hooks() -> bool:
    """A global module forward or forward-pre hook is registered (``register_module_forward_hook``...):
    it runs on every module call, the probe's included."""
    from torch.nn.modules import module as _module

    return bool(_module._global_forward_pre_hooks or _module._global_forward_hooks)


def lazy_modules(model: nn.Module, named: Modules | None = None) -> list[str]:
    """Names of the lazy modules (``nn.LazyLinear``...) whose parameters do not exist yet."""
    from torch.nn.modules.lazy import LazyModuleMixin

    return [name or type(m).__name__ for name, m in (model.named_modules() if named is None else named)
            if isinstance(m, LazyModuleMixin) and m.has_uninitialized_params()]


def cuda_devices(model: nn.Module, tensors: Sequence[torch.Tensor] | None = None) -> list[int]:
    """Indices of the CUDA devices holding the model's tensors (``tensors``: its parameters and buffers,
    when the caller has them)."""
    found: set[int] = set()
    for t in (list(model.parameters()) + list(model.buffers()) if tensors is None else tensors):
        if t.is_cuda:
            found.add(t.device.index or 0)
    return sorted(found)


@contextlib.contextmanager
def seeded(seed: int, devices: list[int]) -> Iterator[None]:
    """Run the body with the global RNG seeded; restore the CPU and CUDA states afterwards."""
    with torch.random.fork_rng(devices=devices, enabled=True):
        torch.random.default_generator.manual_seed(int(seed))
        for index in devices:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(int(seed))
        yield


@contextlib.contextmanager
def user_code_seeded(seed: int) -> Iterator[None]:
    """Seed torch's global RNG (CPU and initialized CUDA devices) for the body; restore it afterwards.

    Wraps the user's model and data code (weight initialization, a shuffling DataLoader), so two
    runs of an unchanged file build the same model and draw the same batch.
    """
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=devices, enabled=True):
        torch.manual_seed(int(seed))
        yield
