"""Small Keras 3 building blocks shared by the Keras cases (Keras-2-era initializers, dense stacks).
Case files import it by name (``import _keraskit as kk``)."""

from __future__ import annotations

import keras
from keras import layers


def initializer(how: str):
    """Keras initializer for a short name: ``he_uniform``, ``he_normal``, ``glorot_uniform``,
    ``uniform005`` (Keras 2's default ``RandomUniform(-0.05, 0.05)``), ``normal005`` (Keras 2's
    ``init='normal'``), ``normal1``, ``zeros``, ``const:<v>``, ``normal:<std>``."""
    if how in ("he_uniform", "he_normal", "glorot_uniform", "glorot_normal", "lecun_normal", "zeros"):
        return how
    if how == "uniform005":
        return keras.initializers.RandomUniform(-0.05, 0.05)
    if how == "normal005":
        return keras.initializers.RandomNormal(0.0, 0.05)
    if how == "normal1":
        return keras.initializers.RandomNormal(0.0, 1.0)
    if how.startswith("const:"):
        return keras.initializers.Constant(float(how.split(":", 1)[1]))
    if how.startswith("normal:"):
        return keras.initializers.RandomNormal(0.0, float(how.split(":", 1)[1]))
    raise ValueError(how)


def dense_stack(sizes: list[int], act: str, init: str = "he_uniform", out_act: str = "linear",
                out_init: str | None = None, name: str = "mlp") -> keras.Sequential:
    """``Sequential([Input(sizes[0]), Dense(sizes[1], act), ..., Dense(sizes[-1], out_act)])``."""
    n = len(sizes) - 1
    stack = [keras.Input((sizes[0],))]
    for i in range(n):
        last = i == n - 1
        stack.append(layers.Dense(sizes[i + 1], activation=out_act if last else act,
                                  kernel_initializer=initializer(out_init if (last and out_init) else init),
                                  name=f"dense_{i}" if not last else "out"))
    return keras.Sequential(stack, name=name)
