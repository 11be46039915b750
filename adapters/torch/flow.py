"""Provenance: which recorded layers (or model inputs) each tensor of the forward derives from.

Every tensor the probe forward produces outside built-in modules gets an entry
``(weakref, origins, depth)``: ``origins`` is the set of the nearest recorded layers (or
the input markers ``INPUT_FLOAT`` / ``INPUT_INT``), ``depth`` the number of weight layers
on the longest path from the model input. Each torch function passes the union of its
operands' origins to its results, with three refinements:

* masks are not data: boolean tensors and mask keyword arguments (``attn_mask``...) do
  not propagate, and a broadcast operand of an elementwise op (a gate, a scale, an
  additive attention mask) gives way to the full-size operand;
* an integer model input cast to float (``x.float()``) becomes a float feature;
* a weight function (``matmul``, ``F.linear``, ``F.conv2d``...) applied to a recorded
  module's own parameter (``x @ self.W`` in a hand-written layer) makes that module the
  origin, one weight layer deeper;
* an addition of two same-shaped float tensors whose depths differ is a residual
  connection (``out + identity``, ``x + attn(x)``); equal depths (two towers summed,
  token + position embeddings) are not.

Entries are keyed by ``id``; the weak reference guards against ids reused by new tensors,
and nothing is kept alive.
"""

from __future__ import annotations

import weakref
from typing import Any, Iterable, Iterator

import torch

from netdoctor.adapters.torch import kinds as K

INPUT_FLOAT = "<input>"
INPUT_INT = "<input:int>"
MARKERS = frozenset({INPUT_FLOAT, INPUT_INT})

Info = tuple  # (weakref to the tensor, origins: frozenset[str], depth: int)
Found = list  # list[tuple[torch.Tensor, Info]]


def iter_tensors(obj: Any, _level: int = 0) -> Iterator[torch.Tensor]:
    """Tensors inside ``obj``: a tensor, (nested) tuples/lists/dicts, dataclass-like outputs."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif _level > 4:
        return
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            yield from iter_tensors(v, _level + 1)
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from iter_tensors(v, _level + 1)
    elif hasattr(obj, "__dataclass_fields__"):
        for name in obj.__dataclass_fields__:
            yield from iter_tensors(getattr(obj, name, None), _level + 1)
    elif isinstance(getattr(obj, "data", None), torch.Tensor):  # PackedSequence
        yield obj.data


def op_outputs(func: Any, args: tuple, out: Any) -> list[torch.Tensor]:
    """The tensors a torch function produced (``x[i] = y`` modifies ``x``)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return [o for o in out if isinstance(o, torch.Tensor)]
    if out is None and func in K.SETITEM_FUNCTIONS and args and isinstance(args[0], torch.Tensor):
        return [args[0]]
    return []


class Flow:
    """The provenance map of one probe forward pass."""

    def __init__(self, owners: dict[int, str] | None = None) -> None:
        self.prov: dict[int, Info] = {}
        self.residual = False
        self.owners = owners or {}  # id(parameter) -> name of the recorded module owning it

    def mark_input(self, t: torch.Tensor) -> None:
        """Register a model input tensor (integer inputs are ids/masks, floats are features)."""
        if t.dtype == torch.bool:
            return
        self.set(t, frozenset((INPUT_FLOAT if t.is_floating_point() else INPUT_INT,)), 0)

    def info(self, t: torch.Tensor) -> Info | None:
        """The entry of ``t``, or ``None``."""
        entry = self.prov.get(id(t))
        if entry is not None and entry[0]() is t:
            return entry
        return None

    def set(self, t: torch.Tensor, origins: frozenset[str], depth: int) -> None:
        """Record that ``t`` derives from ``origins`` at weight depth ``depth``."""
        try:
            self.prov[id(t)] = (weakref.ref(t), origins, depth)
        except TypeError:  # pragma: no cover - tensors support weak references
            pass

    def gather(self, args: Iterable[Any], kwargs: dict[str, Any]) -> Found:
        """``(tensor, info)`` of the data operands (masks skipped) that have provenance."""
        found: Found = []
        info = self.info

        def add(a: Any) -> None:
            if isinstance(a, torch.Tensor):
                if a.dtype != torch.bool:
                    i = info(a)
                    if i is not None:
                        found.append((a, i))
            elif isinstance(a, (tuple, list)):
                for b in a:
                    if isinstance(b, torch.Tensor) and b.dtype != torch.bool:
                        i = info(b)
                        if i is not None:
                            found.append((b, i))

        for a in args:
            add(a)
        for k, v in kwargs.items():
            if k not in K.MASK_KWARGS:
                add(v)
        return found

    def propagate(self, func: Any, args: tuple, kwargs: dict[str, Any], outs: list[torch.Tensor]) -> None:
        """Give ``outs`` the provenance of ``func``'s data operands."""
        found = self.gather(args, kwargs)
        if not found:
            return
        if func in K.WEIGHT_FUNCTIONS and self.owners:
            owner = self._weight_owner(args)
            if owner is not None:  # x @ self.W: the owning module acts as a layer here
                depth = max(i[2] for _, i in found) + 1
                for o in outs:
                    self.set(o, frozenset((owner,)), depth)
                return
        if len(found) == 2 and func in K.BINARY_FUNCTIONS:
            found = self._binary(func, found, outs[0])
        if len(found) == 1:
            origins, depth = found[0][1][1], found[0][1][2]
        else:
            origins = frozenset().union(*(i[1] for _, i in found))
            depth = max(i[2] for _, i in found)
        if INPUT_INT in origins and func in K.CAST_FUNCTIONS and outs[0].is_floating_point():
            origins = (origins - {INPUT_INT}) | {INPUT_FLOAT}
        for o in outs:
            self.set(o, origins, depth)

    def _weight_owner(self, args: tuple) -> str | None:
        for a in args:
            if isinstance(a, torch.nn.Parameter) and a.dim() >= 2:
                owner = self.owners.get(id(a))
                if owner is not None:
                    return owner
        return None

    def _binary(self, func: Any, found: Found, out: torch.Tensor) -> Found:
        """Residual detection and broadcast-operand pruning for elementwise binary ops."""
        (ta, ia), (tb, ib) = found
        na, nb, n_out = ta.numel(), tb.numel(), out.numel()
        if (func in K.ADD_FUNCTIONS and ia[2] != ib[2] and ta.shape == tb.shape
                and ta.is_floating_point() and tb.is_floating_point()
                and not (ia[1] <= MARKERS and ib[1] <= MARKERS)):
            self.residual = True
        if na < n_out <= nb and not ib[1] <= MARKERS:
            return [(tb, ib)]
        if nb < n_out <= na and not ia[1] <= MARKERS:
            return [(ta, ia)]
        return found

    def origins_of(self, tensors: Iterable[torch.Tensor]) -> set[str]:
        """Recorded layers (no input markers) the given tensors derive from."""
        names: set[str] = set()
        for t in tensors:
            i = self.info(t)
            if i is not None:
                names |= {o for o in i[1] if o not in MARKERS}
        return names
