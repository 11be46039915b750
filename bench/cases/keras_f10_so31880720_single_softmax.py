"""SO 31880720 (DeepLocalize; DeepDiagnosis motivating example): 128-dim inputs all ones (label 1) or
all zeros (label 0); Dense(50, relu) + a redundant ReLU -> Dropout(0.2) -> Dense(50, relu) ->
Dropout(0.2) -> Dense(1) -> softmax; binary cross-entropy; RMSprop. The single-unit softmax outputs
1.0 for every input, so every gradient is exactly zero. Trap: AUTOTRAINER reported dying ReLU and all
its repairs failed. ND401 is left unlabeled: on this two-point data (all-ones / all-zeros rows) about
half of the ReLU units really are dead on every sample at initialization (measured with plain Keras:
46-68% depending on the seed), which is a true statement, just not the root cause."""

import numpy as np
import keras

EXPECT = {
    "raise": ["ND503"],
    "not": ["ND301", "ND101", "ND302"],
    "source": "SO 31880720 via DeepLocalize / DeepDiagnosis MOTIVATING EXAMPLE (BENCHMARK-CASES F10)",
    "gate": True,
}


def build_model():
    m = keras.Sequential([
        keras.Input((128,)),
        keras.layers.Dense(50, activation="relu"),
        keras.layers.Activation("relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(50, activation="relu"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(1),
        keras.layers.Activation("softmax"),
    ])
    m.compile(optimizer="rmsprop", loss="binary_crossentropy")
    return m


def sample_batch():
    y = (np.arange(256) % 2).astype(np.float32)
    x = np.repeat(y[:, None], 128, axis=1).astype(np.float32)
    return x, y[:, None]
