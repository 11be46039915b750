"""Healthy control: a Keras transformer encoder block (token + position embeddings, MultiHeadAttention,
residual adds, LayerNormalization, GELU feed-forward), global average pooling, softmax head."""

import _benchdata as bd
import keras
from keras import layers


class PositionEmbedding(layers.Layer):
    def __init__(self, seq, d, **kw):
        super().__init__(**kw)
        self.pos = layers.Embedding(seq, d)
        self.seq = seq

    def call(self, x):
        return x + self.pos(keras.ops.arange(self.seq))


EXPECT = {
    "raise": [],
    "source": "Keras MultiHeadAttention encoder block (brief: Transformer controls)",
    "gate": True,
}


def build_model(seq=16, d=32):
    inp = keras.Input((seq,), dtype="int64")
    h = PositionEmbedding(seq, d)(layers.Embedding(500, d)(inp))
    a = layers.MultiHeadAttention(num_heads=4, key_dim=8)(h, h)
    h = layers.LayerNormalization()(h + a)
    f = layers.Dense(64, activation="gelu")(h)
    f = layers.Dense(d)(f)
    h = layers.LayerNormalization()(h + f)
    out = layers.Dense(2, activation="softmax")(layers.GlobalAveragePooling1D()(h))
    m = keras.Model(inp, out)
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return m


def sample_batch():
    return bd.tokens()
