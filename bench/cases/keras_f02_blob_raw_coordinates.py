"""AUTOTRAINER's oscillating-loss demo (demo_case/Oscillating_Loss_Case): Blob data; 2 -> Dense(50,
relu) -> Dense(3, softmax), categorical cross-entropy, SGD 0.01 momentum 0.9, batch size 1. The
oscillation itself needs training (out of a one-shot check's scope); the raw blob coordinates
(|x| up to ~14, feature RMS ~6) are an input-scale fault the recipe says a check rightly reports."""

import _benchdata as bd
import keras

EXPECT = {
    "raise": ["ND101"],
    "not": ["ND503", "ND201", "ND301", "ND401"],
    "source": "AUTOTRAINER demo_case/Oscillating_Loss_Case (BENCHMARK-CASES F02)",
}


def build_model():
    m = keras.Sequential([
        keras.Input((2,)),
        keras.layers.Dense(50, activation="relu", kernel_initializer="he_uniform"),
        keras.layers.Dense(3, activation="softmax"),
    ])
    m.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="categorical_crossentropy")
    return m


def sample_batch():
    x, y = bd.blob()
    return x, bd.one_hot(y, 3)
