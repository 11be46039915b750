"""The one backend-specific piece of the Keras adapter: the gradient tape.

Keras 3 has no backend-neutral "gradient of this scalar with respect to these variables"
(``model.fit`` hides it inside each backend's trainer), so :func:`grad_fn` picks the
backend's own mechanism: ``tf.GradientTape`` for TensorFlow, ``torch.autograd`` for
``KERAS_BACKEND=torch``. Everything else in the adapter speaks ``keras.ops``.

A gradient function has the signature ``(forward, variables) -> (loss, grads, watched)``:
``forward(pause)`` runs the model and returns ``(loss, watch)``; ``pause`` is a context
manager factory under which statistics are computed without being recorded for the
backward pass. ``grads`` has one host array per variable (zeros where the loss does not
reach a variable). ``watch`` is ``None`` or a tensor computed in the forward pass (the
model output) whose gradient is wanted too: ``watched`` is then that gradient as a host
array (zeros where the loss does not depend on it), else ``None``.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager, Sequence

import numpy as np

Forward = Callable[[Callable[[], ContextManager[Any]]], tuple[Any, Any]]
GradFn = Callable[[Forward, Sequence[Any]], tuple[Any, list[np.ndarray], Any]]


def grad_fn(backend: str) -> GradFn | None:
    """The gradient function for a Keras backend, or ``None`` when unsupported (jax, numpy)."""
    if backend == "tensorflow":
        return _tensorflow_grads
    if backend == "torch":
        return _torch_grads
    return None


def no_grad_forward(forward: Forward) -> tuple[Any, Any]:
    """Run ``forward`` without recording anything (no gradients needed)."""
    return forward(contextlib.nullcontext)


def _tensorflow_grads(forward: Forward, variables: Sequence[Any]) -> tuple[Any, list[np.ndarray], Any]:
    import tensorflow as tf

    tf_vars = [v.value for v in variables]
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(tf_vars)
        loss, watch = forward(tape.stop_recording)
    if not tf_vars:
        return loss, [], None
    extra = [watch] if watch is not None else []
    grads = tape.gradient(loss, tf_vars + extra, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    watched = _host(grads[-1], watch) if extra else None
    return loss, [_host(g, v) for g, v in zip(grads[:len(tf_vars)], variables)], watched


def _torch_grads(forward: Forward, variables: Sequence[Any]) -> tuple[Any, list[np.ndarray], Any]:
    import torch

    with torch.enable_grad():
        loss, watch = forward(torch.no_grad)
    tensors = [v.value for v in variables]
    if not tensors or not getattr(loss, "requires_grad", False):
        return loss, [np.zeros(tuple(v.shape), dtype=np.float32) for v in variables], None
    extra = [watch] if watch is not None and getattr(watch, "requires_grad", False) else []
    grads = torch.autograd.grad(loss, tensors + extra, allow_unused=True)
    out = []
    for g, v in zip(grads[:len(tensors)], variables):
        out.append(np.zeros(tuple(v.shape), dtype=np.float32) if g is None else g.detach().cpu().numpy())
    watched = None
    if extra:
        g = grads[-1]
        watched = np.zeros(tuple(watch.shape), dtype=np.float32) if g is None else g.detach().float().cpu().numpy()
    return loss, out, watched


def _host(g: Any, v: Any) -> np.ndarray:
    if g is None:
        return np.zeros(tuple(v.shape), dtype=np.float32)
    if hasattr(g, "values") and hasattr(g, "indices") and hasattr(g, "dense_shape"):  # IndexedSlices
        import tensorflow as tf

        g = tf.convert_to_tensor(g)
    return np.asarray(g)  # a read-only view of the gradient's buffer on a CPU (``.numpy()`` would copy it)
