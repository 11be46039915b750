"""Where the objects a model file builds were created: the file's line on the call stack.

Both adapters locate layers this way (``keras.origins``, ``torch.origins``): while the model
file's code runs (its import and its ``build_model()``), the framework's base ``__init__`` is
wrapped and :meth:`CreationLines.note` takes the first frame of the call stack that lies in the
model file. A layer made by a helper in another module is located at the line of the file that
called the helper; a class defined in the file is located where it is instantiated, not at its
``super().__init__()``. Nothing is stored on the objects.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import sys
from types import FrameType
from typing import Any, Iterator, TypeVar

Lines = TypeVar("Lines", bound="CreationLines")


class CreationLines:
    """Lines of one model file where objects were created (filled while the wrap is on)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._file = os.path.realpath(path)
        self._same: dict[str, bool] = {}  # code file name -> is the model file
        self._made: dict[int, tuple[Any, int]] = {}  # id(obj) -> (obj, line); the object is kept alive

    def note(self, obj: Any, frame: FrameType | None) -> None:
        """Record the line of the model file on the call stack above ``frame`` that creates ``obj``."""
        if id(obj) in self._made:
            return
        while frame is not None:
            code = frame.f_code
            same = self._same.get(code.co_filename)
            if same is None:
                same = self._same[code.co_filename] = os.path.realpath(code.co_filename) == self._file
            # the __init__ of a class defined in the file: its caller is where the object is made
            if same and not (code.co_name == "__init__" and frame.f_locals.get("self") is obj):
                self._made[id(obj)] = (obj, frame.f_lineno)
                return
            frame = frame.f_back

    def line_of(self, obj: Any) -> int | None:
        """The line that created ``obj`` (that very object), if it was created in the file."""
        made = self._made.get(id(obj))
        return made[1] if made is not None and made[0] is obj else None


@contextlib.contextmanager
def noting(base: type, origins: Lines) -> Iterator[Lines]:
    """Wrap ``base.__init__`` for the body so that every instance made notes its line in ``origins``.

    The wrap shows the original's signature: a subclass without its own ``__init__`` inherits the
    wrap, and frameworks read that argspec (Keras builds a layer's config from it).
    """
    original = base.__dict__["__init__"]

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        origins.note(self, sys._getframe(1))

    __init__.__signature__ = inspect.signature(original)  # type: ignore[attr-defined]
    base.__init__ = __init__  # type: ignore[misc]
    try:
        yield origins
    finally:
        base.__init__ = original  # type: ignore[misc]
