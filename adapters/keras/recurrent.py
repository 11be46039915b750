"""Gradient growth backward in time through Keras recurrent layers (``LSTM``/``GRU``/``SimpleRNN``).

The same measurement as :mod:`netdoctor.adapters.torch.recurrent`: :class:`TimeGrowth` wraps the
graph recorder of the probe forward pass and keeps, on the host, the input sequence each traced
recurrent layer received (at most :data:`MAX_ROWS` rows and the last :data:`MAX_STEPS` steps).
:meth:`TimeGrowth.annotate` then replays the layer's cell one step at a time from a zero state
(``training=False``: no dropout, no seed generator advanced) under a ``tf.GradientTape``, sends a
seeded unit-norm gradient into the last hidden state and reads the norm of the gradient that
reaches the full state at every earlier step; ``|dL/dstate_1| / |dL/dstate_T|`` goes into the
record's attrs as ``time_growth`` (with ``time_steps``). Only the TensorFlow backend is replayed;
bidirectional and ``go_backwards`` layers are skipped.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from netdoctor.snapshot import KIND_RNN, LayerRecord

MAX_ROWS = 32
MAX_STEPS = 200


class TimeGrowth:
    """Keeps the inputs of the traced recurrent layers during the probe forward pass."""

    def __init__(self, tr: Any, backend: str, enabled: bool = True) -> None:
        import keras

        self.inputs: dict[str, tuple[Any, np.ndarray]] = {}
        self.inner: Any = None
        self.names: set[str] = set()
        if not enabled or tr is None or backend != "tensorflow":
            return
        for s in tr.steps:
            op = s.op
            if s.kind == KIND_RNN and isinstance(op, keras.layers.RNN) and not getattr(op, "go_backwards", False) \
                    and hasattr(op, "cell"):
                self.names.add(s.name)

    def wrap(self, recorder: Any) -> Any:
        """The recorder to hand to ``run_graph``: ``recorder`` itself when there is nothing to keep."""
        if not self.names:
            return recorder
        self.inner = recorder
        return self

    @property
    def measured(self) -> Any:  # pragma: no cover - the collect reads the inner recorder's
        return self.inner.measured if self.inner is not None else None

    def record(self, step: Any, args: Any, outputs: list[Any], pre: Any = None) -> None:
        if self.inner is not None:
            self.inner.record(step, args, outputs, pre)
        if step.name in self.names and step.name not in self.inputs and args:
            from keras import ops

            x = np.asarray(ops.convert_to_numpy(args[0]))
            if x.ndim == 3 and np.issubdtype(x.dtype, np.floating):
                self.inputs[step.name] = (step.op, x[:MAX_ROWS, -MAX_STEPS:])

    def annotate(self, layers: list[LayerRecord], seed: int) -> list[LayerRecord]:
        """``layers`` with ``time_growth``/``time_steps`` in the attrs of the measured recurrent records."""
        found = {}
        for name, (layer, x) in self.inputs.items():
            got = _replay(layer, x, seed)
            if got is not None:
                found[name] = got
        self.inputs.clear()
        if not found:
            return layers
        return [dataclasses.replace(r, attrs={**r.attrs, "time_growth": found[r.name][0], "time_steps": found[r.name][1]})
                if r.kind == KIND_RNN and r.name in found else r for r in layers]


def _replay(layer: Any, x: np.ndarray, seed: int) -> tuple[float, int] | None:
    import tensorflow as tf
    from keras import tree

    steps = int(x.shape[1])
    if steps < 2:
        return None
    cell = layer.cell
    sizes = tree.flatten(cell.state_size)
    try:
        xt = tf.convert_to_tensor(x.astype(np.float32))
        state = [tf.zeros((x.shape[0], int(n)), dtype=xt.dtype) for n in sizes]
        states: list[list[Any]] = []
        with tf.GradientTape() as tape:
            for t in range(steps):
                _, new = cell(xt[:, t], state, training=False)
                state = list(tree.flatten(new))
                states.append(state)
            last_h = states[-1][0]
            u = np.random.default_rng(int(seed) + 7).standard_normal(tuple(last_h.shape)).astype(np.float32)
            u /= max(float(np.linalg.norm(u)), 1e-12)
            target = tf.reduce_sum(last_h * tf.constant(u, dtype=last_h.dtype))
        flat = [s for st in states for s in st]
        grads = tape.gradient(target, flat, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    except Exception:  # noqa: BLE001 - a cell that cannot be replayed step by step: not measured
        return None
    per = len(states[0])
    norms = [float(np.sqrt(sum(float(tf.reduce_sum(tf.square(g))) for g in grads[t * per:(t + 1) * per])))
             for t in range(steps)]
    if not norms[-1] > 0 or not all(np.isfinite(norms)):
        return None
    return norms[0] / norms[-1], steps
