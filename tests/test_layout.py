"""The test tree's import rules, so that every folder runs alone and in any combination.

Test folders are not packages: pytest puts each test file's folder on ``sys.path`` and
imports the file under its bare name. So helpers shared by tests live in a module with a
name unique in ``tests/`` (``tests/torch/torch_helpers.py``, ``tests/rules/_factory.py``),
and ``conftest.py`` holds fixtures only: ``from conftest import ...`` gets whichever
``conftest`` pytest loaded last, which depends on the folders given on the command line.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts and "fixtures" not in p.parts)


def test_no_test_imports_a_conftest() -> None:
    bad = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            if any(n.split(".")[-1] == "conftest" for n in names):
                bad.append(f"{path.relative_to(TESTS)}:{node.lineno}")
    assert not bad, f"import helpers from a uniquely named module, not from conftest: {bad}"


def test_module_names_are_unique() -> None:
    seen: dict[str, list[str]] = defaultdict(list)
    for path in _modules():
        if path.name not in ("conftest.py", "__init__.py"):
            seen[path.stem].append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in seen.items() if len(paths) > 1}
    assert not clashes, f"test and helper modules need names unique in tests/: {clashes}"


def test_test_folders_are_not_packages() -> None:
    packages = [str(p.relative_to(TESTS)) for p in TESTS.rglob("__init__.py") if "fixtures" not in p.parts]
    assert not packages, f"tests/ folders are plain folders (see this module's docstring): {packages}"
