"""Keras 3 training monitor: ``model.fit(..., callbacks=[netdoctor.KerasCallback(every=50)])``.

What is measured, and how (Keras callbacks never see gradients or the training batch):

* **Loss of every step**, from the step itself: on the TensorFlow backend the callback wraps
  the model's ``compute_loss`` for the duration of ``fit`` (the train function is retraced
  once at the start and once more at the next ``fit`` after it) so that each step's own loss
  is stored in a scalar variable, read after the batch (no per-step conversion to numbers).
  ``logs["loss"]`` is Keras 3's float32 running mean of the epoch; rebuilding per-step losses
  from it (``k * mean_k - (k - 1) * mean_(k-1)``) is rounding noise late in a long epoch, so
  that is only the fallback on other backends or a model whose ``compute_loss`` cannot be
  wrapped.
* **Update-to-weight ratios** from weight deltas: on a sampled step the weight matrices are
  copied in ``on_train_batch_begin`` and compared in ``on_train_batch_end``, so the ratio
  is exactly that of the real optimizer step on the real batch.
* **Gradient norms and activation health** need data: pass ``held_batch=(x, y)`` (up to 64
  samples are used). On sampled steps one extra forward+backward pass runs on that batch in
  inference mode (``training=False``: dropout off, BatchNorm statistics untouched), at the
  weights the sampled step starts from (``on_train_batch_begin``), through
  a functional view of the model that also returns the outputs of activation layers. This
  is the only cost that grows with the model; at ``every=50`` it is one extra pass per 50
  steps. Without ``held_batch`` the gradient rules (ND604, ND608, ND609) are reported as
  skipped, with this reason. The gradient pass uses ``tf.GradientTape`` (TensorFlow backend),
  compiled with ``tf.function`` once its eager runs have cost about what tracing it does
  (:mod:`netdoctor.adapters.keras.held`).

One callback instance watches one ``fit`` call: a second ``fit`` with the same instance starts
a new history (and rewrites ``log_to``). With ``steps_per_execution=k`` a step is ``k`` batches.

``on_error``: ``"warn"`` logs findings; ``"stop"`` sets ``model.stop_training`` when a
finding at ``fail_on`` fires (Keras ends the epoch loop cleanly, ``on_train_end`` runs);
``"raise"`` raises :class:`netdoctor.monitor.TrainingError` out of ``fit`` (the log is
closed first).
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Iterable

import keras
import numpy as np

from netdoctor.config import Config
from netdoctor.findings import Report
from netdoctor.history import DYING_ACTIVATIONS, SATURATING_ACTIVATIONS, History, Sample
from netdoctor.monitor.core import MonitorCore, TrainingError, logger
from netdoctor.adapters._common import saturation_threshold
from netdoctor.adapters.keras.held import HeldPass

NO_HELD_BATCH = ("gradient norms were not measured: Keras callbacks cannot see gradients; pass "
                 "KerasCallback(held_batch=(x, y)) to measure them on a held batch")
NO_HELD_ACTIVATIONS = ("activation health was not measured: Keras callbacks cannot see the training batch's "
                       "activations; pass KerasCallback(held_batch=(x, y)) to measure them on a held batch")
START_WARNING = ("netdoctor: without held_batch the gradient and activation rules (ND604, ND607-ND610) are off "
                 "for this run; pass KerasCallback(held_batch=(x_val[:64], y_val[:64])) to turn them on")


def _layer_info(layer: Any) -> tuple[str, str | None]:
    """(kind, activation applied to the layer's output) using the probe adapter's helpers."""
    try:
        from netdoctor.adapters.keras.kinds import activation_name, fused_activation, kind_of
    except ImportError:  # pragma: no cover - helper module missing
        return "other", None
    kind = kind_of(layer)
    act = activation_name(layer) if kind == "activation" else fused_activation(layer)
    return kind, act


class KerasCallback(keras.callbacks.Callback):
    """Watches ``model.fit``; see the module docstring.

    Args:
        every: Sampling period in batches (default 50).
        on_error: ``"warn"``, ``"stop"`` or ``"raise"`` when a finding at ``fail_on`` fires.
        fail_on: Severity that triggers ``on_error`` (default ``"error"``).
        log_to: JSONL log path.
        live: Live status line: ``"auto"`` (only on a terminal and with ``fit(verbose=0)``,
            so it does not fight Keras' progress bar), ``True`` or ``False``.
        print_report: Print the text report to stderr when training ends.
        held_batch: ``(x, y)`` used for gradient norms and activation health (see above).
        select: Rule codes/prefixes/names to run.
        ignore: Rule codes/prefixes/names not to run.
        config: A full :class:`~netdoctor.config.Config`.
        saturation_preact: Pre-activation magnitude beyond which a sigmoid/tanh unit is saturated.
        max_samples: Samples kept in memory.
    """

    def __init__(self, every: int = 50, on_error: str = "warn", *, fail_on: str = "error",
                 log_to: str | os.PathLike | None = None, live: bool | str = "auto", print_report: bool = False,
                 held_batch: tuple[Any, Any] | None = None, select: Iterable[str] | None = None,
                 ignore: Iterable[str] | None = None, config: Config | None = None,
                 saturation_preact: float = 5.0, max_samples: int = 256) -> None:
        super().__init__()
        self._opts = dict(every=every, on_error=on_error, fail_on=fail_on, log_to=log_to,
                          print_report=print_report, select=select, ignore=ignore, config=config,
                          max_samples=max_samples)
        self._live = live
        self._held = held_batch
        self._preact = saturation_preact
        self.core = MonitorCore("keras", live=False, **self._opts)  # validates the options now
        self.every = self.core.every

    # -- Keras hooks ---------------------------------------------------------------
    def on_train_begin(self, logs: dict | None = None) -> None:
        live = self._live
        if live == "auto" and (self.params or {}).get("verbose", 1) != 0:
            live = False
        self.core = MonitorCore("keras", live=live, **self._opts)
        self._t = 0
        self._pending: list[tuple[int, int, Any]] = []  # (global step, index in epoch, loss log)
        self._start = 0
        self._prev_mean: tuple[int, float] = (-1, 0.0)   # (index in epoch, running mean)
        self._before: list[np.ndarray] | None = None
        self._probed: tuple[Any, Any, Any, Any] = (None, None, None, None)
        self._step_loss = _capture_step_loss(self.model)
        self._setup()

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self._t % self.every:
            return
        t0 = time.perf_counter()
        if self._weights:
            self._before = [_np(v) for v in self._weights]
        if self._held is not None:  # at the weights this step starts from, like a real backward pass
            self._probed = self._probe(len(self._layer_names))
        self.core.overhead_s += time.perf_counter() - t0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        t = self._t
        loss = self._step_loss.read_value() if self._step_loss is not None else (logs or {}).get("loss")
        self._pending.append((t, -1 if self._step_loss is not None else int(batch), loss))
        self._t = t + 1
        if t % self.every == 0:
            try:
                self._sample(t)
            except TrainingError:
                self._finish()
                raise
            if self.core.should_stop:
                self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get("val_loss")  # present when fit() has validation data
        if value is not None and self.core.is_main and not self.core.closed:
            self.core.record_validation(max(self._t - 1, 0), float(value))

    def on_train_end(self, logs: dict | None = None) -> None:
        self._finish()

    # -- public API ----------------------------------------------------------------
    def report(self) -> Report:
        """The findings of the run as a :class:`~netdoctor.findings.Report`."""
        return self.core.report()

    def history(self) -> History:
        """The recorded :class:`~netdoctor.history.History`."""
        return self.core.history()

    def plot(self, path: str | os.PathLike, **kwargs: Any) -> str:
        """Write the loss curve PNG with the steps where findings fired (needs matplotlib)."""
        return self.core.plot(path, **kwargs)

    # -- internals -----------------------------------------------------------------
    def _setup(self) -> None:
        model = self.model
        owner: dict[int, Any] = {}
        layers = list(model._flatten_layers(include_self=False)) if hasattr(model, "_flatten_layers") else list(model.layers)
        for layer in layers:  # pre-order: deeper layers overwrite their parents
            for v in layer.trainable_weights:
                owner[id(v)] = layer
        groups: dict[str, list[Any]] = {}
        kinds: dict[str, str] = {}
        for v in model.trainable_weights:
            if len(v.shape) >= 2:
                lay = owner.get(id(v))
                name = lay.name if lay is not None else v.path.rsplit("/", 1)[0]
                groups.setdefault(name, []).append(v)
                kinds[name] = _layer_info(lay)[0] if lay is not None else "other"
        self._layer_names = list(groups)
        self._weights = [v for vs in groups.values() for v in vs]
        self._slot = np.asarray([i for i, vs in enumerate(groups.values()) for _ in vs], dtype=np.int64)
        self._acts: list[tuple[str, str, tuple[float, float] | None]] = []
        self._act_output: list[bool] = []
        self._feature_model = None
        notes: list[str] = []
        self._pass = None
        self._restore: bool | None = None  # whether the held pass changes the metric trackers (None: not seen)
        if self._held is not None:
            self._build_feature_model(layers, notes)
            self._pass = HeldPass(model, *self._held, self._feature_model, [thr for _, _, thr in self._acts])
            pos = {id(v): i for i, v in enumerate(model.trainable_weights)}
            self._weight_pos = np.asarray([pos[id(v)] for v in self._weights], dtype=np.int64)
        else:
            notes += [NO_HELD_BATCH, NO_HELD_ACTIVATIONS]
            logger.warning(START_WARNING)
        self.core.start({
            "framework_version": f"{keras.__version__} ({keras.backend.backend()})",
            "model_class": type(model).__name__, "param_count": int(model.count_params()),
            "trainable_param_count": int(sum(int(np.prod(v.shape)) for v in model.trainable_weights)),
            "layers": self._layer_names, "layer_kinds": [kinds[n] for n in self._layer_names],
            "act_layers": [a[0] for a in self._acts], "act_kinds": [a[1] for a in self._acts],
            "act_output": self._act_output if len(self._act_output) == len(self._acts) else [],
            "optimizer": type(getattr(model, "optimizer", None)).__name__ if getattr(model, "optimizer", None) else None,
            "scheduler": _schedule_name(getattr(model, "optimizer", None)),
            "grad_source": "held-batch" if self._held is not None else None, "notes": notes,
        })

    def _build_feature_model(self, layers: list[Any], notes: list[str]) -> None:
        x, y = self._held
        self._held = (_head(x), _head(y))
        model = self.model
        outputs = []
        try:
            inputs = model.inputs
            for layer in model.layers:
                _, act = _layer_info(layer)
                if act in DYING_ACTIVATIONS or act in SATURATING_ACTIVATIONS:
                    outputs.append(layer.output)
                    self._acts.append((layer.name, act, saturation_threshold(act, self._preact)))
                    self._act_output.append(any(layer.output is o for o in model.outputs))
            if outputs:
                ins = inputs[0] if len(inputs) == 1 else inputs
                self._feature_model = keras.Model(ins, [model.outputs[0] if len(model.outputs) == 1 else model.outputs]
                                                  + outputs)
        except (AttributeError, ValueError, TypeError):
            self._acts, self._act_output = [], []
            notes.append("activation health was not measured: the model is not a functional/Sequential graph")

    def _losses(self, pending: list[tuple[int, int, Any]]) -> np.ndarray:
        """Per-step losses from the epoch running means in ``logs["loss"]``."""
        out = np.full(len(pending), math.nan)
        prev_i, prev_m = self._prev_mean
        for n, (_, i, loss) in enumerate(pending):
            if loss is None:
                continue
            m = float(_np(loss))
            if i < 0:  # the step's own loss
                out[n] = m
                continue
            if i <= prev_i:  # a new epoch (the running mean was reset)
                prev_i, prev_m = -1, 0.0
            k, k0 = i + 1, prev_i + 1
            out[n] = (k * m - k0 * prev_m) / (k - k0) if k > k0 else m
            prev_i, prev_m = i, m
        self._prev_mean = (prev_i, prev_m)
        return out

    def _sample(self, t: int) -> None:
        t0 = time.perf_counter()
        pend, self._pending = self._pending, []
        start, self._start = self._start, t + 1
        losses = self._losses(pend)
        L = len(self._layer_names)
        after = [_np(v) for v in self._weights]
        w_sq = np.zeros(L)
        np.add.at(w_sq, self._slot, [float(np.sum(np.square(a, dtype=np.float64))) for a in after])
        update = None
        if self._before is not None and L:
            d_sq, b_sq = np.zeros(L), np.zeros(L)
            np.add.at(d_sq, self._slot, [float(np.sum(np.square(a - b, dtype=np.float64)))
                                         for a, b in zip(after, self._before)])
            np.add.at(b_sq, self._slot, [float(np.sum(np.square(b, dtype=np.float64))) for b in self._before])
            with np.errstate(invalid="ignore", divide="ignore"):
                update = np.sqrt(d_sq) / np.sqrt(b_sq)
        self._before = None
        grad_norm, layer_grad, dead, sat = self._probed
        self._probed = (None, None, None, None)
        lr = None
        opt = getattr(self.model, "optimizer", None)
        if opt is not None:
            try:
                lr = float(_np(opt.learning_rate))
            except (AttributeError, TypeError, ValueError):
                lr = None
        sample = Sample(step=t, grad_norm=grad_norm, layer_grad=layer_grad, layer_weight=np.sqrt(w_sq),
                        layer_update=update, act_dead=dead, act_saturated=sat, lr=lr)
        self.core.overhead_s += time.perf_counter() - t0
        self.core.record(start, losses, sample)

    def _probe(self, L: int) -> tuple[float, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Gradient norms and activation health on the held batch (see :class:`HeldPass`)."""
        model = self.model
        # compute_loss updates the per-output loss trackers of a multi-output model (and builds
        # them at its first call): they go back to what they were, a tracker the pass created to
        # its initial zeros, so fit's logs read as without the callback
        compiled = self._pass.compiled_next
        saved = {id(v): _np(v) for v in model.metrics_variables} if self._restore is not False or not compiled else None
        sq, health = self._pass()
        if saved is not None:
            after = model.metrics_variables
            if self._restore is None and compiled and not self._pass.eager:
                # the compiled pass runs the same ops every time: if its first run left every tracker
                # as it was and made none, so will the next ones (reading and writing them back costs
                # ~0.3 ms a sample); a tracker made later by someone else is not in its graph
                self._restore = len(after) != len(saved) or any(
                    not np.array_equal(_np(v), saved[id(v)]) for v in after)
            for v in after:
                val = saved.get(id(v))
                v.assign(val if val is not None else np.zeros(tuple(v.shape), v.dtype))
        g_sq = np.zeros(L)
        np.add.at(g_sq, self._slot, sq[self._weight_pos])
        dead = sat = None
        if self._acts:
            dying = np.asarray([thr is None for _, _, thr in self._acts])
            dead, sat = np.where(dying, health, np.nan), np.where(dying, np.nan, health)
        return float(np.sqrt(sq.sum())), np.sqrt(g_sq), dead, sat

    def _finish(self) -> None:
        if self.core.closed:
            return
        if self._step_loss is not None:
            _release_step_loss(self.model)
        pend, self._pending = self._pending, []
        self.core.close(self._start, self._losses(pend) if pend else ())


def _schedule_name(optimizer: Any) -> str | None:
    """Class name of the optimizer's ``LearningRateSchedule``, if it has one."""
    lr = getattr(optimizer, "_learning_rate", None)
    return type(lr).__name__ if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule) else None


def _capture_step_loss(model: Any) -> Any:
    """Wrap ``model.compute_loss`` so each train step stores its own loss in a TF variable.

    Returns the variable, or ``None`` when not possible (another backend): the callback then
    falls back to the running means in ``logs``. The train function is retraced so the
    wrapper is in it; :func:`_release_step_loss` undoes both.
    """
    if keras.backend.backend() != "tensorflow" or "compute_loss" in vars(model):
        return None
    import tensorflow as tf

    var = tf.Variable(float("nan"), trainable=False, dtype=tf.float32)
    original = model.compute_loss

    def compute_loss(*args: Any, **kwargs: Any) -> Any:
        loss = original(*args, **kwargs)
        if kwargs.get("training", True):
            var.assign(tf.cast(tf.reshape(loss, ()), tf.float32))
        return loss

    object.__setattr__(model, "compute_loss", compute_loss)
    model._nd_step_loss = True
    model.make_train_function(force=True)
    return var


def _release_step_loss(model: Any) -> None:
    """Restore the model's own ``compute_loss`` and drop the train function traced with the wrapper."""
    if "compute_loss" in vars(model):
        object.__delattr__(model, "compute_loss")
    if vars(model).pop("_nd_step_loss", None):
        model.train_function = None


def _np(v: Any) -> np.ndarray:
    value = getattr(v, "value", v)  # a keras.Variable -> its backend tensor
    return np.asarray(value.numpy() if hasattr(value, "numpy") else keras.ops.convert_to_numpy(value))


def _head(a: Any, n: int = 64) -> Any:
    """The first ``n`` samples of an array or of each array in a list/tuple/dict."""
    if isinstance(a, dict):
        return {k: _head(v, n) for k, v in a.items()}
    if isinstance(a, (list, tuple)):
        return type(a)(_head(v, n) for v in a)
    return a[:n]
