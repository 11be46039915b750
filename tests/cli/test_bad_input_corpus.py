"""The bad-input corpus of the command line: every case exits 2 with exactly one ``error:`` line.

Each case is run as users run netdoctor (a subprocess, stdout not a terminal) with
``--format json`` where the command takes it, and must end with:

* exit code 2 (or the code the case names),
* exactly one line starting with ``error:`` on stderr, and no traceback,
* stdout empty (nothing was checked) or valid JSON (a report listing the failed files).

Cases are data: ``(args, files, needle)``. ``files`` are written into a fresh folder that is the
working directory; ``{asset}`` placeholders name shared assets built once (weights, data files,
saved Keras models). ``needle`` must appear in the error line: the message says what happened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

HEALTHY = """
import torch
from torch import nn

def build_model():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))

def sample_batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(32, 4, generator=g), torch.randint(0, 3, (32,), generator=g)

loss_fn = nn.CrossEntropyLoss()
"""

NO_DATA = """
import torch
from torch import nn

def build_model():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
"""


def model(body: str, *, data: str = "", loss: str = "loss_fn = nn.CrossEntropyLoss()") -> str:
    """A torch model file whose ``build_model`` body is ``body``."""
    return ("import torch\nfrom torch import nn\n\ndef build_model():\n"
            + "".join(f"    {line}\n" for line in body.strip().splitlines())
            + (data or "\ndef sample_batch():\n    return torch.randn(8, 4), torch.randint(0, 3, (8,))\n")
            + "\n" + loss + "\n")


def with_data(body: str) -> str:
    """A healthy model with a ``sample_batch`` body of ``body``."""
    return model("return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))",
                 data="\ndef sample_batch():\n" + "".join(f"    {ln}\n" for ln in body.strip().splitlines()))


def with_loss(body: str) -> str:
    """A healthy model whose ``loss_fn(out, y)`` body is ``body``."""
    return model("return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))",
                 loss="def loss_fn(out, y):\n" + "".join(f"    {ln}\n" for ln in body.strip().splitlines()))


def pyproject(table: str) -> dict[str, str]:
    return {"pyproject.toml": "[tool.netdoctor]\n" + table + "\n", "m.py": HEALTHY}


# -- the corpus ---------------------------------------------------------------------------
# id: (args, files, needle[, exit code])
CASES: dict[str, tuple] = {
    # usage: flags and values
    "unknown command": (["chek"], {}, "No such command"),
    "unknown option": (["check", "m.py", "--bogus"], {"m.py": HEALTHY}, "No such option"),
    "max-samples not a number": (["check", "m.py", "--max-samples", "abc"], {"m.py": HEALTHY}, "--max-samples"),
    "max-samples zero": (["check", "m.py", "--max-samples", "0"], {"m.py": HEALTHY}, "--max-samples"),
    "max-samples negative": (["check", "m.py", "--max-samples", "-5"], {"m.py": HEALTHY}, "--max-samples"),
    "seed not a number": (["check", "m.py", "--seed", "x"], {"m.py": HEALTHY}, "--seed"),
    "seed negative": (["check", "m.py", "--seed", "-1"], {"m.py": HEALTHY}, "--seed"),
    "seed 2**70": (["check", "m.py", "--seed", str(2**70)], {"m.py": HEALTHY}, "--seed"),
    "timeout negative": (["check", "m.py", "--timeout", "-1"], {"m.py": HEALTHY}, "--timeout"),
    "timeout not a number": (["check", "m.py", "--timeout", "soon"], {"m.py": HEALTHY}, "--timeout"),
    "unknown format": (["check", "m.py", "--format", "yaml"], {"m.py": HEALTHY}, "unknown format 'yaml'"),
    "format twice": (["check", "m.py", "--format", "json", "--format", "json"], {"m.py": HEALTHY}, "once"),
    "outputs do not pair": (["check", "m.py", "--format", "json", "--format", "sarif"], {"m.py": HEALTHY},
                            "--output"),
    "two formats to stdout": (["check", "m.py", "--format", "json", "--format", "sarif", "--output", "-",
                               "--output", "-"], {"m.py": HEALTHY}, "stdout"),
    "html twice": (["check", "m.py", "--format", "html", "--output", "a.html", "--html", "b.html"],
                   {"m.py": HEALTHY}, "--html"),
    "bad fail-on": (["check", "m.py", "--fail-on", "sometimes"], {"m.py": HEALTHY}, "--fail-on"),
    "input-shape letters": (["check", "m.py", "--input-shape", "a,b"], {"m.py": NO_DATA}, "--input-shape"),
    "input-shape negative": (["check", "m.py", "--input-shape", "-4"], {"m.py": NO_DATA}, "--input-shape"),
    "input-shape zero": (["check", "m.py", "--input-shape", "0"], {"m.py": NO_DATA}, "--input-shape"),
    "input-shape empty": (["check", "m.py", "--input-shape", ""], {"m.py": NO_DATA}, "--input-shape"),
    "missing --config": (["check", "m.py", "--config", "nope.toml"], {"m.py": HEALTHY}, "no such config file"),
    "config is a folder": (["check", "m.py", "--config", "sub"], {"m.py": HEALTHY, "sub/x": ""},
                           "no such config file"),
    "missing baseline": (["check", "m.py", "--baseline", "b.json"], {"m.py": HEALTHY}, "no such baseline file"),
    "write-baseline to a folder": (["check", "m.py", "--write-baseline", "sub"], {"m.py": HEALTHY, "sub/x": ""},
                                   "is a directory"),
    "baseline not JSON": (["check", "m.py", "--baseline", "b.json"], {"m.py": HEALTHY, "b.json": "{nope"},
                          "b.json"),
    "baseline wrong shape": (["check", "m.py", "--baseline", "b.json"], {"m.py": HEALTHY, "b.json": "[1, 2]"},
                             "b.json"),
    "weights with two files": (["check", "a.py", "b.py", "--weights", "w.pt"], {"a.py": HEALTHY, "b.py": HEALTHY},
                               "--weights needs exactly one"),
    "no files and no paths": (["check"], {}, "no model files given"),
    "glob matches nothing": (["check", "models/*.py"], {}, "no files match"),
    "unknown select": (["check", "m.py", "--select", "ND999"], {"m.py": HEALTHY}, "ND999"),
    "unknown ignore": (["check", "m.py", "--ignore", "dead-unitz"], {"m.py": HEALTHY}, "dead-unitz"),
    "explain unknown rule": (["explain", "ND999"], {}, "unknown rule 'ND999'"),
    "rules bad format": (["rules", "--format", "xml"], {}, "xml"),
    "diff missing argument": (["diff", "old.json"], {}, "Missing argument"),
    "diff missing files": (["diff", "old.json", "new.json"], {}, "old.json"),
    "diff not JSON": (["diff", "old.json", "new.json"], {"old.json": "nope", "new.json": "{}"}, "old.json"),
    "report missing log": (["report", "run.jsonl"], {}, "run.jsonl"),
    "report missing argument": (["report"], {}, "Missing argument"),
    "no command": ([], {}, "no command given"),

    # [tool.netdoctor]
    "pyproject binary": (["check", "m.py"], {"pyproject.toml": b"\x00\x01\xffbinary", "m.py": HEALTHY},
                         "not a text file"),
    "pyproject invalid TOML": (["check", "m.py"], {"pyproject.toml": "[tool.netdoctor\nselect=", "m.py": HEALTHY},
                               "invalid TOML"),
    "config unknown key": (["check", "m.py"], pyproject('selcet = ["ND1"]'), "did you mean"),
    "config bad fail-on": (["check", "m.py"], pyproject('fail-on = "sometimes"'), "fail-on"),
    "config unknown rule": (["check", "m.py"], pyproject('select = ["ND999"]'), "ND999"),
    "config bad severity": (["check", "m.py"], pyproject('[tool.netdoctor.severity]\nND301 = "fatal"'), "fatal"),
    "config severity of unknown rule": (["check", "m.py"], pyproject('[tool.netdoctor.severity]\nND999 = "error"'),
                                        "ND999"),
    "config unknown option": (["check", "m.py"], pyproject('[tool.netdoctor.options.ND401]\nmax_dead = 0.3'),
                              "max_dead"),
    "config option of unknown rule": (["check", "m.py"], pyproject('[tool.netdoctor.options.ND999]\nx = 1'),
                                      "ND999"),
    "config paths not a list": (["check"], pyproject("paths = 3"), "paths"),
    "config data not a string": (["check", "m.py"], pyproject("data = 3"), "data"),
    "config input-shape bad": (["check", "m.py"], pyproject('input-shape = "big"'), "input-shape"),
    "config input-shape negative": (["check", "m.py"], pyproject("input-shape = [-3]"), "input-shape"),
    "config timeout bad": (["check", "m.py"], pyproject('timeout = "long"'), "timeout"),
    "config timeout negative": (["check", "m.py"], pyproject("timeout = -1"), "timeout"),
    "config per-layer-ignores bad": (["check", "m.py"], pyproject('per-layer-ignores = ["x"]'), "per-layer-ignores"),
    "config pytest-glob empty": (["check", "m.py"], pyproject('pytest-glob = ""'), "pytest-glob"),
    "config netdoctor not a table": (["check", "m.py"], {"pyproject.toml": "[tool]\nnetdoctor = 3\n",
                                                        "m.py": HEALTHY}, "netdoctor"),

    # model files
    "missing file": (["check", "absent.py"], {}, "no such file: absent.py"),
    "file name too long": (["check", "m" * 300 + ".py"], {}, "File name too long"),
    "::NAME very long": (["check", "m.py::" + "n" * 5000], {"m.py": HEALTHY}, "has no"),
    "syntax error": (["check", "m.py"], {"m.py": "def build_model(:\n"}, "syntax error in m.py"),
    "not UTF-8 source": (["check", "m.py"], {"m.py": b"x = '\xff\xfe'\n"}, "m.py"),
    "empty file": (["check", "m.py"], {"m.py": ""}, "no model found in m.py"),
    "no model": (["check", "m.py"], {"m.py": "x = 1\n"}, "no model found in m.py"),
    "missing package": (["check", "m.py"], {"m.py": "import not_a_real_package_xyz\n"}, "not_a_real_package_xyz"),
    "exception at import": (["check", "m.py"], {"m.py": "raise ValueError('broken on purpose')\n"},
                            "broken on purpose"),
    "NameError at import": (["check", "m.py"], {"m.py": "undefined_name\n"}, "NameError"),
    "sys.exit at import": (["check", "m.py"], {"m.py": "import sys\nsys.exit(0)\n"}, "sys.exit(0)"),
    "sys.exit(1) at import": (["check", "m.py"], {"m.py": "import sys\nsys.exit(1)\n"}, "sys.exit(1)"),
    "sys.exit('msg') at import": (["check", "m.py"], {"m.py": "import sys\nsys.exit('bye')\n"}, "sys.exit('bye')"),
    "os._exit at import": (["check", "m.py"], {"m.py": "import os\nos._exit(0)\n"}, "exit status 0"),
    "os._exit(9) at import": (["check", "m.py"], {"m.py": "import os\nos._exit(9)\n"}, "exit status 9"),
    "abort at import": (["check", "m.py"], {"m.py": "import os\nos.abort()\n"}, "SIGABRT"),
    "segfault at import": (["check", "m.py"], {"m.py": "import ctypes\nctypes.string_at(0)\n"}, "SIGSEGV"),
    "SIGKILL at import": (["check", "m.py"], {"m.py": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n"},
                          "likely out of memory"),
    "SIGTERM at import": (["check", "m.py"], {"m.py": "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\n"},
                          "SIGTERM"),
    "KeyboardInterrupt at import": (["check", "m.py"], {"m.py": "raise KeyboardInterrupt\n"}, "KeyboardInterrupt"),
    "GeneratorExit at import": (["check", "m.py"], {"m.py": "raise GeneratorExit\n"}, "GeneratorExit"),
    "input() at import": (["check", "m.py"], {"m.py": "name = input('name? ')\n"}, "EOFError"),
    "RecursionError at import": (["check", "m.py"], {"m.py": "def f(): return f()\nf()\n"}, "RecursionError"),
    "MemoryError at import": (["check", "m.py"], {"m.py": "raise MemoryError()\n"}, "MemoryError"),
    "hang with timeout": (["check", "m.py", "--timeout", "2"], {"m.py": "import time\ntime.sleep(1e9)\n"},
                          "longer than 2 s"),
    "busy loop with timeout": (["check", "m.py", "--timeout", "2"], {"m.py": "while True:\n    pass\n"},
                               "longer than 2 s"),
    "unknown ::NAME": (["check", "m.py::nope"], {"m.py": HEALTHY}, "no 'nope'"),
    "::NAME not a model": (["check", "m.py::sample_batch"], {"m.py": HEALTHY}, "m.py"),
    "model is an int": (["check", "m.py"], {"m.py": "model = 3\n"}, "int"),
    "model is a dict": (["check", "m.py"], {"m.py": "def build_model():\n    return {}\n"}, "dict"),
    "model is None": (["check", "m.py"], {"m.py": "def build_model():\n    return None\n"}, "None"),
    "build_model needs arguments": (["check", "m.py"], {"m.py": "def build_model(width):\n    return None\n"},
                                    "width"),
    "build_model raises": (["check", "m.py"], {"m.py": model("raise RuntimeError('no model today')")},
                           "no model today"),
    "build_model sys.exit": (["check", "m.py"], {"m.py": model("import sys; sys.exit(2)")}, "sys.exit(2)"),
    "build_model os._exit": (["check", "m.py"], {"m.py": model("import os; os._exit(0)")}, "exit status 0"),
    "build_model segfault": (["check", "m.py"], {"m.py": model("import ctypes; ctypes.string_at(0)")}, "SIGSEGV"),
    "build_model KeyboardInterrupt": (["check", "m.py"], {"m.py": model("raise KeyboardInterrupt")},
                                      "KeyboardInterrupt"),
    "build_model GeneratorExit": (["check", "m.py"], {"m.py": model("raise GeneratorExit")}, "GeneratorExit"),
    "sample_batch raises": (["check", "m.py"], {"m.py": with_data("raise OSError('disk gone')")}, "disk gone"),
    "sample_batch sys.exit": (["check", "m.py"], {"m.py": with_data("import sys; sys.exit(4)")}, "sys.exit(4)"),
    "sample_batch returns None": (["check", "m.py"], {"m.py": with_data("return None")}, "sample_batch"),
    "sample_batch returns a string": (["check", "m.py"], {"m.py": with_data("return 'abc'")}, "str"),
    "sample_batch wrong width": (["check", "m.py"], {"m.py": with_data("return torch.randn(8, 5)")}, "5"),
    "sample_batch empty": (["check", "m.py"], {"m.py": with_data("return torch.randn(0, 4), torch.zeros(0).long()")},
                           "empty"),
    "sample_batch meta": (["check", "m.py"], {"m.py": with_data("return torch.randn(8, 4, device='meta')")}, "meta"),
    "sample_batch complex": (["check", "m.py"], {"m.py": with_data("return torch.randn(8, 4, dtype=torch.cfloat)")},
                             "complex"),
    "sample_batch strings": (["check", "m.py"], {"m.py": with_data("import numpy as np\nreturn np.array([['a'] * 4] * 8)")},
                             "dtype"),
    "sample_batch needs arguments": (["check", "m.py"], {"m.py": model(
        "return nn.Linear(4, 3)", data="\ndef sample_batch(n):\n    return torch.randn(n, 4)\n")}, "sample_batch"),
    "forward raises": (["check", "m.py"], {"m.py": """
import torch
from torch import nn
class Net(nn.Module):
    def forward(self, x):
        raise RuntimeError('forward broken')
def build_model():
    return Net()
def sample_batch():
    return torch.randn(8, 4)
"""}, "forward broken"),
    "loss raises": (["check", "m.py"], {"m.py": with_loss("raise ValueError('loss broken')")}, "loss broken"),
    "loss returns None": (["check", "m.py"], {"m.py": with_loss("return None")}, "loss"),
    "loss returns a vector": (["check", "m.py"], {"m.py": with_loss("return (out - 0).sum(dim=1)")}, "loss"),
    "loss returns a string": (["check", "m.py"], {"m.py": with_loss("return 'low'")}, "loss"),
    "loss sys.exit": (["check", "m.py"], {"m.py": with_loss("import sys; sys.exit(3)")}, "sys.exit(3)"),
    "loss needs one argument": (["check", "m.py"], {"m.py": model(
        "return nn.Linear(4, 3)", loss="def loss_fn(out):\n    return out.sum()\n")}, "loss"),
    "tf.keras-like unsupported object": (["check", "m.py"], {"m.py": "class Model:\n    pass\nmodel = Model()\n"},
                                         "expected a torch.nn.Module or a Keras 3 model"),
    "no inputs and no shape": (["check", "m.py"], {"m.py": NO_DATA}, "no inputs"),
    "input-shape does not fit": (["check", "m.py", "--input-shape", "7"], {"m.py": NO_DATA}, "7"),

    # --data files
    "data missing": (["check", "m.py", "--data", "absent.npz"], {"m.py": HEALTHY}, "no such data file"),
    "data file name too long": (["check", "m.py", "--data", "d" * 300 + ".npz"], {"m.py": HEALTHY},
                                "File name too long"),
    "data garbage": (["check", "m.py", "--data", "d.npz"], {"m.py": HEALTHY, "d.npz": b"\x00garbage"}, "cannot read"),
    "data empty file": (["check", "m.py", "--data", "d.npz"], {"m.py": HEALTHY, "d.npz": b""}, "d.npz"),
    "data without x": (["check", "m.py", "--data", "{noxy}"], {"m.py": HEALTHY}, "has no array 'x'"),
    "data corrupt member": (["check", "m.py", "--data", "{corrupt_member}"], {"m.py": HEALTHY}, "corrupt or truncated"),
    "data 0-d y": (["check", "m.py", "--data", "{scalar_y}"], {"m.py": HEALTHY}, "a single number"),
    "data object array": (["check", "m.py", "--data", "{object_x}"], {"m.py": HEALTHY}, "object array"),
    "data empty x": (["check", "m.py", "--data", "{empty_x}"], {"m.py": HEALTHY}, "empty"),
    "data wrong width": (["check", "m.py", "--data", "{wide_x}"], {"m.py": HEALTHY}, "9"),
    "data complex x": (["check", "m.py", "--data", "{complex_x}"], {"m.py": HEALTHY}, "complex"),
    "data string x": (["check", "m.py", "--data", "{string_x}"], {"m.py": HEALTHY}, "dtype"),

    # --weights checkpoints
    "weights missing": (["check", "m.py", "--weights", "absent.pt"], {"m.py": HEALTHY}, "no such weights file"),
    "weights garbage": (["check", "m.py", "--weights", "w.pt"], {"m.py": HEALTHY, "w.pt": b"garbage"},
                        "cannot read weights"),
    "weights empty": (["check", "m.py", "--weights", "w.pt"], {"m.py": HEALTHY, "w.pt": b""}, "w.pt"),
    "weights full pickle": (["check", "m.py", "--weights", "{evil_pickle}"], {"m.py": HEALTHY}, "--unsafe"),
    "weights wrong keys": (["check", "m.py", "--weights", "{wrong_keys}"], {"m.py": HEALTHY}, "wrong_keys"),
    "weights wrong shapes": (["check", "m.py", "--weights", "{wrong_shapes}"], {"m.py": HEALTHY}, "wrong_shapes"),
    "weights not a state dict": (["check", "m.py", "--weights", "{a_list}"], {"m.py": HEALTHY}, "state dict"),
    "weights corrupt safetensors": (["check", "m.py", "--weights", "w.safetensors"],
                                    {"m.py": HEALTHY, "w.safetensors": b"\x10\x00\x00\x00\x00\x00\x00\x00{}"},
                                    "w.safetensors"),

    # saved Keras models
    "keras file missing": (["check", "absent.keras"], {}, "absent.keras"),
    "keras file empty": (["check", "m.keras"], {"m.keras": b""}, "empty"),
    "keras file not a zip": (["check", "m.keras"], {"m.keras": b"not a zip"}, "zip archive"),
    "keras zip without model": (["check", "{zip_keras}"], {}, "zip_keras"),
    "h5 garbage": (["check", "m.h5"], {"m.h5": b"garbage"}, "m.h5"),
    "keras Lambda without --unsafe": (["check", "{lambda_keras}", "--input-shape", "4"], {}, "--unsafe"),
}


# -- shared assets --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("assets")
    out: dict[str, str] = {}

    def keep(name: str) -> Path:
        out[name.split(".")[0]] = str(d / name)
        return d / name

    np.savez(keep("noxy.npz"), inputs=np.ones((4, 4), "float32"), labels=np.ones(4))
    np.savez(keep("scalar_y.npz"), x=np.ones((4, 4), "float32"), y=np.array(1))
    np.savez(keep("object_x.npz"), x=np.array([{"a": 1}] * 4, dtype=object))
    np.savez(keep("empty_x.npz"), x=np.zeros((0, 4), "float32"))
    np.savez(keep("wide_x.npz"), x=np.ones((4, 9), "float32"))
    np.savez(keep("complex_x.npz"), x=np.ones((4, 4), np.complex64))
    np.savez(keep("string_x.npz"), x=np.array([["a"] * 4] * 4))
    good = d / "good.npz"
    np.savez(good, x=np.ones((4, 4), "float32"))
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(keep("corrupt_member.npz"), "w") as dst:
        for info in src.infolist():
            dst.writestr(info, b"\x93NUMPY garbage" + src.read(info)[20:40])

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"x": Evil()}, keep("evil_pickle.pt"))
    torch.save({"nope.weight": torch.zeros(3)}, keep("wrong_keys.pt"))
    net = torch.nn.Sequential(torch.nn.Linear(4, 9), torch.nn.ReLU(), torch.nn.Linear(9, 3))
    torch.save(net.state_dict(), keep("wrong_shapes.pt"))
    torch.save([1, 2, 3], keep("a_list.pt"))
    with zipfile.ZipFile(keep("zip_keras.keras"), "w") as z:
        z.writestr("readme.txt", "not a model")
    keras = pytest.importorskip("keras")
    inp = keras.Input((4,))
    lam = keras.Model(inp, keras.layers.Lambda(lambda t: t * 2)(keras.layers.Dense(3)(inp)))
    lam.save(keep("lambda_keras.keras"))
    return out


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("FORCE_COLOR", None)
    return subprocess.run([sys.executable, "-m", "netdoctor.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=240, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(case: str, tmp_path: Path, assets: dict[str, str]) -> None:
    args, files, needle, *code = CASES[case]
    for name, content in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    args = [a.format(**assets) if "{" in a else a for a in args]
    wants_json = bool(args) and args[0] in ("check", "report") and "--format" not in args
    if wants_json:
        args = [*args, "--format", "json"] + (["--no-progress"] if args[0] == "check" else [])
    proc = run(args, tmp_path)
    assert proc.returncode == (code[0] if code else 2), (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, proc.stderr[-3000:]
    needle = needle.format(**assets) if "{" in needle else needle
    assert needle in errors[0] or Path(needle).name in errors[0], errors[0]
    if wants_json and proc.stdout.strip():
        data = json.loads(proc.stdout)
        assert data["errors"], data

