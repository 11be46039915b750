"""Leave no trace: save what a probe pass may change and put it back afterwards.

A training-mode forward pass updates BatchNormalization moving statistics and advances
the seed generators of Dropout-like layers (and, for layers that draw with ``seed=None``,
Keras' global seed generator). :class:`StateGuard` snapshots all of that, seeds the
dropout masks from ``ProbeSettings.seed`` for reproducible probes, and restores the exact
bytes on exit. Python's and numpy's global RNGs are restored too. :func:`globals_restored`
is the part of the fixer's guard that Keras needs: the global seed generator and the
automatic-name counters that building clones advances.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any

import numpy as np

from netdoctor.adapters._common import HostRngs


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
        self.global_seed = GlobalSeedGenerator()
        self.host_rngs = HostRngs()

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
        self.global_seed.restore()
        self.host_rngs.restore()


class GlobalSeedGenerator:
    """Keras' global seed generator (the object and its state) at construction; :meth:`restore` puts both back."""

    def __init__(self) -> None:
        from keras.src.backend.common import global_state

        self._global_state = global_state
        self.generator = global_state.get_global_attribute("global_seed_generator")
        self.state = np.array(self.generator.state.numpy(), copy=True) if self.generator is not None else None

    def restore(self) -> None:
        gs = self._global_state
        now = gs.get_global_attribute("global_seed_generator")
        if self.generator is None:
            if now is not None:
                gs.set_global_attribute("global_seed_generator", None)
        else:
            if now is not self.generator:
                gs.set_global_attribute("global_seed_generator", self.generator)
            self.generator.state.assign(self.state)


@contextlib.contextmanager
def globals_restored() -> Iterator[None]:
    """Run the body, then put Keras' global seed generator and automatic-name counters back."""
    from keras.src.backend.common import global_state

    seed = GlobalSeedGenerator()
    uids = global_state.get_global_attribute("object_name_uids")
    saved_uids = copy.copy(uids) if uids is not None else None
    try:
        yield
    finally:
        seed.restore()
        if uids is not None:
            uids.clear()
            uids.update(saved_uids)
        global_state.set_global_attribute("object_name_uids", uids)


@contextlib.contextmanager
def user_code_seeded(seed: int) -> Iterator[None]:
    """Run the user's model and data code as a fresh process would, seeded; restore Keras' globals after.

    Keras draws unseeded initializers and dropout from a global seed generator created from
    Python's ``random`` (seeded by the caller) and from ``global_random_seed``; TensorFlow ops
    (``tf.data`` shuffling) from TensorFlow's global seed. All of them start from ``seed`` here.
    Automatic layer names (``dense``, ``dense_1``...) restart as in a fresh process, so two loads
    of one file name their layers alike; afterwards the counters continue from the larger count.
    """
    import keras
    from keras.src.backend.common import global_state

    generator = GlobalSeedGenerator()
    old_seed = global_state.get_global_attribute("global_random_seed")
    uids = global_state.get_global_attribute("object_name_uids")
    saved_uids = dict(uids) if uids is not None else None
    tf_seed = _tf_global_seed()
    global_state.set_global_attribute("global_seed_generator", None)
    global_state.set_global_attribute("global_random_seed", int(seed))
    if uids is not None:
        uids.clear()
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.random.set_seed(int(seed))
    try:
        yield
    finally:
        generator.restore()
        global_state.set_global_attribute("global_random_seed", old_seed)
        now = global_state.get_global_attribute("object_name_uids")
        if now is not None and saved_uids is not None:
            for k, v in saved_uids.items():
                now[k] = max(now.get(k, 0), v)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.random.set_seed(tf_seed)


def _tf_global_seed() -> int | None:
    try:
        from tensorflow.python.eager import context

        return context.global_seed()
    except (ImportError, AttributeError):  # pragma: no cover - other backends / layouts
        return None
