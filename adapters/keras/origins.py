"""Where each Keras layer was created in the model file: the line a SARIF/GitHub report points at.

A functional or Sequential model names its layers ``dense``, ``dense_1``... unless the file says
``name=``, so the layer's name cannot be found in the source. Instead, while the model file's code
runs (its import and its ``build_model()``), :func:`layer_origins` notes the line of the model file
that created each layer: ``Layer.__init__`` is wrapped for the duration, and the first frame of
the call stack in the model file is taken. A layer made by a helper in another module is
located at the line of the file that called the helper; a layer class defined in the file is
located where it is instantiated, not at its ``super().__init__()``.

Nothing is stored on the layers (the model stays as it was) and the wrap is removed afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
from types import FrameType
from typing import Any, Iterator


class LayerOrigins:
    """Lines of one model file where layers were created (filled by :func:`layer_origins`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._file = os.path.realpath(path)
        self._same: dict[str, bool] = {}  # code file name -> is the model file
        self._made: dict[int, tuple[Any, int]] = {}  # id(layer) -> (layer, line); the layer is kept alive

    def note(self, layer: Any, frame: FrameType | None) -> None:
        """Record the line of the model file on the call stack above ``frame`` that creates ``layer``."""
        if id(layer) in self._made:
            return
        while frame is not None:
            code = frame.f_code
            same = self._same.get(code.co_filename)
            if same is None:
                same = self._same[code.co_filename] = os.path.realpath(code.co_filename) == self._file
            # the __init__ of a layer class defined in the file: its caller is where the layer is made
            if same and not (code.co_name == "__init__" and frame.f_locals.get("self") is layer):
                self._made[id(layer)] = (layer, frame.f_lineno)
                return
            frame = frame.f_back

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
                made = self._made.get(id(child))
                if made is not None and made[0] is child:
                    out.setdefault(name, made[1])
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

