"""A hand-written binary log-loss on a linear Keras head (issue 16): ``-mean(y log p + (1 - y) log(1 - p))``
on an unbounded output is NaN. Breast cancer (standardized)."""

import _benchdata as bd
import keras
from keras import ops

EXPECT = {
    "raise": ["ND503", "ND303"],
    "not": ["ND101"],
    "source": "issue 16: hand-written log-loss on an unbounded output (Keras)",
}


def log_loss(y_true, y_pred):
    return -ops.mean(y_true * ops.log(y_pred) + (1 - y_true) * ops.log(1 - y_pred))


def build_model():
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((30,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)])
    m.compile(optimizer="adam", loss=log_loss)
    return m


def sample_batch():
    x, y = bd.breast_cancer(scaled=True)
    return x, y.astype("float32").reshape(-1, 1)
