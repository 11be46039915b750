"""netdoctor.KerasCallback on real short model.fit runs: a healthy run is clean, a diverging learning
rate is flagged with its step, on_error stop/raise, MirroredStrategy, no trace on the model."""

from __future__ import annotations

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import netdoctor  # noqa: E402
from netdoctor.errors import UnsupportedModelError  # noqa: E402
from netdoctor.monitor import TrainingError  # noqa: E402


def mlp(lr: float, optimizer: str = "adam") -> "keras.Model":
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
    opt = keras.optimizers.Adam(lr) if optimizer == "adam" else keras.optimizers.SGD(lr)
    model.compile(opt, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_healthy_digits_run_ends_clean(digits):
    x, y = digits
    model = mlp(1e-3)
    cb = netdoctor.KerasCallback(every=10, held_batch=(x[:64], y[:64]))
    model.fit(x, y, batch_size=64, epochs=10, verbose=0, callbacks=[cb])
    report = cb.report()
    assert report.findings == (), [f.message for f in report.findings]
    assert report.targets[0].framework == "keras" and not report.skipped
    h = cb.history()
    assert h.steps == 290 and len(h.samples) == 29
    s = h.samples[5]
    assert s.grad_norm > 0 and s.layer_update is not None and np.isfinite(s.act_dead).sum() == 2
    assert s.lr == pytest.approx(1e-3)
    finite = h.finite_loss()[1]  # per-batch losses recovered from Keras' running means
    assert finite[0] == pytest.approx(2.57, abs=0.3) and finite[-20:].mean() < 0.3


def test_per_batch_losses_match_keras_epoch_means(digits):
    x, y = digits
    model = mlp(1e-3)
    cb = netdoctor.KerasCallback(every=7)
    hist = model.fit(x[:640], y[:640], batch_size=64, epochs=3, verbose=0, callbacks=[cb])
    losses = cb.history().loss_values.reshape(3, 10)
    np.testing.assert_allclose(losses.mean(axis=1), hist.history["loss"], rtol=1e-4)


def test_diverging_learning_rate_is_flagged_with_its_step(digits, tmp_path):
    x, y = digits
    model = mlp(1.0)
    cb = netdoctor.KerasCallback(every=5, held_batch=(x[:64], y[:64]), log_to=tmp_path / "run.jsonl")
    model.fit(x, y, batch_size=64, epochs=5, verbose=0, callbacks=[cb])
    report = cb.report()
    (f,) = report.by_code("ND602")
    assert f.step is not None and f.step <= 20
    assert "learning_rate=0.1" in f.snippet
    rebuilt = netdoctor.monitor.report_from_log(tmp_path / "run.jsonl")
    assert [(g.code, g.step) for g in rebuilt.findings] == [(g.code, g.step) for g in report.findings]


def test_on_error_stop_ends_fit_cleanly_and_raise_raises(digits):
    x, y = digits
    model = mlp(1.0)
    cb = netdoctor.KerasCallback(every=5, on_error="stop")
    hist = model.fit(x, y, batch_size=64, epochs=20, verbose=0, callbacks=[cb])
    assert len(hist.history["loss"]) < 20 and cb.core.closed
    assert cb.report().by_code("ND602")
    model = mlp(1.0)
    cb = netdoctor.KerasCallback(every=5, on_error="raise")
    with pytest.raises(TrainingError, match="ND602"):
        model.fit(x, y, batch_size=64, epochs=20, verbose=0, callbacks=[cb])
    assert cb.core.closed


def test_without_held_batch_gradient_and_activation_rules_are_skipped_with_the_reason(digits, caplog):
    x, y = digits
    model = mlp(1e-3)
    cb = netdoctor.KerasCallback(every=10)
    with caplog.at_level("WARNING", logger="netdoctor.monitor"):
        model.fit(x[:640], y[:640], batch_size=64, epochs=2, verbose=0, callbacks=[cb])
    reasons = {s.code: s.reason for s in cb.report().skipped}
    assert set(reasons) == {"ND604", "ND607", "ND608", "ND609", "ND610"}
    assert "held_batch" in reasons["ND604"] and "held_batch" in reasons["ND607"]
    assert not {"ND604", "ND607", "ND610"} & set(cb.report().rules_run)
    said = [r.getMessage() for r in caplog.records if "held_batch" in r.getMessage()]
    assert len(said) == 1 and "ND607" in said[0]  # said once, at the start


def test_callback_leaves_model_weights_as_training_alone_would(digits):
    x, y = digits
    plain, watched = mlp(1e-3), mlp(1e-3)
    plain.fit(x[:640], y[:640], batch_size=64, epochs=2, verbose=0, shuffle=False)
    cb = netdoctor.KerasCallback(every=3, held_batch=(x[:64], y[:64]))
    watched.fit(x[:640], y[:640], batch_size=64, epochs=2, verbose=0, shuffle=False, callbacks=[cb])
    for a, b in zip(plain.get_weights(), watched.get_weights()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("compiled", [False, True])
def test_works_under_mirrored_strategy(digits, compiled, monkeypatch):
    tf = pytest.importorskip("tensorflow")
    from netdoctor.adapters.keras import held as held_module

    # the held-batch pass compiled from the first sample on, or eager throughout (never by the clock)
    monkeypatch.setattr(held_module, "COMPILE_AFTER_S", 0.0 if compiled else math.inf)
    x, y = digits
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = mlp(1.0)
    cb = netdoctor.KerasCallback(every=5, held_batch=(x[:64], y[:64]))
    model.fit(x, y, batch_size=64, epochs=3, verbose=0, callbacks=[cb])
    report = cb.report()
    assert report.by_code("ND602") and cb.history().samples[1].grad_norm > 0
    assert cb._pass.compiled_next is compiled and not cb._pass.eager  # the compiled pass ran as one graph


def test_watch_rejects_keras_models():
    with pytest.raises(UnsupportedModelError, match="KerasCallback"):
        netdoctor.watch(mlp(1e-3))


def test_per_step_loss_is_the_step_own_loss_not_a_difference_of_running_means(digits):
    # lr=0: the weights never move, so each step's true loss is the loss of its batch at the
    # initial weights. Late in a long epoch, k*m_k - (k-1)*m_(k-1) of Keras' float32 running
    # mean is rounding noise; the step's own loss is exact.
    x, y = digits
    x, y = np.tile(x[:1796], (3, 1)), np.tile(y[:1796], 3)  # 1347 batches of 4 in one epoch
    model = mlp(0.0, optimizer="sgd")
    cb = netdoctor.KerasCallback(every=100)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False, callbacks=[cb])
    logits = model.predict(x, batch_size=512, verbose=0)
    per_sample = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)(y, logits)
    truth = np.asarray(per_sample).reshape(-1, 4).mean(1)
    got = cb.history().loss_values
    assert got.size == truth.size
    np.testing.assert_allclose(got, truth, rtol=1e-4, atol=1e-5)
    assert "compute_loss" not in vars(model) and model.train_function is None  # no trace left


def test_long_epoch_healthy_run_gives_no_finding(digits):
    x, y = digits
    model = mlp(1e-3)
    cb = netdoctor.KerasCallback(every=50, held_batch=(x[:64], y[:64]))
    model.fit(x, y, batch_size=4, epochs=3, verbose=0, callbacks=[cb])  # 450 steps per epoch
    report = cb.report()
    assert report.findings == (), [f.message for f in report.findings]
    assert cb.history().steps == 1350


def test_cosine_decay_advice_cites_the_peak_and_the_rate_at_the_finding(digits):
    x, y = digits
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(10)])
    schedule = keras.optimizers.schedules.CosineDecay(1.0, decay_steps=560)
    model.compile(keras.optimizers.SGD(schedule, momentum=0.9),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cb = netdoctor.KerasCallback(every=10, held_batch=(x[:64], y[:64]))
    model.fit(x, y, batch_size=64, epochs=20, verbose=0, callbacks=[cb])
    lrs = [s.lr for s in cb.history().samples]
    assert lrs[0] == pytest.approx(1.0, rel=1e-3) and lrs[-1] < 0.05  # the schedule, evaluated at each step
    (f,) = cb.report().by_code("ND602")
    assert f.evidence["peak_lr"] == pytest.approx(1.0, rel=1e-3) and f.evidence["lr"] > 0.9
    assert "CosineDecay schedule, whose peak was 1" in f.recommendation and "peak of about 0.1" in f.recommendation
    assert "CosineDecay(0.1" in f.snippet and "keras.optimizers.SGD(" in f.snippet


def test_validation_loss_of_each_epoch_is_recorded_and_drawn(digits, tmp_path):
    x, y = digits
    model = mlp(1e-3)
    log = tmp_path / "run.jsonl"
    cb = netdoctor.KerasCallback(every=10, log_to=str(log))
    hist = model.fit(x[:1280], y[:1280], batch_size=64, epochs=3, verbose=0, callbacks=[cb],
                     validation_data=(x[1280:], y[1280:]))
    h = cb.history()
    assert h.val_steps.tolist() == [19, 39, 59]
    np.testing.assert_allclose(h.val_values, hist.history["val_loss"], rtol=1e-6)
    from netdoctor.monitor import report_from_log
    from netdoctor.monitor.log import read_log

    replayed, _ = read_log(log)
    np.testing.assert_allclose(replayed.val_values, h.val_values)
    html = cb.report().to_html()
    assert html.count('class="val-point"') == 3
    assert report_from_log(log).findings == ()


@pytest.mark.parametrize("outputs,compile_after", [(1, 0.0), (2, 0.0), (2, None)])
def test_held_pass_leaves_fit_logs_as_without_the_callback(outputs, compile_after, monkeypatch):
    """The held-batch pass calls compute_loss, which updates (and at its first call builds) a
    multi-output model's per-output loss trackers: fit's logs must read as without the callback,
    the first epoch included."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 8)).astype("float32")
    y1, y2 = rng.standard_normal((256, 1)).astype("float32"), rng.integers(0, 3, 256)

    def run(callbacks):
        keras.utils.set_random_seed(0)
        inp = keras.Input((8,))
        h = keras.layers.Dense(16, activation="relu")(inp)
        a = keras.layers.Dense(1, name="a")(h)
        if outputs == 1:
            model = keras.Model(inp, a)
            model.compile("sgd", loss="mse")
            return model.fit(x, y1, batch_size=32, epochs=2, verbose=0, callbacks=callbacks).history
        model = keras.Model(inp, [a, keras.layers.Dense(3, name="b")(h)])
        model.compile("sgd", loss=["mse", keras.losses.SparseCategoricalCrossentropy(from_logits=True)])
        return model.fit(x, [y1, y2], batch_size=32, epochs=2, verbose=0, callbacks=callbacks).history

    from netdoctor.adapters.keras import held as held_module

    # 0.0: compiled from the first sample on; None: eager throughout, as a short fit is. Never by the
    # clock: on a loaded machine 16 eager passes outgrow COMPILE_AFTER_S and the pass compiles mid-fit
    monkeypatch.setattr(held_module, "COMPILE_AFTER_S", math.inf if compile_after is None else compile_after)
    held = (x[:64], y1[:64] if outputs == 1 else [y1[:64], y2[:64]])
    cb = netdoctor.KerasCallback(every=1, held_batch=held)
    with_cb = run([cb])
    assert with_cb == run([])
    assert cb.history().samples[-1].grad_norm > 0 and not cb._pass.eager
    # a single output's compiled pass touches no tracker: nothing to put back (eager: always put back)
    assert cb._restore is ((outputs == 2) if compile_after is not None else None)
    if outputs == 2:
        assert set(with_cb) == {"loss", "a_loss", "b_loss"}
