"""The diff snippet of a Keras fix: the code change as the user would write it.

:func:`diff` writes, per edit, ``-`` old and ``+`` new lines with each layer written out from
its config (``layers.Dense(64, activation="relu", name="dense_1")``), the compile call or the
optimizer, joined by :func:`~netdoctor.verify.protocol.join_blocks`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from netdoctor.adapters.keras.fix.context import FixContext
from netdoctor.adapters.keras.fix.edits import INIT_ARG, INITIALIZERS, fresh_optimizer, loss_in_form, top_layer
from netdoctor.verify.protocol import FixStep, join_blocks


def diff(ctx: FixContext, steps: Sequence[FixStep]) -> str:
    """A diff-like snippet of the fix in the user's own layer names (``-`` old, ``+`` new lines)."""
    return join_blocks([(s.op, _lines(ctx, s)) for s in steps])


def _lines(ctx: FixContext, s: FixStep) -> list[str]:
    name = str(s.layer).split("/")[0]
    layer = top_layer(ctx, name) if s.layer else None
    if s.op == "reinit":
        arg = INIT_ARG.get(str(s.get("param")), f"{s.get('param')}_initializer")
        return [f"- {_ctor(layer)},", f"+ {_ctor(layer, **{arg: INITIALIZERS[str(s.get('init'))]})},"]
    if s.op == "insert_norm":
        act = s.get("activation")
        new = [f"+ {_ctor(layer, activation='linear', use_bias=False)},", "+ layers.BatchNormalization(),"]
        return [f"- {_ctor(layer)},", *new, *([f'+ layers.Activation("{act}"),'] if act not in (None, "linear") else [])]
    if s.op == "remove":
        return [f"- {_ctor(layer)},"]
    if s.op == "move_dropout":
        after = top_layer(ctx, str(s.get("after")).split("/")[0])
        return [f"- {_ctor(layer)},", f"  {_ctor(after)},", f"+ {_ctor(layer)},"]
    if s.op in ("set_activation", "no_bias", "zero_bias"):
        over = {"set_activation": {"activation": s.get("activation")}, "no_bias": {"use_bias": False},
                "zero_bias": {"bias_initializer": "zeros"}}[s.op]
        return [f"- {_ctor(layer)},", f"+ {_ctor(layer, **over)},"]
    if s.op == "reset_nonfinite":
        return [f'+ # reload weights saved before the divergence, or re-create "{name}" to re-initialize it']
    if s.op == "loss_form":
        old = ctx.loss_fn if ctx.loss_fn is not None else ctx.compiled_loss
        new = loss_in_form(old, str(s.get("form")))
        return [f"- model.compile(..., loss={_loss_code(old)})", f"+ model.compile(..., loss={_loss_code(new)})"]
    if s.op == "clip":
        opt = fresh_optimizer(ctx, None)
        return [f"- optimizer = {_optimizer_code(opt)}", f"+ optimizer = {_optimizer_code(opt, s.get('max_norm'))}"]
    if s.op == "standardize":
        shape = tuple(ctx.model.inputs[0].shape[1:]) if getattr(ctx.model, "inputs", None) else ("...",)
        return ["+ norm = layers.Normalization(axis=-1)", "+ norm.adapt(x_train)  # per-feature mean and variance",
                f"  keras.Input(shape={shape}),", "+ norm,"]
    if s.op == "drop_rows":
        return ["+ ok = np.isfinite(x).reshape(len(x), -1).all(1) & np.isfinite(y).reshape(len(y), -1).all(1)",
                "+ x, y = x[ok], y[ok]"]
    return []


def _optimizer_code(opt: Any, clip: Any = None) -> str:
    lr = opt.get_config().get("learning_rate")
    args = [f"learning_rate={lr:.3g}"] if isinstance(lr, (int, float)) else []
    if clip is not None:
        args.append(f"global_clipnorm={float(clip):g}")
    return f"keras.optimizers.{type(opt).__name__}({', '.join(args)})"


def _loss_code(loss: Any) -> str:
    import keras

    if isinstance(loss, keras.losses.Loss):
        fl = loss.get_config().get("from_logits")
        return f"keras.losses.{type(loss).__name__}({'' if fl is None else f'from_logits={fl}'})"
    return repr(loss) if isinstance(loss, str) else getattr(loss, "__name__", type(loss).__name__)


def _init_code(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        cls = str(value.get("class_name", ""))
        cfg = {k: v for k, v in (value.get("config") or {}).items() if k != "seed" and v is not None}
        if not cfg:
            return '"' + re.sub(r"(?<!^)(?=[A-Z])", "_", cls).lower() + '"'
        return f"keras.initializers.{cls}({', '.join(f'{k}={v!r}' for k, v in cfg.items())})"
    return repr(value)


def _ctor(layer: Any, **overrides: Any) -> str:
    """The layer as the user would write it (``layers.Dense(64, activation="relu", name="dense_1")``)."""
    cfg = {**layer.get_config(), **overrides}
    cls, args = type(layer).__name__, []
    for key in ("units", "filters"):
        if key in cfg:
            args.append(str(cfg[key]))
    ks = cfg.get("kernel_size")
    if ks is not None:
        ks = list(ks) if isinstance(ks, (list, tuple)) else [ks]
        args.append(str(ks[0]) if len(set(ks)) == 1 else str(tuple(ks)))
    if cls == "Dropout":
        args.append(f"{cfg.get('rate'):g}")
    act = cfg.get("activation")
    if cls == "Activation":
        args.append(f'"{act}"')
    elif isinstance(act, str) and act != "linear":
        args.append(f'activation="{act}"')
    for key in ("kernel_initializer", "bias_initializer", "embeddings_initializer", "recurrent_initializer"):
        default = {"kernel_initializer": "GlorotUniform", "bias_initializer": "Zeros", "recurrent_initializer":
                   "Orthogonal", "embeddings_initializer": "RandomUniform"}[key]
        v = cfg.get(key)
        if key in overrides or (isinstance(v, dict) and (v.get("class_name") != default or
                                                         {k for k, x in (v.get("config") or {}).items() if x is not None and k != "seed"})):
            args.append(f"{key}={_init_code(v)}")
    if cfg.get("use_bias") is False:
        args.append("use_bias=False")
    args.append(f'name="{layer.name}"')
    return f"layers.{cls}({', '.join(args)})"
