"""Text models (integer ids), synthetic inputs, loading files, suppressions, netdoctor.check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from keras_helpers import L, by_name, collect, keras, lecture_data, lecture_model, rng

import netdoctor
from netdoctor.adapters import keras as adapter
from netdoctor.errors import ModelLoadError
from netdoctor.findings import Severity
from netdoctor.snapshot import KIND_EMBEDDING, KIND_RNN, Need


def _text_model() -> keras.Model:
    model = keras.Sequential([
        keras.Input((20,), dtype="int32", name="ids"),
        L.Embedding(300, 16, mask_zero=True, name="emb"),
        L.LSTM(12, name="lstm"),
        L.Dense(1, activation="sigmoid", name="out"),
    ], name="text")
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def test_embedding_lstm_model_on_token_ids() -> None:
    ids = rng().integers(1, 300, size=(32, 20))
    ids[:, 15:] = 0  # padding
    y = rng(1).integers(0, 2, size=(32, 1))
    snap = collect(_text_model(), ids, y)
    recs = by_name(snap)
    emb, lstm = recs["emb"], recs["lstm"]
    assert emb.kind == KIND_EMBEDDING and not emb.entry and emb.consumes_model_input
    assert emb.input.is_integer and emb.input.max < 300
    assert lstm.kind == KIND_RNN and not lstm.entry and "emb" in lstm.inputs_from
    assert not lstm.input.is_integer and lstm.input.abs_max <= 0.05  # embedding vectors, not ids
    assert not any(r.entry for r in snap.layers)  # no weight layer sees raw features
    assert snap.data.inputs["x"].is_integer and snap.data.target_kind == "binary"
    assert snap.loss.name == "binary_crossentropy" and snap.loss.source == "user"
    assert emb.weight.grad.l2 > 0 and lstm.param("recurrent").grad.l2 > 0
    assert snap.output.final_activation == "sigmoid" and snap.output.looks_like == "sigmoid"


def test_synthetic_ids_stay_in_the_vocabulary() -> None:
    snap = collect(_text_model())
    assert snap.synthetic_inputs and snap.batch_size > 1
    assert Need.DATA not in snap.collected and "synthesized" in snap.missing[Need.DATA]
    emb = by_name(snap)["emb"]
    assert emb.input.is_integer and 0 <= emb.input.min and emb.input.max < 300


def test_synthetic_images_fill_unknown_dimensions() -> None:
    model = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=None, alpha=0.35)
    snap = collect(model, needs=frozenset({Need.STRUCTURE, Need.ACTIVATIONS}))
    first = snap.layers[0]
    assert first.input.shape[1:] == (32, 32, 3)
    snap2 = collect(model, needs=frozenset({Need.STRUCTURE, Need.ACTIVATIONS}), input_shape=(40, 40, 3))
    assert snap2.layers[0].input.shape[1:] == (40, 40, 3)


def test_save_and_load_keeps_the_compiled_loss(tmp_path: Path) -> None:
    model = lecture_model()
    model.compile(optimizer="adam", loss=keras.losses.Huber(delta=0.5))
    path = tmp_path / "lecture.keras"
    model.save(path)
    loaded = adapter.load_saved_model(str(path))
    x, y = lecture_data()
    snap = collect(loaded, x, y)
    assert snap.loss.source == "user" and snap.loss.name == "huber_loss"
    h5 = tmp_path / "lecture.h5"
    model.save(h5)
    assert [w.shape for w in adapter.load_saved_model(str(h5)).get_weights()] == [w.shape for w in model.get_weights()]


def test_lambda_layer_needs_unsafe(tmp_path: Path) -> None:
    inp = keras.Input((3,))
    out = L.Dense(1)(L.Lambda(lambda t: t * 2.0, name="double")(inp))
    path = tmp_path / "lam.keras"
    keras.Model(inp, out).save(path)
    with pytest.raises(ModelLoadError) as info:
        adapter.load_saved_model(str(path))
    assert str(info.value).endswith("contains a Lambda layer; loading it runs arbitrary code. "
                                    "Re-run with --unsafe if you trust the file")
    assert adapter.load_saved_model(str(path), unsafe=True).get_layer("double") is not None


def test_load_errors_are_model_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="cannot load"):
        adapter.load_saved_model(str(tmp_path / "missing.keras"))
    model = lecture_model()
    weights = tmp_path / "w.weights.h5"
    model.save_weights(weights)
    other = lecture_model()
    adapter.load_weights(other, str(weights))
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)
    wrong = keras.Sequential([keras.Input((2,)), L.Dense(3)])
    with pytest.raises(ModelLoadError, match="cannot load weights") as info:
        adapter.load_weights(wrong, str(weights))
    assert "\n" not in str(info.value)


def test_allow_marks_become_suppressions() -> None:
    inner = keras.Sequential([keras.Input((4,)), L.Dense(4, name="in1")], name="block")
    inp = keras.Input((4,))
    out = L.Dense(1, name="head")(inner(inp))
    model = keras.Model(inp, out)
    netdoctor.allow(model.get_layer("head"), "ND203", reason="small head on purpose")
    netdoctor.allow(inner, "dead-units", reason="sparse block")
    snap = collect(model, rng().normal(size=(8, 4)), needs=frozenset({Need.STRUCTURE}))
    assert snap.suppressions == {"head": {"ND203": "small head on purpose"}, "block": {"dead-units": "sparse block"}}


def test_lecture_example_checks_clean() -> None:
    x, y = lecture_data(256)
    model = lecture_model()
    model.compile(optimizer="adam", loss="mse")
    report = netdoctor.check(model, x, y)
    assert report.targets[0].framework == "keras" and report.targets[0].loss == "mse"
    assert not [f.message for f in report.findings if f.severity >= Severity.ERROR]
    assert {row["layer"] for row in report.targets[0].layers} >= {"d1", "d1/relu", "d2", "out"}
