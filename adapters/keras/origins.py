"""Where each Keras layer was created in the model file: the line a SARIF/GitHub report points at.

A functional or Sequential model names its layers ``dense``, ``dense_1``... unless the file says
``name=``, so the layer's name cannot be found in the source. Instead, while the model file's code
runs, :func:`layer_origins` wraps ``Layer.__init__`` and notes the line of the model file that
created each layer (see :mod:`netdoctor.adapters._origins`). Nothing is stored on the layers (the
model stays as it was) and the wrap is removed afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
from typing import Any, Iterator

from netdoctor.adapters._origins import CreationLines


class LayerOrigins(CreationLines):
    """Lines of one model file where Keras layers were created (filled by :func:`layer_origins`)."""

    def lines(self, model: Any) -> dict[str, int]:
        """``{qualified layer name: line}`` for the layers of ``model`` created in the file.

        Names are qualified as the Keras adapter reports them: ``encoder/dense`` for a layer of
        a nested model, the plain name at the top level.
        """
        out: dict[str, int] = {}
        seen: set[int] = set()

        def walk(layer: Any, prefix: str) -> None:
            for child in getattr(layer, "_layers", None) or ():  # the sublayers, as the adapter walks them
                if id(child) in seen:
                    continue
                seen.add(id(child))
                name = f"{prefix}/{child.name}" if prefix else str(child.name)
                line = self.line_of(child)
                if line is not None:
                    out.setdefault(name, line)
                walk(child, name)

        walk(model, "")
        return out


@contextlib.contextmanager
def layer_origins(path: str | os.PathLike[str]) -> Iterator[LayerOrigins]:
    """Note where the code run in the body creates Keras layers in the model file ``path``."""
    from keras import layers

    origins = LayerOrigins(path)
    original = layers.Layer.__dict__["__init__"]

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        origins.note(self, sys._getframe(1))

    # Keras reads the argspec of __init__ to build a layer's config (Operation.__new__); a layer
    # class without its own __init__ inherits this one, so it must show the original's signature
    # (getfullargspec ignores __wrapped__ but honours __signature__).
    __init__.__signature__ = inspect.signature(original)  # type: ignore[attr-defined]
    layers.Layer.__init__ = __init__
    try:
        yield origins
    finally:
        layers.Layer.__init__ = original

