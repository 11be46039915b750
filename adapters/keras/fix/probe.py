"""The training probe of a Keras fix: a few seeded optimizer steps on the probe batch.

:func:`probe` trains the original (a plain clone) or a fixed clone; :func:`score` gives both
final losses in the same terms. The probe trains with the model's compiled optimizer (a fresh
one from its config, Adam 1e-3 when not compiled: ``edits.fresh_optimizer``) through the
adapter's gradient tape and loss resolution; the minibatch mode (gradient spikes, ND604) also
reports the largest gradient-norm spike.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from netdoctor.adapters._common import Applied
from netdoctor.adapters.keras.fix.context import FixContext
from netdoctor.adapters.keras.fix.edits import fresh_optimizer, rebuild
from netdoctor.adapters.keras.grad import grad_fn
from netdoctor.adapters.keras.io import (
    synthesize,
    synthetic_shapes,
    target_kind,
    to_tensors,
)
from netdoctor.adapters.keras.loss import plan
from netdoctor.adapters.keras.state import StateGuard
from netdoctor.adapters.keras.stats import looks_like, tensor_stats
from netdoctor.verify.protocol import NotApplicable, ProbeResult, max_spike


def probe(ctx: FixContext, applied: Applied | None, steps: int, mode: str = "full",
          minibatch: int = 16, stop_below: float | None = None) -> ProbeResult:
    """``steps`` optimizer steps on the probe batch (seeded); ``applied=None`` probes the original.

    ``stop_below``: stop early once the training loss is below it (the fit probe's "fitted")."""
    import keras
    from keras import ops, tree

    backend = keras.backend.backend()
    if grad_fn(backend) is None:
        raise NotApplicable(f"training probes need the tensorflow or torch backend, not {backend}")
    a = applied or Applied(rebuild(ctx, {}), ctx.inputs, ctx.targets, ctx.loss_fn)
    model, (x, y) = a.model, _batch(ctx, a)
    variables = list(model.trainable_variables)
    if not variables:
        raise NotApplicable("the model has no trainable weights")
    opt, lp = fresh_optimizer(ctx, a.clip), _plan(ctx, model, a.loss_fn, x, y)
    opt.build(variables)
    step = _train_step(backend, model, opt, lp, variables)
    StateGuard(model, ctx.seed).seed_generators()
    n, rng = _rows(x), np.random.default_rng(ctx.seed + 1)
    losses, norms, note = [], [], None
    try:
        for _ in range(steps):
            xb, yb = x, y
            if mode == "minibatch" and n > minibatch and y is not None:
                idx = rng.permutation(n)[:minibatch]
                xb, yb = (tree.map_structure(lambda t, i=idx: ops.take(t, i, axis=0), d) for d in (x, y))
            loss, total = step(xb, yb)
            total = float(ops.convert_to_numpy(total))
            norms.append(min(total, a.clip) if a.clip else total)
            losses.append(float(np.asarray(ops.convert_to_numpy(loss)).reshape(-1)[0]))
            if stop_below is not None and losses[-1] < stop_below:
                break
        final = _final(ctx, model, x, y, lp)
    except (ValueError, TypeError, RuntimeError) as exc:
        final, note = float("nan"), f"the probe stopped: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    spike = max_spike(norms) if mode == "minibatch" else None
    return ProbeResult(model, a, final, len(losses) if stop_below is not None else steps, _describe_optimizer(opt),
                       lp.info.name, a.clip, note, spike, losses)


def score(ctx: FixContext, base: ProbeResult, fixed: ProbeResult, applied: Applied) -> tuple[float, float]:
    """Final probe losses (original, fixed), both under the fixed loss when the fix changed it."""
    if applied.loss_fn is ctx.loss_fn:
        return base.final, fixed.final
    x, y = _batch(ctx, base.applied)
    return _final(ctx, base.model, x, y, _plan(ctx, base.model, applied.loss_fn, x, y)), fixed.final


def _batch(ctx: FixContext, a: Applied) -> tuple[Any, Any]:
    n = max(int(ctx.settings.max_samples), 1)
    if a.inputs is None:
        rng = np.random.default_rng(ctx.seed)
        refs = list(a.model.inputs)
        shapes = synthetic_shapes([t.shape for t in refs], [ctx.input_shape] * len(refs), n)
        xs = [synthesize(shape, str(t.dtype), rng, None) for t, shape in zip(refs, shapes)]
        return to_tensors(xs[0] if len(xs) == 1 else xs, n), None
    return to_tensors(a.inputs, n), (to_tensors(a.targets, n) if a.targets is not None else None)


def _plan(ctx: FixContext, model: Any, loss_fn: Any, x: Any, y: Any) -> Any:
    from keras import tree

    out = model(x, training=False)
    main = tree.flatten(out)[0]
    looks = looks_like(main, tensor_stats(main, max_units=ctx.settings.max_units, per_unit=True)[0])
    units = int(main.shape[-1]) if len(main.shape) >= 2 else 1
    kind = target_kind(tree.flatten(y)[0], units) if y is not None else None
    return plan(model, loss_fn, y, out, looks, kind, ctx.seed)


def _final(ctx: FixContext, model: Any, x: Any, y: Any, lp: Any) -> float:
    from keras import ops

    StateGuard(model, ctx.seed + 2).seed_generators()
    value = lp.compute(y, model(x, training=True))
    return float(np.asarray(ops.convert_to_numpy(value)).reshape(-1)[0])


def _train_step(backend: str, model: Any, opt: Any, lp: Any, variables: list) -> Callable[[Any, Any], tuple[Any, Any]]:
    """One optimizer step ``(x, y) -> (loss, global gradient norm before clipping)``.

    TensorFlow: a ``tf.function`` (traced once, then ~100x faster than eager per-variable updates);
    other backends: the adapter's gradient tape and an eager ``optimizer.apply``.
    """
    from keras import ops

    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function(reduce_retracing=True, autograph=False)
        def tf_step(x: Any, y: Any) -> tuple[Any, Any]:
            with tf.GradientTape() as tape:
                loss = lp.compute(y, model(x, training=True))
            grads = tape.gradient(loss, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            opt.apply(grads, variables)
            return loss, tf.linalg.global_norm(grads)

        return tf_step

    gfn = grad_fn(backend)

    def eager_step(x: Any, y: Any) -> tuple[Any, Any]:
        loss, grads, _ = gfn(lambda pause: (lp.compute(y, model(x, training=True)), None), variables)
        opt.apply([ops.convert_to_tensor(g) for g in grads], variables)
        return loss, math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads))

    return eager_step


def _rows(x: Any) -> int:
    from keras import tree

    leaf = tree.flatten(x)[0]
    return int(leaf.shape[0]) if len(leaf.shape) else 1


def _describe_optimizer(opt: Any) -> str:
    lr = opt.get_config().get("learning_rate")
    return f"{type(opt).__name__}(lr={lr:.3g})" if isinstance(lr, (int, float)) else type(opt).__name__
