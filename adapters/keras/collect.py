"""Keras 3 adapter: one probe forward/backward pass of a Keras model -> ``ModelSnapshot``.

``netdoctor.check(model, x, y)`` calls :func:`collect` with the union of the selected rules'
needs. The adapter

* flattens the model's functional graph (Sequential, Functional, nested models expanded as
  ``"outer/inner"``; see ``graph``) and runs it once in training mode on the first
  ``settings.max_samples`` samples, measuring every layer's input and output on the way
  (``run``) inside the same pass the gradient tape records (``grad``);
* reads parameters, their gradients, fans, initializers and duplicate units
  (``records``), the loss (``loss``) and the data (``io``);
* puts back everything the pass changed: BatchNormalization moving statistics, seed
  generators, the global seed generator, Python's and numpy's RNGs (``state``). The
  compiled loss and the optimizer are never touched.

Subclassed models (a Python ``call``) cannot be traced: their weights and gradients are
checked and ``missing[Need.ACTIVATIONS]`` says why the activation rules were skipped.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from netdoctor.adapters._common import REASON_NO_TRAINABLE, REASON_SYNTHETIC, NeedsLedger
from netdoctor.adapters._lossprobe import MAX_ENTRIES as LOSS_PROBE_MAX
from netdoctor.adapters._lossprobe import measure as measure_loss_probe
from netdoctor.adapters.keras.grad import grad_fn, no_grad_forward
from netdoctor.adapters.keras.graph import Structure, analyze, functional_of, trace
from netdoctor.adapters.keras.io import (
    call_subclassed,
    data_stats,
    ensure_built,
    model_inputs,
    num_samples,
    target_kind,
    to_tensors,
)
from netdoctor.adapters.keras.inner import InnerCalls
from netdoctor.adapters.keras.loss import loss_measures, plan
from netdoctor.adapters.keras.recurrent import TimeGrowth
from netdoctor.adapters.keras.records import (
    ParamSource,
    graph_records,
    subclassed_records,
    suppressions,
)
from netdoctor.adapters.keras.run import Recorder, run_graph
from netdoctor.adapters.keras.state import StateGuard, all_layers
from netdoctor.adapters.keras.stats import looks_like, tensor_stats
from netdoctor.errors import DataError
from netdoctor.snapshot import (
    KIND_EMBEDDING,
    KIND_OTHER,
    WEIGHT_KINDS,
    LayerRecord,
    ModelSnapshot,
    Need,
    OutputInfo,
    ProbeSettings,
    TensorStats,
)

_FORWARD_NEEDS = frozenset({Need.ACTIVATIONS, Need.GRADIENTS, Need.LOSS})
_PROBABILITY_GUESS = {"softmax": ("probabilities",), "sigmoid": ("sigmoid", "probabilities"),
                      "log_softmax": ("log_probabilities",)}


def collect(
    model: Any,
    *,
    inputs: Any,
    targets: Any,
    loss_fn: Any,
    needs: frozenset[Need],
    settings: ProbeSettings,
    input_shape: Any,
) -> ModelSnapshot:
    """Measure ``model`` on one probe batch (see the module docstring and ``netdoctor.snapshot``).

    Raises:
        DataError: Inputs that do not fit the model (names the layer and both shapes).
        LossError: The loss raised or returned no tensor.
    """
    import keras

    needs = frozenset(needs)
    backend = keras.backend.backend()
    n = max(int(settings.max_samples), 1)
    ensure_built(model, inputs, input_shape, n, settings.seed)
    tr = trace(model)
    fn = functional_of(model) if tr is not None else None
    guard = StateGuard(model, settings.seed)
    try:
        guard.seed_generators()
        return _collect(model, tr, fn, inputs, targets, loss_fn, needs, settings, input_shape, backend, n)
    finally:
        guard.restore()


def _collect(model: Any, tr: Any, fn: Any, inputs: Any, targets: Any, loss_fn: Any, needs: frozenset[Need],
             settings: ProbeSettings, input_shape: Any, backend: str, n: int) -> ModelSnapshot:
    from keras import ops, tree

    synthetic = inputs is None
    x_model = model_inputs(model, tr, fn, inputs, input_shape, n, settings.seed)
    y = to_tensors(targets, n) if targets is not None else None
    if y is not None and not synthetic:
        nx, ny = num_samples(x_model), num_samples(y)
        if nx is not None and ny is not None and nx != ny:
            raise DataError(f"the inputs have {nx} samples but the targets have {ny}; pass matching x and y")
    opaque = {s.name for s in tr.steps if s.kind == KIND_OTHER and _owns_weights(s.op)} if tr else set()
    st = analyze(tr, opaque) if tr is not None else None
    ledger = NeedsLedger(needs)
    notes: list[str] = []
    want_acts = Need.ACTIVATIONS in needs and tr is not None
    if Need.ACTIVATIONS in needs and tr is None:
        ledger.miss(Need.ACTIVATIONS, (
            f"{type(model).__name__} is a subclassed keras.Model: its call() cannot be traced into a layer "
            "graph, so per-layer activations were not measured (weights and gradients were); build it with "
            "the Functional API to run the activation rules"
        ))
    gfn = grad_fn(backend)
    trainable = list(model.trainable_variables)
    want_grads = Need.GRADIENTS in needs and gfn is not None and bool(trainable)
    if Need.GRADIENTS in needs and gfn is None:
        ledger.miss(Need.GRADIENTS, f"gradients are not supported on the {backend} Keras backend; use tensorflow or torch")
    elif Need.GRADIENTS in needs and not trainable:
        ledger.miss(Need.GRADIENTS, REASON_NO_TRAINABLE)
    # per-unit vectors where ND101 reads them: the inputs of the weight layers the model input reaches
    # through no other weight layer (as the torch adapter takes them); hidden inputs get scalars
    unit_keys = {k for s in tr.steps if s.kind in WEIGHT_KINDS and s.kind != KIND_EMBEDDING
                 and (st.entry.get(s.name) or st.consumes_input.get(s.name))
                 for k in s.in_keys[:1]} if tr is not None and st is not None else set()
    channels_first = tr is not None and any(getattr(s.op, "data_format", "") == "channels_first" for s in tr.steps)
    # the main output is reduced per unit when the forward pass records it: the output's own statistics
    # (below) are then the recorder's, not a second reduction of the same tensor
    sparsity = Need.SPARSITY in needs
    recorder = Recorder(settings, unit_keys | set(tr.output_keys[:1]), channels_first, sparsity) if want_acts else None
    result: dict[str, Any] = {}
    time_growth = TimeGrowth(tr, backend, enabled=want_grads)
    inner_calls = InnerCalls(tr)

    def forward(pause: Any) -> tuple[Any, Any]:
        if tr is not None:
            with inner_calls:
                outs = run_graph(tr, x_model, pause=pause, recorder=time_growth.wrap(recorder))
            packed = tree.pack_sequence_as(fn._outputs_struct, outs)
            out_struct = packed[0] if isinstance(packed, (list, tuple)) and len(packed) == 1 else packed
        else:
            out_struct = call_subclassed(model, x_model)
            outs = tree.flatten(out_struct)
        main = outs[0]
        with pause():
            ostats = (recorder.stats(main, per_unit=True)[0] if recorder is not None and not channels_first
                      else tensor_stats(main, max_units=settings.max_units, per_unit=True, sparsity=sparsity)[0])
            looks = looks_like(main, ostats)
            ymain = tree.flatten(y)[0] if y is not None else None
            units = int(main.shape[-1]) if len(main.shape) >= 2 else 1
            kind = target_kind(ymain, units)
            lp = plan(model, loss_fn, y, out_struct, looks, kind, settings.seed)
        result.update(outs=outs, ostats=ostats, looks=looks, plan=lp, kind=kind)
        small = _is_float(main) and int(np.prod(main.shape)) <= LOSS_PROBE_MAX
        result["watch_is_logits"] = False
        # TensorFlow: a softmax/sigmoid output carries its logits, which Keras' cross-entropies read instead of
        # the probabilities; the gradient at the logits is the one both paths share.
        logits = getattr(main, "_keras_logits", None)
        watch = logits if logits is not None and tuple(logits.shape) == tuple(main.shape) else main
        result["watch_is_logits"] = watch is not main
        result["out_struct"] = out_struct
        return lp.compute(y, out_struct), watch if small else None

    grads_by_id: dict[int, np.ndarray] | None = None
    out_grad: np.ndarray | None = None
    loss_value = float("nan")
    if needs & _FORWARD_NEEDS:
        if want_grads:
            loss, grads, out_grad = gfn(forward, trainable)
            grads_by_id = {id(v): g for v, g in zip(trainable, grads)}
            ledger.got(Need.GRADIENTS, *(needs & {Need.GRADIENT_MOMENTS}))
        else:
            loss, _ = no_grad_forward(forward)
        loss_value = float(np.asarray(ops.convert_to_numpy(loss)).reshape(-1)[0])
        if want_acts:
            ledger.got(Need.ACTIVATIONS)
    ledger.got(*(needs & {Need.SPARSITY}))

    src = ParamSource(
        trainable_ids={id(v) for v in trainable},
        grads=grads_by_id,
        values=bool(needs & {Need.WEIGHTS, Need.GRADIENTS}),
        grad_moments=Need.GRADIENT_MOMENTS in needs,
        sparsity=sparsity,
        seed_state_ids={id(sg.state) for layer in all_layers(model) for sg in getattr(layer, "_seed_generators", ())},
    )
    if src.values:
        ledger.got(Need.WEIGHTS)
    if tr is not None:
        layers = graph_records(tr, st, recorder.measured if recorder else None, src)
        layers = inner_calls.annotate(time_growth.annotate(layers, settings.seed))
    else:
        layers = subclassed_records(model, src)
        notes.append("subclassed model: layers are listed in declaration order, not traced execution order")

    loss_info = None
    output = _output_info(tr, st, fn, model, layers, result)
    if "plan" in result:
        lp = result["plan"]
        result["sum_ratio"], unit_range = loss_measures(lp, y, result.pop("out_struct", None), loss_value)
        loss_info = replace(_with_value(lp.info, loss_value), unit_range=unit_range)
        if lp.note:
            notes.append(lp.note)
        if lp.info.source == "default":
            no_loss = (f"no loss was given: netdoctor used its default {lp.info.name} for {result['kind']} targets; "
                       "pass loss_fn= or compile the model to check the loss")
        else:
            no_loss = "no targets were given, so the loss could not be evaluated; pass targets (y)"
        ledger.settle(Need.LOSS, lp.info.source == "user", no_loss)
    data = None
    if Need.DATA in needs and not synthetic:
        units = fn._outputs[0].shape[-1] if fn is not None and len(fn._outputs[0].shape) >= 2 else None
        data = data_stats(inputs, targets, n, settings, result.get("kind"), units, channels_first,
                          known=_measured_input(recorder, x_model), sparsity=sparsity)
    ledger.settle(Need.DATA, not synthetic, REASON_SYNTHETIC)
    loss_probe = _loss_probe(result, out_grad, y)
    if output is not None and result.get("watch_is_logits"):
        output = replace(output, carries_logits=True)
    weights_all = [v for v in model.weights]
    return ModelSnapshot(
        framework="keras",
        framework_version=_version(backend),
        model_class=type(model).__name__,
        layers=tuple(layers),
        collected=frozenset(ledger.collected),
        missing=ledger.missing(),
        param_count=sum(math.prod(int(d) for d in v.shape) for v in weights_all),
        trainable_param_count=sum(math.prod(int(d) for d in v.shape) for v in trainable),
        batch_size=num_samples(x_model) or 0,
        synthetic_inputs=synthetic,
        data=data,
        output=output,
        loss=loss_info,
        loss_probe=loss_probe,
        residual=st.residual if st is not None else None,
        suppressions=suppressions(model, tr),
        notes=tuple(notes),
    )


def _is_float(t: Any) -> bool:
    return "float" in str(getattr(t, "dtype", ""))


def _measured_input(recorder: Recorder | None, x_model: Any) -> Any:
    """``known`` for :func:`data_stats`: the probe pass's per-unit statistics of the one model input tensor,
    for the data leaf it was made from unchanged (same shape and dtype: the same numbers), else ``None``."""
    if recorder is None or not isinstance(x_model, list) or len(x_model) != 1:
        return None
    from keras import backend as K

    t = x_model[0]

    def known(name: str, a: Any) -> TensorStats | None:
        if name != "x" or len(t.shape) < 2 or tuple(a.shape) != tuple(t.shape) \
                or K.standardize_dtype(a.dtype) != K.standardize_dtype(t.dtype):
            return None
        return recorder.stats(t, per_unit=True)[0]

    return known


def _loss_probe(result: dict[str, Any], out_grad: np.ndarray | None, y: Any) -> Any:
    """The loss probe (see :mod:`netdoctor.adapters._lossprobe`) from the output, its loss gradient and the targets."""
    from keras import ops, tree

    outs = result.get("outs")
    if not outs or not _is_float(outs[0]) or int(np.prod(outs[0].shape)) > LOSS_PROBE_MAX:
        return None
    main = np.asarray(ops.convert_to_numpy(outs[0]))
    ymain = np.asarray(ops.convert_to_numpy(tree.flatten(y)[0])) if y is not None else None
    return measure_loss_probe(main, out_grad, ymain, result.get("kind"),
                              grad_at_logits=bool(result.get("watch_is_logits")), sum_ratio=result.get("sum_ratio"))


def _owns_weights(op: Any) -> bool:
    try:
        return bool(op.weights)
    except AttributeError:
        return False


def _with_value(info: Any, value: float) -> Any:
    from dataclasses import replace

    return replace(info, value=value)


def _version(backend: str) -> str:
    import keras

    bver = ""
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            bver = tf.__version__
        elif backend == "torch":
            import torch

            bver = torch.__version__
        elif backend == "jax":
            import jax

            bver = jax.__version__
    except ImportError:  # pragma: no cover
        pass
    return f"{keras.__version__} ({backend} {bver})".replace(" )", ")")


def _output_info(tr: Any, st: Structure | None, fn: Any, model: Any, layers: list[LayerRecord],
                 result: dict[str, Any]) -> OutputInfo:
    looks = result.get("looks", "unknown")
    if st is not None:
        final, final_layer = st.final_activation, st.final_layer
        num = len(tr.output_keys)
    else:
        last = next((r for r in reversed(layers) if r.kind in WEIGHT_KINDS), None)
        guess = last.activation if last is not None else None
        final = guess if guess in _PROBABILITY_GUESS and looks in _PROBABILITY_GUESS[guess] else None
        final_layer = None
        num = len(result.get("outs", ())) or 1
    stats = result.get("ostats")
    if stats is None:
        shape = tuple(fn._outputs[0].shape) if fn is not None else ()
        stats = TensorStats(shape=tuple(0 if d is None else int(d) for d in shape))
    return OutputInfo(stats=stats, looks_like=looks, final_activation=final, final_layer=final_layer,
                      num_outputs=num)
