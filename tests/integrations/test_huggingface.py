"""`netdoctor check model_dir` on folders written by save_pretrained: tiny BERT, GPT-2 and ViT."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from netdoctor.api import check_model  # noqa: E402
from netdoctor.config import Config  # noqa: E402
from netdoctor.errors import ModelLoadError  # noqa: E402
from netdoctor.modelfile.loader import load_model_file  # noqa: E402


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    out = tmp_path_factory.mktemp("hf")
    torch.manual_seed(0)
    small = dict(num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    models = {
        "bert": transformers.BertForSequenceClassification(transformers.BertConfig(
            vocab_size=300, hidden_size=32, max_position_embeddings=64, num_labels=4, **small)),
        "gpt2": transformers.GPT2LMHeadModel(transformers.GPT2Config(
            vocab_size=300, n_embd=32, n_layer=2, n_head=2, n_positions=24, bos_token_id=0, eos_token_id=0)),
        "vit": transformers.ViTForImageClassification(transformers.ViTConfig(
            image_size=32, patch_size=8, hidden_size=32, num_labels=5, **small)),
    }
    for name, model in models.items():
        model.save_pretrained(out / name)
    return out


def _check(loaded):
    return check_model(loaded.model, loaded.inputs, loaded.targets, framework=loaded.framework, config=Config(),
                       loss_fn=loaded.loss_fn)


def test_bert_classifier_gets_token_ids_in_its_vocabulary_and_its_own_loss(folders):
    loaded = load_model_file(str(folders / "bert"))
    assert loaded.source == "BertForSequenceClassification.from_pretrained()" and not loaded.model.training
    ids = loaded.inputs["input_ids"]
    assert ids.dtype == np.int64 and ids.min() >= 0 and ids.max() < 300 and ids.shape[1] == 32
    assert set(loaded.inputs) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert loaded.inputs["labels"].min() >= 0 and loaded.inputs["labels"].max() < 4
    report = _check(loaded)
    t = report.targets[0]
    assert t.loss == "model output .loss" and t.synthetic_inputs and not report.findings
    assert {s.code for s in t.skipped} == {"ND101", "ND102", "ND103"}
    assert all("config.json" in s.reason for s in t.skipped)


def test_gpt2_lm_uses_the_sequence_length_its_positions_allow(folders):
    loaded = load_model_file(str(folders / "gpt2"))
    ids = loaded.inputs["input_ids"]
    assert ids.shape[1] == 24 and ids.min() >= 1 and ids.max() < 300  # 24 positions; token 0 is special
    assert (loaded.inputs["labels"] == ids).all()
    report = _check(loaded)
    assert report.targets[0].loss == "model output .loss" and not report.findings


def test_vit_gets_pixel_values_of_its_image_size(folders):
    loaded = load_model_file(str(folders / "vit"))
    assert loaded.inputs["pixel_values"].shape[1:] == (3, 32, 32) and loaded.inputs["labels"].max() < 5
    assert not _check(loaded).findings


def test_folder_errors_are_one_line(folders, tmp_path):
    with pytest.raises(ModelLoadError, match="directory without config.json"):
        load_model_file(str(tmp_path))
    custom = tmp_path / "custom"
    custom.mkdir()
    config = json.loads((folders / "bert" / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_x.XModel"}
    (custom / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="--unsafe"):
        load_model_file(str(custom))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((folders / "bert" / "config.json").read_text())
    with pytest.raises(ModelLoadError, match="is the folder complete") as err:
        load_model_file(str(broken))
    assert "\n" not in str(err.value)
