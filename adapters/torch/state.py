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
from typing import Iterator

import torch
from torch import nn


class SavedState:
    """Snapshot of the mutable state of a model, restorable with :meth:`restore`."""

    def __init__(self, model: nn.Module) -> None:
        modules = list(model.modules())
        self.training = [(m, m.training) for m in modules]
        self.buffers: list[tuple[nn.Module, str, torch.Tensor, torch.Tensor]] = []
        eager = [m for m in modules if not isinstance(m, torch.jit.ScriptModule)]
        self.buffer_names = [(m, set(m._buffers)) for m in eager]
        with torch.no_grad():
            for m in modules:
                for name, buf in m.named_buffers(recurse=False):
                    if buf is not None:
                        self.buffers.append((m, name, buf, buf.detach().clone()))
        self.requires_grad = [(p, p.requires_grad) for p in model.parameters()]

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


def cuda_devices(model: nn.Module) -> list[int]:
    """Indices of the CUDA devices holding the model's tensors."""
    found: set[int] = set()
    for t in list(model.parameters()) + list(model.buffers()):
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
