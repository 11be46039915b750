"""Where each torch module was created in the model file: the line a SARIF/GitHub report points at.

A layer's name (``net.3``, ``experts.2.0``) is an attribute path, often not in the source at all
(the elements of an ``nn.Sequential`` or a ``ModuleList`` built in a loop). While the model file's
code runs, :func:`layer_origins` wraps ``nn.Module.__init__`` and notes the line of the model file
that created each module (see :mod:`netdoctor.adapters._origins`): ``nn.Linear(784, 512)`` inside
an ``nn.Sequential(...)`` call gets its own line. Modules copied rather than constructed (the
layers ``nn.TransformerEncoder`` deep-copies) have no line; a report then uses their nearest
located parent. Nothing is stored on the modules and the wrap is removed afterwards.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from torch import nn

from netdoctor.adapters._origins import CreationLines, noting


class ModuleOrigins(CreationLines):
    """Lines of one model file where torch modules were created (filled by :func:`layer_origins`)."""

    def lines(self, model: Any) -> dict[str, int]:
        """``{module name: line}`` for the modules of ``model`` created in the file, named as the
        torch adapter reports them (``named_modules()``: ``encoder.layers.0``)."""
        out: dict[str, int] = {}
        if not isinstance(model, nn.Module):
            return out
        for name, module in model.named_modules():
            line = self.line_of(module)
            if name and line is not None:
                out[name] = line
        return out


def layer_origins(path: str | os.PathLike[str]) -> contextlib.AbstractContextManager[ModuleOrigins]:
    """Note where the code run in the body creates torch modules in the model file ``path``."""
    return noting(nn.Module, ModuleOrigins(path))
