"""The built wheel holds every package of the source tree.

An editable install finds subpackages on disk, so a package missing from
``[tool.setuptools] packages`` in pyproject.toml only breaks the built wheel; this test
builds one (from a copy of the sources, so the checkout stays clean) and compares.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Source folder -> the package it is installed as.
SOURCES = {"netdoctor": "netdoctor", "adapters": "netdoctor/adapters"}


def source_packages() -> set[str]:
    """Every folder with an ``__init__.py`` under the shipped folders, as its installed path."""
    out = set()
    for folder, installed in SOURCES.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            rel = init.parent.relative_to(ROOT / folder).as_posix()
            out.add(installed if rel == "." else f"{installed}/{rel}")
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for folder in SOURCES:
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (whl,) = out.glob("netdoctor_ml-*.whl")
    return zipfile.ZipFile(whl)


def test_every_package_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    shipped = {name.rsplit("/", 1)[0] for name in wheel.namelist() if name.endswith("/__init__.py")}
    expected = source_packages()
    assert {"netdoctor", "netdoctor/adapters", "netdoctor/adapters/torch", "netdoctor/adapters/keras"} <= expected
    missing = sorted(expected - shipped)
    assert not missing, f"packages missing from the wheel (add them to [tool.setuptools] packages): {missing}"
    assert not [n for n in wheel.namelist() if n.startswith("adapters/")], "adapters must ship as netdoctor.adapters"


def test_every_module_is_in_the_wheel(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for folder, installed in SOURCES.items():
        for path in (ROOT / folder).rglob("*.py"):
            if "__pycache__" in path.parts or not (path.parent / "__init__.py").exists():
                continue
            rel = f"{installed}/{path.relative_to(ROOT / folder).as_posix()}"
            assert rel in names, f"{rel} is not in the wheel"


def test_wheel_entry_points(wheel: zipfile.ZipFile) -> None:
    (ep,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(ep).decode()
    assert "netdoctor = netdoctor.cli:main" in text
    assert "[pytest11]" in text and "netdoctor = netdoctor.pytest_plugin" in text


def test_the_wheel_is_marked_typed(wheel: zipfile.ZipFile) -> None:
    assert "netdoctor/py.typed" in wheel.namelist()  # PEP 561: without it mypy ignores netdoctor's annotations
