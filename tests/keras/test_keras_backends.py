"""Import discipline and the torch backend, each in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

_CHECK_SMALL_MODEL = textwrap.dedent(
    """
    import json, sys
    import numpy as np, keras
    import netdoctor
    from netdoctor.adapters import keras as adapter
    from netdoctor.snapshot import Need, ProbeSettings
    inp = keras.Input((4,))
    h = keras.layers.Dense(8, activation="relu", name="fc")(inp)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Dropout(0.5, name="drop")(h)
    model = keras.Model(inp, keras.layers.Dense(2, name="head")(h))
    x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
    y = np.random.default_rng(1).integers(0, 2, size=(16,))
    before = [np.array(v.numpy(), copy=True) for v in model.variables]
    report = netdoctor.check(model, x, y)
    snap = adapter.collect(model, inputs=x, targets=y, loss_fn=None, needs=frozenset(Need),
                           settings=ProbeSettings(), input_shape=None)
    same = all(a.tobytes() == np.asarray(v.numpy()).tobytes() for a, v in zip(before, model.variables))
    print(json.dumps({
        "backend": keras.backend.backend(),
        "torch": "torch" in sys.modules,
        "tensorflow": "tensorflow" in sys.modules,
        "same": same,
        "collected": sorted(str(n) for n in snap.collected),
        "grad": {f"{r.name}/{p.name}": p.grad.l2 for r in snap.layers for p in r.params if p.grad is not None},
        "active": None if snap.layer("fc/relu").unit_active is None else len(snap.layer("fc/relu").unit_active),
        "version": snap.framework_version,
        "rules": len(report.rules_run),
    }))
    """
)


def _run(backend: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", _CHECK_SMALL_MODEL], capture_output=True, text=True, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_tensorflow_backend_never_imports_torch() -> None:
    got = _run("tensorflow")
    assert got["backend"] == "tensorflow" and not got["torch"]
    assert got["same"] and "gradients" in got["collected"] and got["grad"]["fc/kernel"] > 0
    assert got["version"].startswith("3.") and "tensorflow" in got["version"]


@pytest.mark.slow
def test_torch_backend_through_the_same_gradient_function() -> None:
    pytest.importorskip("torch")
    got = _run("torch")
    assert got["backend"] == "torch" and "torch" in got["version"]
    assert got["same"], "BatchNorm/seed state must be restored on the torch backend too"
    assert {"gradients", "activations", "weights"} <= set(got["collected"])
    assert got["grad"]["fc/kernel"] > 0 and got["grad"]["head/kernel"] > 0 and got["active"] == 8
    assert not any(v != v for v in got["grad"].values())  # no NaN
