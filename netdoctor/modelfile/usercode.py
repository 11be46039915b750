"""Run a model file's code: import it as a fresh module and call the functions it defines.

Whatever the user's code does wrong (a syntax error, a missing package, an exception, a
factory that needs arguments) becomes a :class:`~netdoctor.errors.ModelLoadError` with a
one-line message that names the file and line and says what to do next.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import re
import sys
import types
from pathlib import Path
from typing import Any, Callable

from netdoctor.errors import ModelLoadError, NetdoctorError

SAVED_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def import_model_file(path: Path) -> types.ModuleType:
    """Import ``path`` as a fresh module, with its directory on ``sys.path`` while importing.

    Raises:
        ModelLoadError: On a syntax error or any exception raised by the import.
    """
    path = path.resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
    stem = re.sub(r"\W", "_", path.stem)
    modname = f"_netdoctor_model_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(modname, path)
    if spec is None or spec.loader is None:  # pragma: no cover - only for odd suffixes
        raise ModelLoadError(f"cannot import {path.name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    try:
        with on_sys_path(path.parent):
            spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(modname, None)
        where = f" at line {exc.lineno}" if exc.lineno else ""
        fname = Path(exc.filename).name if exc.filename else path.name
        raise ModelLoadError(
            f"syntax error in {fname}{where}: {exc.msg}; fix the file and rerun"
        ) from exc
    except ModuleNotFoundError as exc:
        sys.modules.pop(modname, None)
        raise ModelLoadError(_missing_module_message(path.name, exc)) from exc
    except NetdoctorError:
        sys.modules.pop(modname, None)
        raise
    except BaseException as exc:
        sys.modules.pop(modname, None)
        if isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
            raise
        if isinstance(exc, SystemExit):
            code = exc.code if exc.code is not None else 0
            raise ModelLoadError(
                f"importing {path.name} called sys.exit({code!r}){line_of(exc, path)}; keep the script part of "
                f"{path.name} under `if __name__ == \"__main__\":` so that importing it only defines the model"
            ) from exc
        raise ModelLoadError(
            f"importing {path.name} failed{line_of(exc, path)}: {describe_exception(exc)}; "
            f"run `python {path.name}` to see the traceback, or add --debug"
        ) from exc
    module.__dict__["__netdoctor_dir__"] = str(path.parent)
    return module


class on_sys_path:  # noqa: N801 - used like a function: ``with on_sys_path(folder):``
    """Context manager: put a directory first on ``sys.path``, then restore ``sys.path``."""

    def __init__(self, directory: Path) -> None:
        self.directory = str(directory)

    def __enter__(self) -> None:
        self.before = sys.path.count(self.directory)
        sys.path.insert(0, self.directory)

    def __exit__(self, *exc: object) -> None:
        if sys.path.count(self.directory) > self.before:
            sys.path.remove(self.directory)  # the first occurrence: ours


def _missing_module_message(filename: str, exc: ModuleNotFoundError) -> str:
    mod = (exc.name or "").split(".")[0]
    hint = {
        "torch": "pip install torch (CPU: pip install torch --index-url https://download.pytorch.org/whl/cpu)",
        "keras": 'pip install "netdoctor-ml[keras]"',
        "tensorflow": 'pip install "netdoctor-ml[keras]"',
    }.get(mod, f"pip install {mod}" if mod else "install it")
    return f"{filename} imports {mod or 'a module'}, which is not installed; {hint}"


def describe_exception(exc: BaseException) -> str:
    """``"TypeError: first line of the message"`` (the type alone when there is no message)."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def line_of(exc: BaseException, path: Path) -> str:
    """``" at line N"`` for the deepest traceback frame inside ``path``, else ``""``."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve() == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" at line {line}" if line else ""


def require_zero_args(func: Callable[..., Any], label: str, path: Path) -> None:
    """Raise a :class:`~netdoctor.errors.ModelLoadError` when ``func`` (``label`` in ``path``) needs arguments."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # builtins without a signature: just try calling
        return
    required = [
        p.name for p in sig.parameters.values()
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    if required:
        raise ModelLoadError(
            f"{label}() in {path.name} needs arguments ({', '.join(required)}); netdoctor calls it "
            "with none: give them defaults"
        )


def scan_framework(path: str) -> str:
    """Guess a file's framework without importing it: ``"torch"``, ``"keras"``, ``"mixed"`` or ``"unknown"``.

    Saved models (``.keras``/``.h5``) are Keras, Hugging Face model folders torch. Python files are scanned for imports of
    torch (or torch-based libraries) and keras/tensorflow.
    """
    p = Path(path.partition("::")[0])
    if p.suffix.lower() in SAVED_MODEL_SUFFIXES:
        return "keras"
    if p.is_dir():
        return "torch" if (p / "config.json").is_file() else "unknown"  # a Hugging Face folder
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown"
    mods = set(re.findall(r"^\s*(?:from|import)\s+([A-Za-z_][\w]*)", text, flags=re.MULTILINE))
    torchy = bool(mods & {"torch", "torchvision", "timm", "lightning", "pytorch_lightning", "transformers"})
    kerasy = bool(mods & {"keras", "tensorflow", "tf_keras", "keras_hub", "keras_nlp", "keras_cv"})
    if torchy and kerasy:
        return "mixed"
    return "torch" if torchy else "keras" if kerasy else "unknown"
