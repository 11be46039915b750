"""Write a trained-looking Keras classifier to a .keras file, as model.save() leaves it.

    python examples/real/save_keras_classifier.py model.keras            # planted fault
    python examples/real/save_keras_classifier.py model.keras --fixed    # the fixed twin
    netdoctor check model.keras

Planted fault: the model ends in a softmax, but it was compiled with
SparseCategoricalCrossentropy(from_logits=True) (ND503). On the JAX and torch backends the loss
applies the softmax again; the TensorFlow backend recovers the logits the softmax carries and
only warns, so there ND503 is a warning. The saved file carries the compiled loss, so netdoctor
sees the mismatch without any data. The fixed twin compiles with from_logits=False.
"""

import argparse

import keras
from keras import layers


def save(path: str, fixed: bool = False) -> None:
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(28, 28, 1), name="image")
    x = layers.Rescaling(1 / 255)(inputs)
    x = layers.Conv2D(16, 3, activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(32, 3, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(10, activation="softmax", name="digit")(x)
    model = keras.Model(inputs, outputs, name="digits_cnn")
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=not fixed),  # fault: from_logits=True
                  metrics=["accuracy"])
    model.save(path)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--fixed", action="store_true")
    args = parser.parse_args()
    save(args.path, args.fixed)
