"""The benchmark checks a case the way ``netdoctor.check`` does: same findings for the same seed."""

from __future__ import annotations

import pytest

from _bench import BENCH, load

torch = pytest.importorskip("torch")
detect = load("detect")


@pytest.mark.parametrize(("name", "seed"), [("torch_f06_tiny_uniform_deep_relu_circle", 0),
                                           ("torch_f06_tiny_uniform_deep_relu_circle", 1),
                                           ("torch_x01_negative_bias_dead_relu", 0),
                                           ("torch_h01_transformer_encoder", 1)])
def test_run_one_matches_netdoctor_check(name, seed):
    import netdoctor
    from netdoctor.modelfile.loader import load_model_file
    from netdoctor.snapshot import ProbeSettings

    path = BENCH / "cases" / f"{name}.py"
    rec = detect.run_one(path, "torch", seed)
    assert rec["status"] == "ok", rec.get("error")
    loaded = load_model_file(str(path), seed=seed)  # the loader seeds the case's code
    report = netdoctor.check(loaded.model, loaded.inputs, loaded.targets, loss_fn=loaded.loss_fn,
                             settings=ProbeSettings(seed=seed))
    expected = sorted((f.code, f.severity.name.lower(), f.layer or "") for f in report.findings)
    got = sorted((f["code"], f["severity"], f["layer"] or "") for f in rec["findings"])
    assert got == expected
