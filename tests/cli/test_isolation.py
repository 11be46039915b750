"""Nothing a model file does ends netdoctor: one file or many, each runs in a worker process.

A file that exits, aborts, segfaults, hangs, writes to file descriptor 1, waits for input or is
killed becomes that file's one ``error:`` line (with the cause in words) and exit code 2;
stdout stays valid JSON. SIGINT and SIGTERM stop the workers, print the finished reports and
exit 130/143, and no worker outlives netdoctor.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from netdoctor.modelfile.workers import _exit_message

REPO = Path(__file__).resolve().parents[2]

TORCH_FILE = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        {forward}
        return self.fc(x)

def build_model():
    {build}
    return Net()

def sample_batch():
    return torch.randn(16, 4), torch.randint(0, 3, (16,))

def loss_fn(out, y):
    {loss}
    return nn.functional.cross_entropy(out, y)
"""


def torch_file(tmp_path: Path, name: str, *, build: str = "pass", forward: str = "pass", loss: str = "pass") -> str:
    path = tmp_path / name
    path.write_text(TORCH_FILE.format(build=build, forward=forward, loss=loss))
    return str(path)


def plain_file(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def netdoctor(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run([sys.executable, "-m", "netdoctor.cli", *args], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=timeout)


def one_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, proc.stderr
    data = json.loads(proc.stdout)
    assert len(data["errors"]) == 1 and not data["targets"]
    return lines[0]


# The fault at import time needs no framework (fast); the same faults inside build_model,
# forward and the loss run with real torch below.
AT_IMPORT = {
    "sys.exit(0)": ("import sys\nsys.exit(0)\n", "sys.exit(0)"),
    "sys.exit(3)": ("import sys\nsys.exit(3)\n", "sys.exit(3)"),
    "exit()": ("exit()\n", "sys.exit("),
    "os._exit(0)": ("import os\nos._exit(0)\n", "exit status 0"),
    "os._exit(5)": ("import os\nos._exit(5)\n", "exit status 5"),
    "abort": ("import os\nos.abort()\n", "SIGABRT"),
    "segfault": ("import ctypes\nctypes.string_at(0)\n", "SIGSEGV"),
    "sigkill": ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", "likely out of memory"),
    "GeneratorExit": ("raise GeneratorExit\n", "GeneratorExit"),
    "KeyboardInterrupt": ("raise KeyboardInterrupt\n", "KeyboardInterrupt"),
    "input()": ("name = input('your name? ')\n", "EOFError"),
}


@pytest.mark.parametrize("case", list(AT_IMPORT))
def test_a_fault_at_import_is_that_files_error(tmp_path: Path, case: str) -> None:
    body, cause = AT_IMPORT[case]
    path = plain_file(tmp_path, "model.py", body)
    line = one_error(netdoctor("check", path, "--format", "json", "--no-progress"))
    assert cause in line


IN_FUNCTIONS = {
    "sys.exit in build_model": ({"build": "import sys; sys.exit(0)"}, "sys.exit(0)"),
    "os._exit in forward": ({"forward": "import os; os._exit(0)"}, "exit status 0"),
    "sys.exit(3) in the loss": ({"loss": "import sys; sys.exit(3)"}, "sys.exit(3)"),
    "segfault in forward": ({"forward": "import ctypes; ctypes.string_at(0)"}, "SIGSEGV"),
}


@pytest.mark.parametrize("case", list(IN_FUNCTIONS))
def test_a_fault_in_model_code_is_that_files_error(tmp_path: Path, case: str) -> None:
    kwargs, cause = IN_FUNCTIONS[case]
    path = torch_file(tmp_path, "model.py", **kwargs)
    line = one_error(netdoctor("check", path, "--format", "json", "--no-progress"))
    assert cause in line


def test_writing_to_fd_1_does_not_corrupt_json(tmp_path: Path) -> None:
    path = torch_file(tmp_path, "model.py", build="import os; os.write(1, b'garbage')")
    proc = netdoctor("check", path, "--format", "json", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["targets"][0]["model_class"] == "Net"
    assert "garbage" in proc.stderr


def test_a_prompt_does_not_run_into_the_error_line(tmp_path: Path) -> None:
    path = plain_file(tmp_path, "model.py", "name = input('your name? ')\n")
    proc = netdoctor("check", path, "--no-progress")
    assert proc.returncode == 2
    error = next(ln for ln in proc.stderr.splitlines() if "error:" in ln)
    assert error.startswith("error:"), proc.stderr


def test_timeout_stops_one_file_and_the_others_report(tmp_path: Path) -> None:
    hang = plain_file(tmp_path, "hang.py", "import time\ntime.sleep(1e9)\n")
    busy = plain_file(tmp_path, "busy.py", "while True:\n    pass\n")
    ok = torch_file(tmp_path, "ok.py")
    t0 = time.monotonic()
    proc = netdoctor("check", hang, ok, busy, "--timeout", "3", "--format", "json", "--no-progress")
    assert time.monotonic() - t0 < 90
    assert proc.returncode == 2, proc.stderr
    data = json.loads(proc.stdout)
    assert [t["file"] for t in data["targets"]] == [ok]
    errors = {e["file"]: e["message"] for e in data["errors"]}
    assert set(errors) == {hang, busy}
    assert all("longer than 3 s" in m and "--timeout" in m for m in errors.values())
    assert len([ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]) == 2


def test_timeout_from_the_project_config(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.netdoctor]\ntimeout = 2\n")
    hang = plain_file(tmp_path, "hang.py", "import time\ntime.sleep(1e9)\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-m", "netdoctor.cli", "check", "hang.py", "--no-progress"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 2
    assert "longer than 2 s" in proc.stderr


def _start(tmp_path: Path, *files: str) -> tuple[subprocess.Popen[str], Path]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "netdoctor.cli", "check", *files, "--timeout", "0",
                             "--format", "json", "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=REPO, env=env)
    return proc, tmp_path / "hanging"


def _hang_file(tmp_path: Path) -> str:
    marker = tmp_path / "hanging"
    return plain_file(tmp_path, "hang.py", f"""
        import os, time
        import torch  # the same worker group as ok.py, after it
        with open({str(marker)!r}, "w") as f:
            f.write(str(os.getpid()))
        time.sleep(1e9)
    """)


def _wait_for(marker: Path, proc: subprocess.Popen[str], limit: float = 120) -> int:
    t0 = time.monotonic()
    while not marker.exists() or not marker.read_text():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < limit, "the hanging file never started"
        time.sleep(0.1)
    return int(marker.read_text())


def _gone(pid: int) -> bool:
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:  # a zombie child of someone else still answers kill(0): look at its state
            if Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z":
                return True
        except (OSError, IndexError):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_to_the_parent_stops_workers_and_keeps_finished_reports(tmp_path: Path, sig: int, code: int) -> None:
    ok = torch_file(tmp_path, "ok.py")
    hang = _hang_file(tmp_path)
    proc, marker = _start(tmp_path, ok, hang)  # one torch worker: ok.py, then hang.py
    worker = _wait_for(marker, proc)
    os.kill(proc.pid, sig)  # the parent only, as a CI runner does
    out, err = proc.communicate(timeout=60)  # returns only when no process holds the pipes
    assert proc.returncode == code, err
    assert _gone(worker), "the worker outlived netdoctor"
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and signal.Signals(sig).name in lines[0], err
    assert "Traceback" not in err and "BrokenPipeError" not in err and "EOFError" not in err
    assert "1 of 2 file(s) checked" in lines[0]
    data = json.loads(out)
    assert [t["file"] for t in data["targets"]] == [ok]


@pytest.mark.parametrize("exitcode, words", [
    (-signal.SIGKILL, "likely out of memory"), (-signal.SIGSEGV, "SIGSEGV"), (-signal.SIGTERM, "SIGTERM"),
    (0, "exit status 0"), (7, "exit status 7"),
])
def test_exit_messages_say_what_happened(exitcode: int, words: str) -> None:
    assert words in _exit_message("m.py", exitcode)
