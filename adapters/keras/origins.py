"""Where each Keras layer was created in the model file: the line a SARIF/GitHub report points at.

A functional or Sequential model names its layers ``dense``, ``dense_1``... unless the file says
``name=``, so the layer's name cannot be found in the source. Instead, while the model file's code
runs, :func:`layer_origins` wraps ``Layer.__init__`` and notes the line of the model file that
created each layer (see :mod:`netdoctor.adapters._origins`). Nothing is stored on the layers (the
model stays as it was) and the wrap is removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from netdoctor.adapters._origins import CreationLines, noting


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


def layer_origins(path: str | os.PathLike[str]) -> contextlib.AbstractContextManager[LayerOrigins]:
    """Note where the code run in the body creates Keras layers in the model file ``path``."""
    from keras import layers

    return noting(layers.Layer, LayerOrigins(path))
