"""Gradient growth backward in time through the recurrent layers (``nn.RNN``/``nn.LSTM``/``nn.GRU``).

During the probe forward pass :class:`TimeGrowth` keeps the input sequence each unidirectional
recurrent module received (the first call, at most :data:`MAX_ROWS` rows and the last
:data:`MAX_STEPS` steps). After it, :meth:`TimeGrowth.measure` replays each module one time step
at a time with its own weights, from a zero state, sends a seeded unit-norm gradient into the last
hidden state (what a loss on the last step sends back) and reads the norm of the gradient that
reaches the full state (all layers; ``h`` and ``c``) at every earlier step. The growth
``|dL/dstate_1| / |dL/dstate_T|`` goes into the layer record's attrs as ``time_growth`` (with
``time_steps``); ND301/ND302 judge it. The replay runs in eval mode (no dropout between stacked
layers) with ``torch.autograd.grad`` on the states only: no parameter's ``.grad`` is touched and the
module's training flag is restored.

A bidirectional module is replayed one layer and one direction at a time: each is rebuilt as a
one-layer unidirectional module with copies of that direction's weights, the backward direction on
the time-reversed sequence, each layer on the outputs of the one below (both directions
concatenated, as the module computes them); the module's growth is the largest of them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import torch
from torch import nn

from netdoctor.snapshot import KIND_RNN, LayerRecord

#: Rows of the probe batch replayed, and the longest sequence (its last steps) replayed.
MAX_ROWS = 32
MAX_STEPS = 200


class TimeGrowth:
    """Forward pre-hooks on the recurrent modules of ``model`` while the context is open."""

    def __init__(self, model: nn.Module, enabled: bool = True,
                 named: Sequence[tuple[str, nn.Module]] | None = None) -> None:
        self.inputs: dict[str, tuple[nn.RNNBase, torch.Tensor]] = {}
        self._handles: list[Any] = []
        if not enabled:
            return
        for name, m in (model.named_modules() if named is None else named):
            if isinstance(m, (nn.RNN, nn.LSTM, nn.GRU)) and getattr(m, "proj_size", 0) == 0:
                self._handles.append(m.register_forward_pre_hook(self._keep(name, m)))

    def _keep(self, name: str, module: nn.RNNBase):
        def hook(_mod: nn.Module, args: tuple) -> None:
            x = args[0] if args else None
            if name in self.inputs or not isinstance(x, torch.Tensor) or x.dim() != 3:
                return  # packed sequences, unbatched input, later calls: not replayed
            x = x.detach()
            x = x[:MAX_ROWS, -MAX_STEPS:] if module.batch_first else x[-MAX_STEPS:, :MAX_ROWS]
            self.inputs[name] = (module, x)
        return hook

    def __enter__(self) -> TimeGrowth:
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def measure(self, seed: int) -> dict[str, tuple[float, int]]:
        """``{module name: (growth, steps)}`` for every recurrent module that ran on 2+ steps."""
        out: dict[str, tuple[float, int]] = {}
        for name, (module, x) in self.inputs.items():
            growth = _replay_bidirectional(module, x, seed) if module.bidirectional else _replay(module, x, seed)
            if growth is not None:
                out[name] = growth
        self.inputs.clear()
        return out

    def annotate(self, layers: list[LayerRecord], seed: int) -> list[LayerRecord]:
        """``layers`` with ``time_growth``/``time_steps`` in the attrs of the measured recurrent records."""
        found = self.measure(seed)
        if not found:
            return layers
        return [dataclasses.replace(r, attrs={**r.attrs, "time_growth": found[r.name][0], "time_steps": found[r.name][1]})
                if r.kind == KIND_RNN and r.name in found else r for r in layers]


_CELLS = {"LSTM": (nn.LSTM, {}), "GRU": (nn.GRU, {}), "RNN_TANH": (nn.RNN, {"nonlinearity": "tanh"}),
          "RNN_RELU": (nn.RNN, {"nonlinearity": "relu"})}


def _direction(module: nn.RNNBase, layer: int, reverse: bool) -> nn.RNNBase | None:
    """One layer and direction of ``module`` as a one-layer unidirectional, batch-first module (weights copied)."""
    found = _CELLS.get(module.mode)
    if found is None:
        return None
    cls, extra = found
    suffix = f"_l{layer}{'_reverse' if reverse else ''}"
    w_ih = getattr(module, f"weight_ih{suffix}")
    twin = cls(w_ih.shape[1], module.hidden_size, num_layers=1, bias=module.bias, batch_first=True, **extra)
    with torch.no_grad():
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            if hasattr(module, kind + suffix):
                getattr(twin, kind + "_l0").copy_(getattr(module, kind + suffix))
    return twin.to(device=w_ih.device, dtype=w_ih.dtype)


def _replay_bidirectional(module: nn.RNNBase, x: torch.Tensor, seed: int) -> tuple[float, int] | None:
    """The largest growth of any layer and direction of a bidirectional ``module`` (see the module docstring)."""
    seq = x if module.batch_first else x.transpose(0, 1)
    found: list[tuple[float, int]] = []
    for layer in range(module.num_layers):
        twins = [_direction(module, layer, reverse) for reverse in (False, True)]
        if any(t is None for t in twins):
            return None
        fwd, bwd = twins
        back = seq.flip(1)
        for twin, inp in ((fwd, seq), (bwd, back)):
            got = _replay(twin, inp, seed)
            if got is not None:
                found.append(got)
        if layer + 1 < module.num_layers:
            with torch.no_grad():  # the next layer's input: both directions' outputs, in time order
                seq = torch.cat([fwd(seq)[0], bwd(back)[0].flip(1)], dim=-1)
    return max(found) if found else None


def _replay(module: nn.RNNBase, x: torch.Tensor, seed: int) -> tuple[float, int] | None:
    steps = int(x.shape[1] if module.batch_first else x.shape[0])
    if steps < 2 or not x.is_floating_point():
        return None
    was_training = module.training
    module.train(False)
    try:
        with torch.enable_grad():
            state = None
            states: list[tuple[torch.Tensor, ...]] = []
            for t in range(steps):
                xt = x[:, t:t + 1] if module.batch_first else x[t:t + 1]
                _, state = module(xt, state)
                states.append(state if isinstance(state, tuple) else (state,))
            last_h = states[-1][0][-1]  # the last layer's hidden state at the last step
            gen = torch.Generator(device="cpu").manual_seed(int(seed) + 7)
            u = torch.randn(last_h.shape, generator=gen, dtype=torch.float32).to(last_h.device, last_h.dtype)
            u = u / u.norm().clamp_min(1e-12)
            flat = [s for st in states for s in st]
            grads = torch.autograd.grad((last_h * u).sum(), flat, allow_unused=True)
    except RuntimeError:  # an input the module cannot take step by step (a custom subclass): not measured
        return None
    finally:
        module.train(was_training)
    per = len(states[0])
    norms = []
    for t in range(steps):
        gs = [g for g in grads[t * per:(t + 1) * per] if g is not None]
        norms.append(float(torch.sqrt(sum((g.float() ** 2).sum() for g in gs))) if gs else 0.0)
    if not norms[-1] > 0 or not all(map(lambda v: v == v, norms)):
        return None
    return norms[0] / norms[-1], steps
