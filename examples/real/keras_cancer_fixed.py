"""A Keras functional model fed by a tf.data pipeline, the way the Keras guides write it.

The fixed twin of keras_cancer.py: the pipeline standardizes each feature with the training
set's mean and standard deviation.
"""

import keras
import tensorflow as tf
from keras import layers
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split

x, y = load_breast_cancer(return_X_y=True)
x_train, x_val, y_train, y_val = train_test_split(x.astype("float32"), y.astype("float32"),
                                                  test_size=0.2, random_state=0)

mean, std = x_train.mean(axis=0), x_train.std(axis=0)


def standardize(features, label):
    return (features - mean) / std, label


train_ds = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(512).map(standardize).batch(64)
val_ds = tf.data.Dataset.from_tensor_slices((x_val, y_val)).map(standardize).batch(64)

inputs = keras.Input(shape=(30,), name="measurements")
h = layers.Dense(64, activation="relu")(inputs)
h = layers.Dense(32, activation="relu")(h)
outputs = layers.Dense(1, activation="sigmoid", name="malignant")(h)
model = keras.Model(inputs, outputs, name="cancer_mlp")
model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])

if __name__ == "__main__":
    model.fit(train_ds, validation_data=val_ds, epochs=20)
