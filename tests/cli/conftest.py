"""Helpers for command-line tests: run ``netdoctor`` in-process or as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def fixture(name: str) -> str:
    """Absolute path of a model file under tests/cli/fixtures/."""
    return str(FIXTURES / name)


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    """Run ``netdoctor ARGS`` in this process (from an empty working directory)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)

    def run(*args: str) -> CliResult:
        from netdoctor.cli import main

        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def netdoctor_subprocess():
    """Run ``python -m netdoctor.cli ARGS`` as a subprocess; see :func:`run_netdoctor`."""
    return run_netdoctor


def run_netdoctor(*args: str, cwd: str | Path | None = None, env: dict[str, str] | None = None,
                  timeout: float = 240) -> CliResult:
    """Run ``python -m netdoctor.cli ARGS`` as a subprocess (stdout is not a TTY)."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    full_env.pop("FORCE_COLOR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "netdoctor.cli", *args], capture_output=True, text=True,
        cwd=cwd or REPO, env=full_env, timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)
