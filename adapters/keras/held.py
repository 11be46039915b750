"""The Keras callback's held-batch pass: gradient norms and activation health of the model on a
held batch, one forward+backward in inference mode (TensorFlow backend).

The pass runs eagerly until its runs have cost :data:`COMPILE_AFTER_S` seconds, then is compiled
with ``tf.function`` (the held batch keeps its shapes, so it is traced once per ``fit``). Eagerly it
costs about 6 ms a sample on a 64-256-128-10 MLP, op by op, compiled about 1 ms, and tracing it
about 0.2 s: at ``every=50`` a short fit never pays for the trace, at ``every=1`` it is paid after
about 40 steps. What leaves the graph is one vector of squared gradient norms (one per trainable
weight, in float64) and one value per watched activation; a model the tracer cannot take stays
eager (same code, same values).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

#: Seconds of eager passes after which the pass is compiled (about what tracing it costs).
COMPILE_AFTER_S = 0.25


class HeldPass:
    """Measures ``model`` on the held batch ``(x, y)``.

    Args:
        model: The Keras model being trained.
        x: The held inputs.
        y: The held targets.
        feature_model: A functional view of ``model`` returning ``[outputs, *activations]``, or
            None (no activation is watched).
        thresholds: Per watched activation: ``None`` for the dying family (fraction of units
            that never output > 0), ``(low, high)`` for the saturating family (fraction of
            units at a bound for more than half of the rows).
    """

    def __init__(self, model: Any, x: Any, y: Any, feature_model: Any,
                 thresholds: list[tuple[float, float] | None]) -> None:
        import tensorflow as tf

        self.model = model
        self.feature_model = feature_model
        self.thresholds = thresholds
        self._x = tf.nest.map_structure(_tensor, x)
        self._y = tf.nest.map_structure(_tensor, y)
        self._compiled: Any = tf.function(self._measure, reduce_retracing=True)
        self._eager_s = 0.0
        self.eager = False  #: True once the model could not be traced (measured op by op from then on)

    @property
    def compiled_next(self) -> bool:
        """Whether the next call runs the compiled pass."""
        return not self.eager and self._eager_s >= COMPILE_AFTER_S

    def __call__(self) -> tuple[np.ndarray, np.ndarray]:
        """Squared gradient norm of each of ``model.trainable_weights`` (0 where it has none), and
        per watched activation its dead or saturated fraction."""
        if self.compiled_next:
            try:
                sq, health = self._compiled(self._x, self._y)
                return np.asarray(sq, dtype=np.float64), np.asarray(health, dtype=np.float64)
            except Exception:  # noqa: BLE001 - any tracing failure: the same pass, eagerly (errors of the model re-raise there)
                self.eager = True
        t0 = time.perf_counter()
        sq, health = self._measure(self._x, self._y)
        self._eager_s += time.perf_counter() - t0
        return np.asarray(sq, dtype=np.float64), np.asarray(health, dtype=np.float64)

    def _measure(self, x: Any, y: Any) -> tuple[Any, Any]:
        import tensorflow as tf

        model = self.model
        with tf.GradientTape() as tape:
            if self.feature_model is not None:
                outs = self.feature_model(x, training=False)
                y_pred, acts = outs[0], outs[1:]
            else:
                y_pred, acts = model(x, training=False), []
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
        grads = tape.gradient(loss, model.trainable_weights)
        sq = [tf.zeros((), tf.float64) if g is None else tf.reduce_sum(tf.square(tf.cast(tf.convert_to_tensor(g), tf.float64)))
              for g in grads]
        health = [_health(a, thr) for a, thr in zip(acts, self.thresholds)]
        return (tf.stack(sq) if sq else tf.zeros((0,), tf.float64),
                tf.stack(health) if health else tf.zeros((0,), tf.float64))


def _health(out: Any, thr: tuple[float, float] | None) -> Any:
    """Dead (``thr`` None) or saturated fraction of the units of one activation output, units on
    its last axis, one row per observation."""
    import tensorflow as tf

    a = tf.reshape(out, (-1, tf.shape(out)[-1])) if out.shape.rank >= 2 else tf.reshape(out, (-1, 1))
    if thr is None:  # units that never output > 0 on the batch
        return 1.0 - tf.reduce_mean(tf.cast(tf.reduce_any(a > 0, axis=0), tf.float64))
    pinned = tf.reduce_mean(tf.cast((a <= thr[0]) | (a >= thr[1]), tf.float64), axis=0)
    return tf.reduce_mean(tf.cast(pinned > 0.5, tf.float64))


def _tensor(v: Any) -> Any:
    """A numpy array as a tensor (a fixed input of the compiled pass); anything else as it is."""
    import tensorflow as tf

    return tf.convert_to_tensor(v) if isinstance(v, np.ndarray) else v
