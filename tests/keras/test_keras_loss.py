"""Which loss the probe uses and what the snapshot says about it."""

from __future__ import annotations

import numpy as np
import pytest
from keras_helpers import L, collect, keras, rng

from netdoctor.errors import LossError
from netdoctor.snapshot import Need


def _classifier(activation: str | None = None, units: int = 3) -> keras.Model:
    inp = keras.Input((5,))
    h = L.Dense(8, activation="relu")(inp)
    return keras.Model(inp, L.Dense(units, activation=activation, name="head")(h))


X = rng().normal(size=(32, 5)).astype("float32")
Y_IDX = rng(1).integers(0, 3, size=(32,))


def test_compiled_loss_with_from_logits() -> None:
    model = _classifier()
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    snap = collect(model, X, Y_IDX)
    assert snap.loss.source == "user" and snap.loss.from_logits is True and snap.loss.expects == "logits"
    assert snap.loss.name == "sparse_categorical_crossentropy"
    assert Need.LOSS in snap.collected and Need.LOSS not in snap.missing
    want = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(Y_IDX, model(X, training=True)))
    assert snap.loss.value == pytest.approx(want, rel=1e-5)  # no dropout or BN: the same forward pass


def test_compiled_probability_loss_on_softmax_output() -> None:
    model = _classifier("softmax")
    model.compile(loss="categorical_crossentropy")
    snap = collect(model, X, np.eye(3)[Y_IDX])
    assert (snap.loss.name, snap.loss.expects, snap.loss.from_logits) == ("categorical_crossentropy",
                                                                          "probabilities", False)
    assert snap.output.final_activation == "softmax" and snap.output.looks_like == "probabilities"


def test_explicit_loss_fn_wins_over_compiled() -> None:
    model = _classifier()
    model.compile(loss="mse")
    snap = collect(model, X, Y_IDX, loss_fn=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert snap.loss.name == "sparse_categorical_crossentropy" and snap.loss.source == "user"


def test_plain_callables_keras_and_torch_argument_order() -> None:
    model = _classifier(units=1)
    y = rng(2).normal(size=(32, 1)).astype("float32")

    def keras_style(y_true, y_pred):
        return keras.ops.mean(keras.ops.abs(y_true - y_pred))

    def torch_style(output, target):
        return keras.ops.mean(keras.ops.abs(output - target)) + 0.0 * keras.ops.sum(output)

    a = collect(model, X, y, loss_fn=keras_style)
    b = collect(model, X, y, loss_fn=torch_style)
    assert a.loss.name == "keras_style" and a.loss.expects == "any"
    assert a.loss.value == pytest.approx(b.loss.value, rel=1e-6)


@pytest.mark.parametrize(
    ("activation", "targets", "name", "from_logits"),
    [
        (None, Y_IDX, "sparse_categorical_crossentropy", True),
        ("softmax", Y_IDX, "sparse_categorical_crossentropy", False),
        (None, np.eye(3)[Y_IDX].astype("float32"), "categorical_crossentropy", True),
        ("softmax", np.eye(3)[Y_IDX].astype("float32"), "categorical_crossentropy", False),
    ],
)
def test_default_loss_for_class_targets(activation, targets, name, from_logits) -> None:
    snap = collect(_classifier(activation), X, targets)
    assert (snap.loss.name, snap.loss.from_logits, snap.loss.source) == (name, from_logits, "default")
    assert Need.LOSS not in snap.collected and "default" in snap.missing[Need.LOSS]
    assert snap.data.target_kind in ("class_index", "one_hot")


def test_default_losses_for_binary_and_float_targets() -> None:
    y01 = rng(3).integers(0, 2, size=(32, 1))
    sig = collect(_classifier("sigmoid", units=1), X, y01)
    assert (sig.loss.name, sig.loss.from_logits, sig.data.target_kind) == ("binary_crossentropy", False, "binary")
    raw = collect(_classifier(units=1), X, y01)
    assert raw.loss.from_logits is True
    reg = collect(_classifier(units=2), X, rng(4).normal(size=(32, 2)))
    assert (reg.loss.name, reg.loss.expects, reg.data.target_kind) == ("mean_squared_error", "any", "float")


def test_surrogate_loss_without_targets() -> None:
    model = _classifier()
    model.compile(loss="mse")  # a regression loss: no targets can be made up for it
    snap = collect(model, X)
    assert snap.loss.source == "surrogate" and snap.loss.name == "mean_squared_error"
    assert any("surrogate" in n for n in snap.notes) and "targets" in snap.missing[Need.LOSS]
    assert Need.GRADIENTS in snap.collected
    assert all(p.grad.l2 > 0 for r in snap.layers for p in r.params if p.role == "weight")
    again = collect(model, X)
    assert again.loss.value == snap.loss.value  # seeded targets


def test_compiled_classification_loss_without_targets_runs_on_synthesized_labels() -> None:
    model = _classifier()
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    snap = collect(model, X)
    assert snap.loss.source == "user" and snap.loss.from_logits is True and Need.LOSS in snap.collected
    assert any("random labels" in n for n in snap.notes)
    assert collect(model, X).loss.value == snap.loss.value  # seeded labels


def test_loss_that_raises_is_a_loss_error() -> None:
    def broken(y_true, y_pred):
        raise RuntimeError("boom\nsecond line")

    with pytest.raises(LossError) as info:
        collect(_classifier(), X, Y_IDX, loss_fn=broken)
    msg = str(info.value)
    assert "broken raised RuntimeError: boom" in msg and "\n" not in msg and "(32,)" in msg


def test_loss_returning_a_python_number_is_a_loss_error() -> None:
    with pytest.raises(LossError, match="not a tensor"):
        collect(_classifier(), X, Y_IDX, loss_fn=lambda y_true, y_pred: 1.0)


def test_shape_mismatched_targets_are_a_loss_error() -> None:
    model = _classifier()
    model.compile(loss="categorical_crossentropy")
    with pytest.raises(LossError, match="categorical_crossentropy raised"):
        collect(model, X, np.eye(5)[rng().integers(0, 5, 32)])


@pytest.mark.parametrize("reduction,ratio", [("sum_over_batch_size", 2.0), ("sum", 1.0)])
def test_a_stock_loss_has_the_sum_ratio_its_reduction_gives_without_evaluating_the_halves(reduction, ratio) -> None:
    """Keras' own loss classes: the ratio is their reduction's, the one the halves would measure."""
    from netdoctor.adapters.keras.loss import stock_sum_ratio

    stock = keras.losses.MeanSquaredError(reduction=reduction)
    assert stock_sum_ratio(stock) == ratio
    y = rng(2).normal(size=(32, 3)).astype("float32")
    measured = collect(_classifier(), X, y, loss_fn=lambda t, p: stock(t, p))  # a function: measured on halves
    assert measured.loss_probe.sum_ratio == pytest.approx(ratio, rel=1e-5)
    assert collect(_classifier(), X, y, loss_fn=stock).loss_probe.sum_ratio == ratio


def test_a_subclassed_or_wrapped_loss_is_measured() -> None:
    from netdoctor.adapters.keras.loss import stock_sum_ratio

    class Summed(keras.losses.MeanSquaredError):
        def call(self, y_true, y_pred):
            return keras.ops.sum(super().call(y_true, y_pred))

    def mine(y_true, y_pred):
        return keras.ops.sum(keras.ops.square(y_true - y_pred))

    assert stock_sum_ratio(Summed()) is None
    assert stock_sum_ratio(keras.losses.Loss.__new__(keras.losses.Loss)) is None
    from keras.src.losses.losses import LossFunctionWrapper

    assert stock_sum_ratio(LossFunctionWrapper(mine)) is None  # a user function inside Keras' wrapper
    y = rng(2).normal(size=(32, 3)).astype("float32")
    assert collect(_classifier(), X, y, loss_fn=Summed()).loss_probe.sum_ratio == pytest.approx(1.0, rel=1e-5)


def test_batch_additivity_evaluates_only_the_two_halves_again() -> None:
    """The sum ratio splits the probe batch in halves; the whole batch's loss is the probe pass's own
    (one call in the probe pass, one per half), and the ratio of a mean loss is 2."""
    rows: list[int] = []
    mse = keras.losses.MeanSquaredError()

    def loss(y_true, y_pred):
        rows.append(int(y_pred.shape[0]))
        return mse(y_true, y_pred)

    model = _classifier()
    snap = collect(model, X, rng(2).normal(size=(32, 3)).astype("float32"), loss_fn=loss)
    assert rows == [32, 16, 16]
    assert snap.loss_probe.sum_ratio == pytest.approx(2.0, rel=1e-5)
