"""Leave no trace: save what a probe pass may change and put it back afterwards.

A training-mode forward pass updates BatchNormalization moving statistics and advances
the seed generators of Dropout-like layers (and, for layers that draw with ``seed=None``,
Keras' global seed generator). :class:`StateGuard` snapshots all of that, seeds the
dropout masks from ``ProbeSettings.seed`` for reproducible probes, and restores the exact
bytes on exit. Python's and numpy's global RNGs are restored too.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np


def all_layers(model: Any) -> list[Any]:
    """``model`` and every layer inside it (recursive, deduplicated)."""
    try:
        return list(model._flatten_layers(include_self=True, recursive=True))
    except (AttributeError, TypeError):  # pragma: no cover - not a Keras layer
        return [model]


class StateGuard:
    """Snapshot of the mutable state a forward pass can touch.

    Args:
        model: The Keras model.
        seed: Seed for the dropout masks of the probe (restored afterwards).
    """

    def __init__(self, model: Any, seed: int) -> None:
        from keras.src.backend.common import global_state

        self._global_state = global_state
        self.seed = int(seed)
        layers = all_layers(model)
        self.generators: list[Any] = []
        seen: set[int] = set()
        for layer in layers:
            for sg in list(getattr(layer, "_seed_generators", ()) or ()):
                if id(sg) not in seen:
                    seen.add(id(sg))
                    self.generators.append(sg)
        self.variables: list[Any] = []
        seen = set()
        for v in list(model.non_trainable_variables) + [sg.state for sg in self.generators]:
            if id(v) not in seen:
                seen.add(id(v))
                self.variables.append(v)
        self.saved = [np.array(v.numpy(), copy=True) for v in self.variables]
        self.trainable_flags = [(layer, layer.trainable) for layer in layers]
        self.global_gen = global_state.get_global_attribute("global_seed_generator")
        self.global_gen_state = (
            np.array(self.global_gen.state.numpy(), copy=True) if self.global_gen is not None else None
        )
        self.py_random = random.getstate()
        self.np_random = np.random.get_state()

    def seed_generators(self) -> None:
        """Give every seed generator a state derived from the probe seed."""
        for i, sg in enumerate(self.generators):
            state = sg.state
            value = np.array([self.seed * 1000003 + i + 1, 0], dtype=np.dtype(state.dtype))
            state.assign(value)

    def restore(self) -> None:
        """Put every saved value back (bit for bit)."""
        for v, a in zip(self.variables, self.saved):
            v.assign(a)
        for layer, flag in self.trainable_flags:
            if layer.trainable != flag:
                layer.trainable = flag
        gs = self._global_state
        now = gs.get_global_attribute("global_seed_generator")
        if self.global_gen is None:
            if now is not None:
                gs.set_global_attribute("global_seed_generator", None)
        else:
            if now is not self.global_gen:
                gs.set_global_attribute("global_seed_generator", self.global_gen)
            self.global_gen.state.assign(self.global_gen_state)
        random.setstate(self.py_random)
        np.random.set_state(self.np_random)
