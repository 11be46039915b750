"""Problems a user can cause become one-line NetdoctorErrors naming what to do next."""

from __future__ import annotations

import numpy as np
import pytest
from keras_helpers import L, collect, keras, lecture_model, rng

from netdoctor.errors import DataError


def _one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert "\n" not in msg
    return msg


def test_wrong_feature_count_names_the_input_and_both_shapes() -> None:
    with pytest.raises(DataError) as info:
        collect(lecture_model(), rng().normal(size=(8, 3)), rng().normal(size=(8, 1)))
    msg = _one_line(info.value)
    assert "'input_layer" in msg and "(None, 1)" in msg and "(8, 3)" in msg and "pass samples shaped (1,)" in msg


def test_shape_error_inside_the_graph_names_the_layer() -> None:
    inp = keras.Input((None,), name="seq")
    h = L.Reshape((2, 4), name="chunks")(inp)  # only sequences of 8 fit
    out = L.Dense(2, name="head")(L.Flatten(name="flat")(h))
    model = keras.Model(inp, out)
    with pytest.raises(DataError) as info:
        collect(model, rng().normal(size=(4, 12)).astype("float32"), rng().normal(size=(4, 2)))
    msg = _one_line(info.value)
    assert "layer 'chunks' (Reshape)" in msg and "(None, None)" in msg and "(4, 12)" in msg


def test_wrong_number_of_inputs_and_missing_dict_key() -> None:
    a, b = keras.Input((2,), name="a"), keras.Input((3,), name="b")
    model = keras.Model([a, b], L.Dense(1)(L.Concatenate()([a, b])))
    with pytest.raises(DataError, match=r"has 2 inputs \(a, b\) but the data has 1"):
        collect(model, rng().normal(size=(4, 2)))
    with pytest.raises(DataError, match="no entry for model input 'b'"):
        collect(model, {"a": rng().normal(size=(4, 2)), "c": rng().normal(size=(4, 3))})


def test_sample_count_mismatch_between_x_and_y() -> None:
    with pytest.raises(DataError, match="8 samples but the targets have 5"):
        collect(lecture_model(), rng().normal(size=(8, 1)), rng().normal(size=(5, 1)))


def test_subclassed_model_without_shape_or_data() -> None:
    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = L.Dense(2)

        def call(self, x):
            return self.d(x)

    with pytest.raises(DataError, match="input_shape"):
        collect(Sub())
    snap = collect(Sub(), input_shape=(3,))
    assert snap.synthetic_inputs and snap.layers[0].weight.stats.shape == (3, 2)


def test_subclassed_model_rejecting_the_data() -> None:
    class Sub(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = L.Dense(2)

        def call(self, x):
            return self.d(x)

    model = Sub()
    model(np.zeros((1, 3), "float32"))
    with pytest.raises(DataError) as info:
        collect(model, rng().normal(size=(4, 7)).astype("float32"))
    assert "(4, 7)" in _one_line(info.value)
