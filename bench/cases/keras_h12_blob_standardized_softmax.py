"""Healthy control (F03/F02 fixed): standardized Blob coordinates, 4 x Dense(50, relu) He-uniform ->
Dense(3, softmax), categorical cross-entropy."""

import _benchdata as bd
import _keraskit as kk

EXPECT = {
    "raise": [],
    "source": "AUTOTRAINER Improper_Activation_case repaired (softmax output) + normalized data (BENCHMARK-CASES F03/H02)",
    "seeds": 2,
}


def build_model():
    m = kk.dense_stack([2, 50, 50, 50, 50, 3], "relu", "he_uniform", out_act="softmax")
    m.compile(optimizer="adam", loss="categorical_crossentropy")
    return m


def sample_batch():
    x, y = bd.blob()
    return bd.standardize(x), bd.one_hot(y, 3)
