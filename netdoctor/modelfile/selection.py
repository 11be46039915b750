"""Which files are model files: one selection for ``netdoctor check``, the pre-commit hook and ``pytest --netdoctor``.

A path the user names is checked as it is: a file without a model is an error. Files reached
another way are *selected*:

* a folder is walked for ``.py`` files (a Hugging Face ``save_pretrained`` folder is one model);
* a glob (``"models/*.py"``) is expanded;
* the files the pre-commit hook passes (``netdoctor check --skip-no-model``) and the files
  ``pytest --netdoctor`` visits are kept when they lie in the project's model files: inside an
  entry of ``[tool.netdoctor] paths``, else matching ``pytest-glob`` (default ``**/*model*.py``).

A selected file is dropped when it lies in a hidden folder, ``__pycache__``, a virtual
environment (``venv``, ``.venv``, a folder with ``pyvenv.cfg``, ``site-packages``), ``build/``,
``dist/``, ``node_modules`` or ``*.egg-info``, when it is a test module (``test_*.py``,
``*_test.py``, ``conftest.py``) or when ``[tool.netdoctor] exclude`` matches it or a folder
above it. A selected ``.py`` file that defines no model entry point (:func:`defines_model`, a
look at its source that runs nothing) is "no model: skipped", not an error; so is one whose
import finds none (:class:`~netdoctor.errors.NoModelError` from the loader).

Importing this module imports no framework (the pytest plugin imports it in every session).
"""

from __future__ import annotations

import ast
import fnmatch
import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from netdoctor.config_file import ProjectConfig
from netdoctor.errors import NetdoctorError

#: Folder names a selection never enters (hidden folders, ``.name``, are skipped too).
SKIPPED_DIRS = frozenset({"__pycache__", "venv", ".venv", "site-packages", "build", "dist", "node_modules"})
#: Test modules and pytest's conftest.py: never model files when selected.
TEST_FILES = ("test_*.py", "*_test.py", "conftest.py")
#: Class bases that never make a model (loader: a model class derives from nn.Module or keras.Model).
NOT_MODEL_BASES = frozenset({
    "object", "ABC", "Generic", "Protocol", "NamedTuple", "TypedDict", "Enum", "IntEnum", "StrEnum", "Flag",
    "IntFlag", "dict", "list", "set", "tuple", "str", "int", "float", "bytes", "Dataset", "IterableDataset",
    "Sampler", "PyDataset", "Sequence", "Callback", "LightningDataModule", "Layer",
})


@dataclass(frozen=True)
class Candidate:
    """A file to check.

    Attributes:
        spec: The path as it will be reported (``path.py`` or ``path.py::NAME``).
        explicit: Named by the user: "no model" is an error. ``False``: selected by a walk,
            a pattern or the hook: "no model" is "no model: skipped".
    """

    spec: str
    explicit: bool


@dataclass(frozen=True)
class Selection:
    """The outcome of :func:`select_files`.

    Attributes:
        check: The files to check, in order.
        no_model: Selected files whose source defines no model ("no model: skipped").
    """

    check: tuple[Candidate, ...] = ()
    no_model: tuple[str, ...] = ()


def select_files(paths: Sequence[str], project: ProjectConfig, *, from_pattern: bool = False) -> Selection:
    """The files ``netdoctor check`` checks.

    Args:
        paths: The command line's paths; empty: ``[tool.netdoctor] paths``.
        project: The project's configuration (``paths``, ``exclude``, ``pytest-glob``).
        from_pattern: The paths came from a pattern (the pre-commit hook, ``--skip-no-model``):
            each file is selected as a walk would, within the project's model files.

    Raises:
        NetdoctorError: A glob that matches nothing, a folder with no file to select, or
            ``::NAME`` after a folder.
    """
    selector = Selector(project)
    check: list[Candidate] = []
    no_model: list[str] = []
    seen: set[tuple[str, str]] = set()

    def add(spec: str, explicit: bool) -> None:
        base, sep, name = spec.partition("::")
        key = (os.path.abspath(base), name)
        if key in seen:
            return
        seen.add(key)
        if explicit or Path(base).suffix.lower() != ".py" or defines_model(base):
            check.append(Candidate(spec, explicit))
        else:
            no_model.append(spec)

    for given in paths or project.paths:
        base, sep, name = given.partition("::")
        if glob.has_magic(base):
            matches = sorted(glob.glob(base, recursive=True))
            if not matches:
                raise NetdoctorError(f"no files match {base!r}; check the pattern")
            for match in matches:
                if os.path.isdir(match) and not _is_model_folder(match):
                    for f in selector.walk(match):
                        add(f, False)
                elif selector.selectable(match, scoped=from_pattern):
                    add(match + sep + name, False)
        elif os.path.isdir(base) and not _is_model_folder(base):
            if name:
                raise NetdoctorError(f"{given}: ::{name} names an object in one file; give the file, e.g. "
                                     f"{os.path.join(base, 'model.py')}::{name}")
            found = list(selector.walk(base))
            if not found and not from_pattern:
                raise NetdoctorError(f"no Python files to check under {base} (hidden folders, __pycache__, virtual "
                                     "environments, build/, dist/, test modules and `exclude` are skipped)")
            for f in found:
                add(f, False)
        elif from_pattern:
            if selector.selectable(base, scoped=True):
                add(given, False)
        else:
            add(given, True)
    return Selection(tuple(check), tuple(no_model))


class Selector:
    """The selection rules of one project: folders to skip, ``exclude``, the project's model files.

    Args:
        project: ``[tool.netdoctor]`` of the project.
        test_files: Name patterns of test modules (pytest passes its ``python_files``).
        default_glob: The project's model files when ``paths`` is not configured (default:
            ``pytest-glob``), relative to the project root.
    """

    def __init__(self, project: ProjectConfig, test_files: Iterable[str] = TEST_FILES,
                 default_glob: str | None = None) -> None:
        self.project = project
        self.root = Path(project.root or Path.cwd()).resolve()
        self.test_files = tuple(test_files)
        self.default_glob = default_glob or project.pytest_glob

    def walk(self, folder: str) -> Iterator[str]:
        """``.py`` files under ``folder``, sorted, leaving out skipped folders, test modules and ``exclude``."""
        for here, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not self.skipped_dir(os.path.join(here, d))
                             and not self.excluded(os.path.join(here, d)))
            for name in sorted(files):
                path = os.path.normpath(os.path.join(here, name))
                if name.endswith(".py") and not self.is_test_file(name) and not self.excluded(path):
                    yield path

    def selectable(self, path: str, *, scoped: bool) -> bool:
        """Whether a file reached by a pattern is selected (``scoped``: also within the project's model files)."""
        if self.is_test_file(os.path.basename(path)) or self.excluded(path) or self.in_skipped_dir(path):
            return False
        return self.in_project_files(path) if scoped else True

    def in_project_files(self, path: str) -> bool:
        """Named by, matching or (a ``.py`` file) inside an entry of ``[tool.netdoctor] paths``; else matching
        the default glob, relative to the project root."""
        full = Path(os.path.abspath(path))
        if not self.project.paths:
            return glob_match(self.default_glob, self._relative(full))
        for entry in self.project.paths:
            where = os.path.abspath(entry.partition("::")[0])
            if glob.has_magic(entry):
                if glob_match(Path(where).as_posix(), full.as_posix()) or any(
                        glob_match(Path(where).as_posix(), parent.as_posix()) for parent in full.parents):
                    return True
            elif full == Path(where) or (Path(where) in full.parents and full.suffix == ".py"):
                return True  # a folder holds the .py files a walk of it selects
        return False

    def is_test_file(self, name: str) -> bool:
        return any(fnmatch.fnmatch(name, pattern) for pattern in self.test_files)

    def skipped_dir(self, folder: str) -> bool:
        """A hidden folder, ``__pycache__``, a virtual environment, ``build/``, ``dist/``..."""
        name = os.path.basename(os.path.normpath(folder))
        return (name.startswith(".") and name not in (".", "..")) or name in SKIPPED_DIRS or \
            name.endswith(".egg-info") or os.path.isfile(os.path.join(folder, "pyvenv.cfg"))

    def in_skipped_dir(self, path: str) -> bool:
        """Whether a folder between the project root (or the current directory) and ``path`` is skipped."""
        full = Path(os.path.abspath(path))
        top = self.root if self.root in full.parents else Path.cwd().resolve()
        if top not in full.parents:
            return False
        folder = full.parent
        while folder != top:
            if self.skipped_dir(str(folder)):
                return True
            folder = folder.parent
        return False

    def excluded(self, path: str) -> bool:
        """Whether ``exclude`` matches ``path`` or a folder above it (patterns relative to the project root)."""
        if not self.project.exclude:
            return False
        rel = self._relative(Path(os.path.abspath(path)))
        parts = rel.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        for pattern in self.project.exclude:
            pattern = pattern.strip().rstrip("/").removeprefix("./")
            if "/" not in pattern:
                if any(fnmatch.fnmatchcase(part, pattern) for part in parts):
                    return True
            elif any(glob_match(pattern, prefix) for prefix in prefixes):
                return True
        return False

    def _relative(self, full: Path) -> str:
        try:
            return full.relative_to(self.root).as_posix()
        except ValueError:
            return full.as_posix()


def _is_model_folder(folder: str) -> bool:
    """A Hugging Face ``save_pretrained`` folder: one model, not a folder to walk."""
    return os.path.isfile(os.path.join(folder, "config.json"))


# -- "has a model": a look at the source --------------------------------------------------


def defines_model(path: str | os.PathLike[str]) -> bool:
    """Whether a ``.py`` file may define what the loader takes for a model, without running it.

    True when, at module level (outside ``if __name__ == "__main__":``), the file defines a
    model function (``build_model``...) or a ``model`` object, or a class with a base that can
    be ``nn.Module``/``keras.Model`` (or a LightningModule); names it only imports do not
    count. A file that cannot be read or parsed is True: the loader then says what is wrong.
    The loader remains the judge of a True file: it raises
    :class:`~netdoctor.errors.NoModelError` when importing finds no model.
    """
    from netdoctor.modelfile.loader import MODEL_FUNCTIONS, MODEL_OBJECTS

    try:
        tree = ast.parse(Path(path).read_bytes())
    except (OSError, SyntaxError, ValueError):
        return True
    names = set(MODEL_FUNCTIONS) | set(MODEL_OBJECTS)
    for node in _module_level(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in MODEL_FUNCTIONS:
            return True
        if isinstance(node, ast.ClassDef) and any(_may_be_model_base(b) for b in node.bases):
            return True
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
        if any(isinstance(n, ast.Name) and n.id in names for t in targets for n in ast.walk(t)):
            return True
    return False


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run on import: into ``if``/``try``/``with`` blocks, not under ``__name__ == "__main__"``."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            if not _is_main_guard(node.test):
                yield from _module_level(node.body)
            yield from _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                yield from _module_level(block)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            yield from _module_level(node.body)


def _is_main_guard(test: ast.expr) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators))


def _may_be_model_base(base: ast.expr) -> bool:
    while isinstance(base, (ast.Subscript, ast.Call)):
        base = base.value if isinstance(base, ast.Subscript) else base.func
    name = base.attr if isinstance(base, ast.Attribute) else base.id if isinstance(base, ast.Name) else ""
    return bool(name) and name not in NOT_MODEL_BASES and not name.endswith(("Error", "Exception", "Warning"))


# -- globs ------------------------------------------------------------------------------------


def glob_match(pattern: str, path: str) -> bool:
    """Match a POSIX path against a glob where ``**`` spans folders and ``*`` does not.

    ``**/*model*.py`` matches ``model.py`` and ``a/b/my_model.py``; a pattern without ``/``
    matches the file name in any folder.
    """
    if "/" not in pattern:
        return fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], pattern)
    return re.fullmatch(_glob_regex(pattern), path) is not None


def _glob_regex(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)
