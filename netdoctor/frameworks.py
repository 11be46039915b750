"""Framework detection without importing any framework."""

from __future__ import annotations

from typing import Any

from netdoctor.errors import UnsupportedModelError


def detect_framework(model: Any) -> str:
    """Return ``"torch"`` or ``"keras"`` from the model's class hierarchy.

    Only ``type(model).__mro__`` is inspected, so neither torch nor tensorflow is imported.

    Raises:
        UnsupportedModelError: The object is neither a ``torch.nn.Module`` nor a Keras model.
    """
    for klass in type(model).__mro__:
        mod = getattr(klass, "__module__", "") or ""
        qual = f"{mod}.{klass.__name__}"
        if qual == "torch.nn.modules.module.Module":
            return "torch"
        if mod.startswith(("keras.", "keras")) and klass.__name__ in ("Model", "Layer", "Operation"):
            return "keras"
        if mod.startswith(("tf_keras", "tensorflow.python.keras")):
            raise UnsupportedModelError(
                f"{type(model).__name__} is a tf.keras (Keras 2) model; netdoctor supports Keras 3 "
                "(import keras, keras>=3) and PyTorch"
            )
    raise UnsupportedModelError(
        f"cannot check an object of type {type(model).__module__}.{type(model).__name__}: "
        "expected a torch.nn.Module or a Keras 3 model"
    )


def get_adapter(framework: str):
    """Import and return the adapter module for ``framework``."""
    if framework == "torch":
        from netdoctor.adapters import torch as adapter
    elif framework == "keras":
        from netdoctor.adapters import keras as adapter
    else:  # pragma: no cover - detect_framework only returns the two
        raise UnsupportedModelError(f"no adapter for framework {framework!r}")
    return adapter


def get_fixer(framework: str):
    """Import and return the ``Fixer`` class of ``framework`` (used by :mod:`netdoctor.verify`)."""
    if framework == "torch":
        from netdoctor.adapters.torch.fix.fixer import Fixer
    elif framework == "keras":
        from netdoctor.adapters.keras.fix.fixer import Fixer
    else:  # pragma: no cover - detect_framework only returns the two
        raise UnsupportedModelError(f"no fixer for framework {framework!r}")
    return Fixer
