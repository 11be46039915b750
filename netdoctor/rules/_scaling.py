"""Input-scaling code snippets shared by the data and activation rules."""

from __future__ import annotations

from typing import TYPE_CHECKING

from netdoctor.snapshot import KIND_CONV, LayerRecord, TensorStats

if TYPE_CHECKING:
    from netdoctor.rules.spec import RuleContext


def standardize_snippet(ctx: "RuleContext", rec: LayerRecord, st: TensorStats, pixels: bool = False) -> str | None:
    """Input scaling code: divide pixels by their maximum, or standardize with training statistics."""
    if pixels:
        div = "255.0" if st.max > 16 else f"{st.max:g}"
        return ctx.snippet(
            torch=f"x = x.float() / {div}  # same scaling at training and inference time",
            keras=("inputs = keras.Input(shape=x.shape[1:])\n"
                   f"h = layers.Rescaling(1.0 / {div})(inputs)  # in-model, so inference gets it too"),
        )
    dims = "(0, 2, 3)" if rec.kind == KIND_CONV and len(st.shape) == 4 else "0"
    return ctx.snippet(
        torch=(f"mean = x_train.mean(dim={dims}, keepdim=True)\n"
               f"std = x_train.std(dim={dims}, keepdim=True).clamp_min(1e-8)\n"
               "x = (x - mean) / std  # reuse the training mean/std at inference"),
        keras=("norm = layers.Normalization(axis=-1)\n"
               "norm.adapt(x_train)  # learns per-feature mean and variance\n"
               "inputs = keras.Input(shape=x_train.shape[1:])\n"
               "h = norm(inputs)  # then the first Dense/Conv layer"),
    )
