"""Which layers inside an untraced (custom, subclassed) layer of a traced model actually ran.

The trace sees a custom layer as one opaque step; the weight layers inside it are listed after it
(:func:`netdoctor.adapters.keras.records.opaque_children`) but were not observed, so a layer that
a router skipped and one that ran could not be told apart. While the context of :class:`InnerCalls`
is open, each such inner weight layer's ``call`` is shadowed on the instance (``object.__setattr__``,
outside Keras' attribute tracking) by a wrapper that counts the calls and keeps the rows of the
first input; leaving the context deletes the instance attribute again, so the class's ``call`` is
back and the layer is as it was. :meth:`InnerCalls.annotate` puts ``attrs["observed_calls"]`` and
``attrs["rows"]`` on the inner records that ran; ``executed`` stays ``False`` for every inner record
(their order and data flow are unknown, so the structure rules keep leaving them out). ND304 reads the
observation to tell a mixture-of-experts expert that got no token on the probe batch ("not routed")
from a layer that is never called.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from netdoctor.adapters.keras.kinds import is_layer
from netdoctor.adapters.keras.records import composite, opaque_children
from netdoctor.snapshot import WEIGHT_KINDS, LayerRecord


class InnerCalls:
    """Counts the calls of the weight layers inside the opaque steps of ``tr`` while open."""

    def __init__(self, tr: Any) -> None:
        self.calls: dict[str, int] = {}
        self.rows: dict[str, int] = {}
        self._layers: dict[str, Any] = {}
        if tr is None:
            return
        for s in tr.steps:
            if is_layer(s.op) and not composite(s.op, s.kind):
                for name, child, kind in opaque_children(s.op, s.name):
                    if kind in WEIGHT_KINDS and "call" not in vars(child):
                        self._layers.setdefault(name, child)

    def _wrap(self, name: str, child: Any) -> Any:
        original = child.call

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            first = args[0] if args else None
            shape = getattr(first, "shape", None)
            if name not in self.rows and shape is not None and len(shape) >= 1 and shape[0] is not None:
                self.rows[name] = int(shape[0])
            return original(*args, **kwargs)

        return call

    def __enter__(self) -> InnerCalls:
        for name, child in self._layers.items():
            object.__setattr__(child, "call", self._wrap(name, child))
        return self

    def __exit__(self, *exc: Any) -> None:
        for child in self._layers.values():
            if "call" in vars(child):
                object.__delattr__(child, "call")

    def annotate(self, layers: list[LayerRecord]) -> list[LayerRecord]:
        """``layers`` with ``attrs["observed_calls"]``/``attrs["rows"]`` on the inner weight layers that ran."""
        if not self._layers:
            return layers
        out = []
        for r in layers:
            if r.name in self.calls and not r.executed:
                attrs = {**r.attrs, "observed_calls": self.calls[r.name]}
                if r.name in self.rows:
                    attrs["rows"] = self.rows[r.name]
                r = dataclasses.replace(r, attrs=attrs)
            out.append(r)
        return out
