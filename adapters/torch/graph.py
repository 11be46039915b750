"""Turn the traced records into frozen ``LayerRecord``s: order, entry, activation, params."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from netdoctor.adapters._common import all_different
from netdoctor.adapters.torch import kinds as K
from netdoctor.adapters.torch.stats import (
    duplicate_unit_frac, dtype_name, gradient_stats, reduce, reduce_many, zero_stats,
)
from netdoctor.adapters.torch.records import Rec
from netdoctor.adapters.torch.trace import Probe
from netdoctor.snapshot import (
    KIND_ACTIVATION, KIND_EMBEDDING, KIND_RNN, NORM_KINDS, ROLE_BUFFER, ROLE_EMBEDDING,
    ROLE_RECURRENT, ROLE_WEIGHT, WEIGHT_KINDS, LayerRecord, ParamRecord, TensorStats,
)


def all_records(probe: Probe, model: nn.Module) -> list[Rec]:
    """Executed records in execution order, with never-executed recorded modules inserted
    right after the record of the module that precedes them in ``named_modules()``."""
    by_module: dict[int, Rec] = {}
    for rec in probe.order:
        if rec.module is not None:
            by_module.setdefault(id(rec.module), rec)
    keyed: list[tuple[tuple[int, int], Rec]] = [((rec.order, 0), rec) for rec in probe.order]
    scripted: set[str] = set()
    anchor = (-1, 0)
    seq = 0
    for name, module in probe.named:
        rec = by_module.get(id(module))
        if rec is not None:
            anchor = (rec.order, 0)
            continue
        if K.is_scripted(module):
            if name.rpartition(".")[0] in scripted or not name:
                scripted.add(name)
                continue
            scripted.add(name)
            seq += 1
            keyed.append(((anchor[0], seq), _scripted_rec(name, module)))
            anchor = (anchor[0], seq)
            continue
        if not K.should_record(module):
            continue
        seq += 1
        kind = K.module_kind(module)
        rec = Rec(name=name, module=module, type_name=type(module).__name__, kind=kind,
                  activation=K.rnn_activation(module) if kind == KIND_RNN else K.module_activation(module),
                  executed=False, attrs=K.layer_attrs(kind, module))
        by_module[id(module)] = rec
        keyed.append(((anchor[0], seq), rec))
        anchor = (anchor[0], seq)
    keyed.sort(key=lambda kv: kv[0])
    return [rec for _, rec in keyed]


def _blocks_input(rec: Rec) -> bool:
    """Data passing through ``rec`` is no longer raw input: weight layers, normalization, and
    custom modules applying weight matrices of their own."""
    if rec.kind in WEIGHT_KINDS or rec.kind in NORM_KINDS:
        return True
    module = rec.module
    return module is not None and any(p is not None and p.dim() >= 2 for p in module._parameters.values())


def _scripted_rec(name: str, module: nn.Module) -> Rec:
    """A TorchScript submodule: one opaque record with all its parameters and buffers.

    Its calls cannot be hooked, so it is listed as not executed (unknown) and without data
    flow; its parameters still get values and gradients.
    """
    tensors = [(n, p, False) for n, p in module.named_parameters()]
    tensors += [(n, b, True) for n, b in module.named_buffers()]
    return Rec(name=name, module=None, type_name=type(module).__name__, kind="other", executed=False,
               attrs={"torchscript": True}, tensors=tensors)


class Graph:
    """Consumers, entry flags and activations over the traced data flow."""

    def __init__(self, recs: list[Rec], output_names: list[str]) -> None:
        self.recs = {r.name: r for r in recs}
        self.output_names = set(output_names)
        self.consumers: dict[str, list[Rec]] = {r.name: [] for r in recs}
        for r in recs:
            for src in r.inputs_from:
                if src in self.consumers:
                    self.consumers[src].append(r)
        self._reach: dict[str, bool] = {}

    def entry(self, rec: Rec) -> bool:
        """Weight layer (not an embedding) fed by a float model input through no weight layer.

        Paths through normalization layers do not count: a layer after a BatchNorm or
        LayerNorm sees standardized data, not the raw input.
        """
        if rec.kind not in WEIGHT_KINDS or rec.kind == KIND_EMBEDDING or not rec.executed:
            return False
        return self._reaches_input(rec, set())

    def _reaches_input(self, rec: Rec, seen: set[str]) -> bool:
        if rec.name in self._reach:
            return self._reach[rec.name]
        if rec.name in seen:
            return False
        seen.add(rec.name)
        hit = rec.consumes_float_input
        if not hit:
            for src in rec.inputs_from:
                s = self.recs.get(src)
                if s is not None and not _blocks_input(s) and self._reaches_input(s, seen):
                    hit = True
                    break
        self._reach[rec.name] = hit
        return hit

    def activation_after(self, rec: Rec) -> str | None:
        """Activation applied to ``rec``'s output, looking through norm/dropout/pool/reshape."""
        found = self._after(rec.name, set())
        values = {v for v in found if v is not None}
        return next(iter(values)) if len(values) == 1 else None

    def _after(self, name: str, seen: set[str]) -> set[str | None]:
        if name in seen:
            return set()
        seen.add(name)
        out: set[str | None] = set()
        if name in self.output_names:
            out.add("linear")
        for c in self.consumers.get(name, ()):
            if c.kind == KIND_ACTIVATION:
                out.add(c.activation)
            elif c.kind in WEIGHT_KINDS:
                out.add("linear")
            elif K.looks_through(c.module, c.kind):
                out |= self._after(c.name, seen)
            else:
                out.add(None)
        return out

    def norm_after(self, rec: Rec) -> str | None:
        """Kind of a normalization layer that consumes ``rec``'s output directly, if any."""
        for c in self.consumers.get(rec.name, ()):
            if c.kind in NORM_KINDS:
                return c.kind
        return None

    def final_activation(self, final: Rec | None) -> str | None:
        """The activation that produced the model output (``None``: linear/unknown)."""
        seen: set[str] = set()
        rec = final
        while rec is not None and rec.name not in seen:
            seen.add(rec.name)
            if rec.kind == KIND_ACTIVATION:
                return rec.activation
            if rec.kind in WEIGHT_KINDS or not rec.inputs_from or not (
                    rec.kind == "dropout" or K.looks_through(rec.module, rec.kind) and rec.kind not in NORM_KINDS):
                return None
            rec = self.recs.get(list(rec.inputs_from)[-1])
        return None


class ParamStats:
    """Stats of parameters, buffers and gradients, computed once per tensor.

    :meth:`values` reduces the parameters' values ahead of :meth:`record`: the adapter calls
    it right after the forward pass, which has just read every weight, so the reductions
    find them in cache (after the backward pass they cost about twice as much on a CPU).
    :meth:`gradients` reduces the gradients once the backward pass has run; ``grads`` is ``None``
    when they were not measured (an empty dict: measured, none reached).
    """

    def __init__(self, *, weights: bool, grads: dict[int, torch.Tensor | None] | None, max_units: int,
                 grad_moments: bool = False, sparsity: bool = True) -> None:
        self.weights = weights
        self.grad_moments = grad_moments
        self.sparsity = sparsity  # abs_mean and frac_zero of the large values (Need.SPARSITY; see reduce)
        self.grads = grads
        self.max_units = max_units
        self._cache: dict[int, tuple[TensorStats, TensorStats | None]] = {}
        self._values: dict[int, TensorStats] = {}
        self._grads: dict[int, TensorStats] = {}
        self._dups: dict[tuple[int, int], float] = {}
        self._row_sums: dict[int, np.ndarray] = {}  # a weight's row sums, from the reduction of its values

    def values(self, tensors: list[torch.Tensor]) -> None:
        """Reduce the values of ``tensors`` now (if weights are wanted)."""
        if self.weights:
            todo = [t for t in tensors if id(t) not in self._values]
            for t, st in zip(todo, reduce_many(todo, self.max_units, sparsity=self.sparsity, row_sums=self._row_sums)):
                self._values[id(t)] = st

    def gradients(self, params: list[torch.Tensor], grads: dict[int, torch.Tensor | None]) -> None:
        """Set :attr:`grads` and reduce them now, right after the backward pass wrote them: their norms
        (:func:`~netdoctor.adapters.torch.stats.gradient_stats`), or every statistic with ``grad_moments``."""
        self.grads = grads
        dense = [(p, g.to_dense() if g.layout != torch.strided else g)  # nn.Embedding(sparse=True)
                 for p in params if (g := grads.get(id(p))) is not None and id(p) not in self._grads]
        reducer = reduce_many if self.grad_moments else gradient_stats
        for (p, _), st in zip(dense, reducer([g for _, g in dense], self.max_units)):
            self._grads[id(p)] = st

    def record(self, kind: str, module: nn.Module | None, name: str, t: torch.Tensor, is_buffer: bool) -> ParamRecord:
        role = ROLE_BUFFER if is_buffer else K.param_role(kind, module, name)
        trainable = (not is_buffer) and t.requires_grad
        fan_in, fan_out, units, unit_dim = K.fans(kind, module, role, t)
        stats, grad = self._tensor_stats(t, trainable)
        dup = None
        if self.weights and role in (ROLE_WEIGHT, ROLE_RECURRENT, ROLE_EMBEDDING) and t.dim() >= 2:
            key = (id(t), unit_dim)
            dup = self._dups.get(key)
            if dup is None:
                # rows whose sums all differ all differ (equal rows sum alike): no column read, no sort of the rows
                keys = self._row_sums.get(id(t)) if unit_dim == 0 else None
                dup = self._dups[key] = (0.0 if keys is not None and len(keys) == t.shape[0] and all_different(keys)
                                         else duplicate_unit_frac(t, unit_dim))
        return ParamRecord(name=name, role=role, stats=stats, grad=grad, trainable=trainable, fan_in=fan_in,
                           fan_out=fan_out, units=units, duplicate_unit_frac=dup)

    def _tensor_stats(self, t: torch.Tensor, trainable: bool) -> tuple[TensorStats, TensorStats | None]:
        hit = self._cache.get(id(t))
        if hit is not None:
            return hit
        if self.weights:
            stats = self._values.get(id(t)) or reduce(t, max_units=self.max_units, sparsity=self.sparsity)[0]
        else:
            stats = TensorStats(shape=tuple(int(s) for s in t.shape), dtype=dtype_name(t.dtype))
        grad = None
        if self.grads is not None and trainable:
            # reduced by gradients(); a parameter without one gets zeros
            grad = self._grads.get(id(t)) or zero_stats(t.shape, dtype_name(t.dtype))
        self._cache[id(t)] = (stats, grad)
        return stats, grad


def build_layers(recs: list[Rec], graph: Graph, pstats: ParamStats) -> list[LayerRecord]:
    """Frozen layer records (params, entry, activation, norm_after, depth)."""
    layers: list[LayerRecord] = []
    depth = 0
    for r in recs:
        params: list[ParamRecord] = []
        if r.tensors is not None:
            for tname, t, is_buffer in r.tensors:
                params.append(pstats.record(r.kind, None, tname, t, is_buffer))
        elif r.module is not None:
            for pname, p in r.module._parameters.items():
                if p is not None:
                    params.append(pstats.record(r.kind, r.module, pname, p, False))
            for bname, b in r.module._buffers.items():
                if b is not None:
                    params.append(pstats.record(r.kind, r.module, bname, b, True))
        attrs: dict[str, Any] = dict(r.attrs)
        activation = r.activation
        if r.kind in WEIGHT_KINDS:
            if r.kind != KIND_RNN:
                activation = graph.activation_after(r) if r.executed else None
            norm = graph.norm_after(r)
            if norm is not None:
                attrs["norm_after"] = True
                attrs["norm_after_kind"] = norm
        is_weight_exec = r.kind in WEIGHT_KINDS and r.executed
        layers.append(LayerRecord(
            name=r.name, type_name=r.type_name, kind=r.kind, activation=activation, params=tuple(params),
            input=r.input, output=r.output, unit_active=r.unit_active, unit_saturated=r.unit_saturated,
            inputs_from=tuple(s for s in r.inputs_from if s in graph.recs),
            consumes_model_input=r.consumes_input, entry=graph.entry(r), executed=r.executed,
            calls=r.calls, depth=depth if is_weight_exec else None, attrs=attrs,
        ))
        if is_weight_exec:
            depth += 1
    return layers
