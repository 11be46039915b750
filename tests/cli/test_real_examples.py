"""examples/real/: files written the way people write them, checked as they are.

Each has one planted fault that must be reported, and a fixed twin that must report no warning
or error. The Hugging Face folder and the .keras file are written into tmp_path by the scripts
in examples/real/. Two runs of an unchanged file give the same JSON apart from timings, and
`netdoctor diff` of the two finds nothing.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[2] / "examples" / "real"

FILES = [  # (file, planted fault, modules it needs)
    ("lightning_wine.py", "ND503", ("lightning", "sklearn")),
    ("torch_digits.py", "ND202", ("torch", "sklearn")),
    ("keras_cancer.py", "ND101", ("keras", "tensorflow", "sklearn")),
]


def _needs(*modules: str) -> None:
    for m in modules:
        pytest.importorskip(m)


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"_real_{name}", REAL / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    """The HF folder and the .keras file, faulty and fixed, written by the example scripts."""
    out = tmp_path_factory.mktemp("real")
    made: dict[str, Path] = {}
    if importlib.util.find_spec("transformers") and importlib.util.find_spec("torch"):
        hf = _script("save_hf_classifier")
        hf.save(str(out / "hf_bad")), hf.save(str(out / "hf_fixed"), fixed=True)
        made.update(hf_bad=out / "hf_bad", hf_fixed=out / "hf_fixed")
    if importlib.util.find_spec("keras"):
        ks = _script("save_keras_classifier")
        ks.save(str(out / "bad.keras")), ks.save(str(out / "fixed.keras"), fixed=True)
        made.update(keras_bad=out / "bad.keras", keras_fixed=out / "fixed.keras")
    return made


def _report(result) -> dict:
    data = json.loads(result.out)
    assert not data["errors"], data["errors"]
    return data


def _codes(data: dict, at_least: str = "info") -> set[str]:
    order = {"info": 0, "warning": 1, "error": 2}
    return {f["rule"] for f in data["findings"] if order[f["severity"]] >= order[at_least]}


@pytest.mark.parametrize(("name", "fault", "modules"), FILES, ids=[f[0] for f in FILES])
def test_planted_fault_is_reported_and_the_fixed_twin_is_clean(cli, name, fault, modules):
    _needs(*modules)
    bad = cli("check", str(REAL / name), "--format", "json")
    assert bad.code == 1 and fault in _codes(_report(bad), "warning"), bad.out[:2000]
    fixed = cli("check", str(REAL / name.replace(".py", "_fixed.py")), "--format", "json", "--fail-on", "warning")
    data = _report(fixed)
    assert fixed.code == 0 and not _codes(data, "warning"), data["findings"]


def test_lightning_file_uses_its_datamodule_and_training_step(cli):
    _needs("lightning", "sklearn")
    data = _report(cli("check", str(REAL / "lightning_wine.py"), "--format", "json"))
    [target] = data["targets"]
    assert target["loss"] == "training_step() -> cross_entropy" and target["batch_size"] == 64
    assert any("WineDataModule" in n and "train_dataloader" in n for n in target["notes"])
    [f] = [f for f in data["findings"] if f["rule"] == "ND503"]
    assert f["evidence"]["final_activation"] == "softmax" and f["evidence"]["expects"] == "logits"
    capped = _report(cli("check", str(REAL / "lightning_wine.py"), "--format", "json", "--max-samples", "16"))
    assert capped["targets"][0]["batch_size"] == 16  # the first batch, capped to --max-samples


def test_hugging_face_folder(cli, saved):
    if "hf_bad" not in saved:
        pytest.skip("transformers not installed")
    bad = _report(cli("check", str(saved["hf_bad"]), "--format", "json"))
    assert "ND204" in _codes(bad, "error")  # NaN weights in the saved checkpoint
    fixed = cli("check", str(saved["hf_fixed"]), "--format", "json", "--fail-on", "warning")
    data = _report(fixed)
    assert fixed.code == 0 and not _codes(data, "warning"), data["findings"]
    [target] = data["targets"]
    assert target["model_class"] == "BertForSequenceClassification" and target["loss"] == "model output .loss"
    assert target["synthetic_inputs"] and {s["rule"] for s in target["skipped"]} == {"ND101", "ND102", "ND103"}


def test_saved_keras_file_without_data_gets_nd503(cli, saved):
    if "keras_bad" not in saved:
        pytest.skip("keras not installed")
    bad = _report(cli("check", str(saved["keras_bad"]), "--format", "json"))
    assert "ND503" in _codes(bad, "warning")  # a warning on the TensorFlow backend, which recovers the logits
    assert "ND503" not in {s["rule"] for t in bad["targets"] for s in t["skipped"]}
    fixed = cli("check", str(saved["keras_fixed"]), "--format", "json", "--fail-on", "warning")
    assert fixed.code == 0 and not _codes(_report(fixed), "warning")


def _without_timings(text: str) -> dict:
    data = json.loads(text)
    data.pop("timings")
    return data


@pytest.mark.parametrize("name", ["lightning_wine.py", "torch_digits_fixed.py", "keras_cancer.py", "hf_fixed",
                                  "keras_bad"])
def test_two_runs_give_the_same_json_and_an_empty_diff(cli, saved, tmp_path, name):
    if name.endswith(".py"):
        _needs(*next(m for f, _, m in FILES if f == name.replace("_fixed", "")))
        path = REAL / name
    elif name not in saved:
        pytest.skip("the library that writes it is not installed")
    else:
        path = saved[name]
    first = cli("check", str(path), "--format", "json", "--output", str(tmp_path / "a.json"), "--fail-on", "never")
    second = cli("check", str(path), "--format", "json", "--output", str(tmp_path / "b.json"), "--fail-on", "never")
    assert first.code == second.code == 0, first.err + second.err
    a, b = (tmp_path / "a.json").read_text(), (tmp_path / "b.json").read_text()
    assert _without_timings(a) == _without_timings(b)
    diff = cli("diff", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert diff.code == 0 and "0 new, 0 resolved" in diff.out and "0 metric regressions" in diff.out, diff.out


def test_seed_changes_the_numbers(cli, tmp_path):
    _needs("torch", "sklearn")
    path = str(REAL / "torch_digits_fixed.py")
    runs = [json.loads(cli("check", path, "--format", "json", "--seed", seed).out) for seed in ("0", "0", "1")]
    layers = [r["targets"][0]["layers"] for r in runs]
    assert layers[0] == layers[1] and layers[0] != layers[2]  # another seed: other weights, another batch
