"""--weights (torch and Keras), saved Keras models (.keras), and the progress display on a TTY."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def test_torch_weights_replace_the_built_ones(cli, tmp_path):
    torch = pytest.importorskip("torch")
    from netdoctor.modelfile.loader import load_model_file

    model = load_model_file(str(FIXTURES / "zero_hidden.py")).model
    torch.nn.init.normal_(model.fc2.weight, std=0.25)  # the "trained" checkpoint has a real fc2
    ckpt = tmp_path / "trained.pt"
    torch.save({"model_state_dict": model.state_dict(), "epoch": 3}, ckpt)
    path = str(FIXTURES / "zero_hidden.py")
    assert cli("check", path, "--select", "ND201").code == 1
    assert cli("check", path, "--select", "ND201", "--weights", str(ckpt)).code == 0

    other = tmp_path / "other.pt"
    torch.save(torch.nn.Linear(3, 3).state_dict(), other)
    bad = cli("check", path, "--weights", str(other))
    assert bad.code == 2 and bad.err.startswith("error: ") and len(bad.err.strip().splitlines()) == 1
    missing = cli("check", path, "--weights", str(tmp_path / "none.pt"))
    assert missing.code == 2 and "no such weights file" in missing.err


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_keras_saved_model_and_weights(cli, tmp_path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    pytest.importorskip("keras")
    import numpy as np

    from netdoctor.modelfile.loader import load_model_file

    model = load_model_file(str(FIXTURES / "zero_hidden_keras.py")).model
    saved = tmp_path / "zero_hidden.keras"
    model.save(saved)
    data = json.loads(cli("check", str(saved), "--select", "ND201", "--format", "json").out)
    (target,) = data["targets"]
    assert target["framework"] == "keras" and target["synthetic_inputs"] is True
    assert any(f["rule"] == "ND201" and f["layer"].startswith("hidden") for f in data["findings"]), data

    hidden = model.get_layer("hidden")
    kernel, bias = hidden.get_weights()
    hidden.set_weights([np.random.default_rng(0).normal(0, 0.3, kernel.shape).astype("float32"), bias])
    weights = tmp_path / "trained.weights.h5"
    model.save_weights(weights)
    result = cli("check", str(FIXTURES / "zero_hidden_keras.py"), "--select", "ND201", "--weights", str(weights))
    assert result.code == 0, result.out + result.err
    assert cli("check", str(saved), "--weights", str(weights)).err.startswith("error: --weights does not apply")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_progress_only_on_a_terminal():
    pytest.importorskip("torch")
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "netdoctor.cli", "check", "tests/cli/fixtures/zero_hidden.py", "--select", "ND201"],
        stdout=slave, stderr=slave, env=env, cwd=Path(__file__).resolve().parents[2],
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.wait(timeout=120) == 1
    text = b"".join(chunks).decode("utf-8", "replace")
    assert "checking" in text and "0/1" in text  # the live progress line
    assert "\x1b[" in text  # colour on a terminal
    assert "ND201" in text and "zero-weights" in text
