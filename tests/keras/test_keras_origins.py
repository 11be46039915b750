"""Keras layers are located at the line of the model file that created them (SARIF/GitHub regions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

keras = pytest.importorskip("keras")

from _source_files import line_of, write_source  # noqa: E402

from netdoctor.modelfile.loader import load_model_file  # noqa: E402

SCHEMA = Path(__file__).resolve().parents[1] / "reporters" / "sarif-schema-2.1.0.json"


def test_functional_sequential_nested_helper_and_custom_layers(tmp_path):
    write_source(tmp_path / "blocks.py", """
        import keras

        def dense_block(units):
            return keras.layers.Dense(units, activation="relu")
    """)
    path = write_source(tmp_path / "model.py", """
        import keras
        from blocks import dense_block

        class Scale(keras.layers.Layer):
            def __init__(self):
                super().__init__()
                self.inner = keras.layers.Dense(4)  # INNER

            def call(self, x):
                return self.inner(x)

        def build_model():
            encoder = keras.Sequential([
                keras.layers.Dense(8, activation="relu"),  # SEQ_A
                keras.layers.Dense(8),  # SEQ_B
            ], name="encoder")
            inp = keras.Input((4,))
            h = encoder(inp)  # ENCODER_CALL
            h = dense_block(6)(h)  # HELPER
            h = Scale()(h)  # SCALE
            out = keras.layers.Dense(3)(h)  # OUT
            return keras.Model(inp, out)
    """)
    loaded = load_model_file(str(path))
    lines = loaded.layer_lines
    by_name = {layer.name: layer for layer in loaded.model.layers}
    enc = by_name["encoder"]
    seq_a, seq_b = enc.layers
    helper, scale, out = [layer for layer in loaded.model.layers if layer.name not in ("encoder",)][-3:]
    assert lines["encoder"] == line_of(path, "name=\"encoder\"") - 3  # the Sequential(...) call starts the statement
    assert lines[f"encoder/{seq_a.name}"] == line_of(path, "SEQ_A")
    assert lines[f"encoder/{seq_b.name}"] == line_of(path, "SEQ_B")
    assert lines[helper.name] == line_of(path, "HELPER")  # made in blocks.py: the file's call of the helper
    assert lines[scale.name] == line_of(path, "SCALE")  # a layer class of the file: where it is made
    assert lines[f"{scale.name}/{scale.inner.name}"] == line_of(path, "INNER")
    assert lines[out.name] == line_of(path, "OUT")
    # the wrap is gone and the model carries nothing of netdoctor's
    assert "__wrapped__" not in vars(keras.layers.Layer.__init__)
    assert not any("netdoctor" in k for layer in loaded.model._flatten_layers() for k in vars(layer))


def test_a_layer_class_without_its_own_init_loads_and_keeps_its_config(tmp_path):
    """Such a class inherits Layer.__init__, the wrapped one while the file loads: Keras reads its
    argspec to build the layer's config, so the wrap must show the original signature (was
    KeyError: 'args' from Operation.__new__)."""
    path = write_source(tmp_path / "model.py", """
        import keras

        class StopGradient(keras.layers.Layer):
            def call(self, x):
                return keras.ops.stop_gradient(x)

        def build_model():
            inp = keras.Input((4,))
            h = StopGradient(name="stop")(keras.layers.Dense(8)(inp))  # STOP
            return keras.Model(inp, keras.layers.Dense(2)(h))
    """)
    loaded = load_model_file(str(path))
    assert loaded.layer_lines["stop"] == line_of(path, "STOP")
    assert loaded.model.get_layer("stop").get_config()["name"] == "stop"


def test_sarif_points_at_the_keras_layer_from_a_subfolder(tmp_path):
    """From models/, `netdoctor check legacy_model.py --format sarif`: URI models/legacy_model.py, the Dense's line."""
    jsonschema = pytest.importorskip("jsonschema")
    (tmp_path / "pyproject.toml").write_text("[tool.netdoctor]\nselect = ['ND201']\n")
    models = tmp_path / "models"
    models.mkdir()
    path = write_source(models / "legacy_model.py", """
        import numpy as np
        import keras

        def build_model():
            inp = keras.Input((4,))
            h = keras.layers.Dense(16, activation="relu")(inp)
            h = keras.layers.Dense(16, activation="relu", kernel_initializer="zeros")(h)  # FUNCTIONAL_ZERO
            return keras.Model(inp, keras.layers.Dense(3)(h))

        def build_sequential():
            return keras.Sequential([
                keras.Input((4,)),
                keras.layers.Dense(16, activation="relu"),
                keras.layers.Dense(16, activation="relu", kernel_initializer="zeros"),  # SEQUENTIAL_ZERO
                keras.layers.Dense(3),
            ])

        def sample_batch():
            rng = np.random.default_rng(0)
            return rng.standard_normal((32, 4)).astype("float32"), rng.integers(0, 3, 32)
    """)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("FORCE_COLOR", None)
    schema = json.loads(SCHEMA.read_text())
    for spec, marker in (("legacy_model.py", "FUNCTIONAL_ZERO"), ("legacy_model.py::build_sequential", "SEQUENTIAL_ZERO")):
        proc = subprocess.run([sys.executable, "-m", "netdoctor.cli", "check", spec, "--format", "sarif"],
                              capture_output=True, text=True, cwd=models, env=env, timeout=240)
        assert proc.returncode == 1, proc.stderr
        doc = json.loads(proc.stdout)
        assert not list(jsonschema.validators.validator_for(schema)(schema).iter_errors(doc))
        run = doc["runs"][0]
        assert run["originalUriBaseIds"] == {"PROJECTROOT": {"uri": tmp_path.resolve().as_uri() + "/"}}
        (result,) = [r for r in run["results"] if r["ruleId"] == "ND201"]
        phys = result["locations"][0]["physicalLocation"]
        assert phys["artifactLocation"] == {"uri": "models/legacy_model.py", "uriBaseId": "PROJECTROOT"}
        assert phys["region"]["startLine"] == line_of(path, marker), (spec, result)
