"""PyTorch adapter: one probe forward and backward pass -> :class:`ModelSnapshot`.

:func:`collect` runs the model once in training mode on the probe batch (dropout active,
BatchNorm on batch statistics, seeded), with module hooks and a ``TorchFunctionMode`` tracing
the data flow (see :mod:`~netdoctor.adapters.torch.trace`); then one backward pass of the loss
through ``torch.autograd.grad`` (``.grad`` of the parameters is never touched). Every statistic
is reduced on the model's device; only scalars and short per-unit vectors reach the host.
Afterwards the model is bit-for-bit as before: parameters, buffers, train/eval flags,
``requires_grad``, ``.grad``, hooks and the global RNG state.

Cost: the hooks and the function mode add about 10% to a forward pass (a no-op
``TorchFunctionMode`` costs the same); the statistics add a few single-pass reductions
per recorded tensor. ``bench/bench_check.py`` measures the whole check against a plain
training step.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import dataclasses
from typing import Any

import torch
from torch import nn

from netdoctor.adapters._common import (
    REASON_LOSS_DETACHED,
    REASON_NO_LOSS,
    REASON_SURROGATE,
    REASON_NO_TRAINABLE,
    REASON_SYNTHETIC,
    NeedsLedger,
    target_kind,
)
from netdoctor.adapters._lossprobe import MAX_ENTRIES, OutputRows
from netdoctor.adapters._lossprobe import measure as measure_loss_probe
from netdoctor.adapters.torch.errors import DATA_EXCEPTIONS, forward_error
from netdoctor.adapters.torch.flow import iter_tensors
from netdoctor.adapters.torch.graph import Graph, ParamStats, all_records, build_layers
from netdoctor.adapters.torch.io import (
    ProbeInputs,
    data_stats,
    first_target,
    main_output,
    model_device_dtype,
    output_info,
    output_rows,
    prepare_inputs,
    prepare_targets,
    reads_input_only,
    synthetic_inputs,
)
from netdoctor.adapters.torch.kinds import module_kind
from netdoctor.adapters.torch.loss import compute_loss, loss_additivity, step_loss
from netdoctor.adapters.torch.recurrent import TimeGrowth
from netdoctor.adapters.torch.state import (
    SavedState, cuda_devices, lazy_modules, model_hooks, parameters_and_buffers, seeded,
)
from netdoctor.adapters.torch.step import LossWatch, split_batch, to_device
from netdoctor.adapters.torch.trace import Probe
from netdoctor.errors import UnsupportedModelError
from netdoctor.integrations.lightning_module import TrainingStep
from netdoctor.snapshot import KIND_CONV, WEIGHT_KINDS, DataStats, ModelSnapshot, Need, ProbeSettings
from netdoctor.suppress import marks_of


def collect(
    model: nn.Module,
    *,
    inputs: Any,
    targets: Any,
    loss_fn: Any,
    needs: frozenset[Need],
    settings: ProbeSettings,
    input_shape: Any,
) -> ModelSnapshot:
    """Measure ``model`` on one probe batch.

    Args:
        model: The ``torch.nn.Module`` to check.
        inputs: A tensor or array, a tuple/list of them (positional inputs) or a dict
            (keyword inputs); ``None`` to synthesize seeded N(0, 1) inputs from ``input_shape``.
        targets: Targets for the loss, or ``None``.
        loss_fn: ``loss_fn(output, targets) -> scalar``; ``None`` for the documented default
            (see :mod:`~netdoctor.adapters.torch.loss`).
        needs: What the selected rules need; statistics nobody needs are not computed.
        settings: Probe settings (batch cap, unit cap, saturation cut-off, seed).
        input_shape: Shape of one sample (or a tuple of shapes) for synthetic inputs.

    Returns:
        The snapshot; ``collected``/``missing`` say what was measured and why not.

    Raises:
        netdoctor.errors.DataError: No inputs, unusable inputs, or inputs the model rejects.
        netdoctor.errors.LossError: The loss raised or did not return a floating scalar.
    """
    if not isinstance(model, nn.Module):
        raise UnsupportedModelError(f"expected a torch.nn.Module, got {type(model).__name__}")
    if type(model).__name__ == "OptimizedModule" and isinstance(getattr(model, "_orig_mod", None), nn.Module):
        model = model._orig_mod  # torch.compile wrapper: check the eager module it compiles
    if isinstance(model, torch.jit.ScriptModule):
        raise UnsupportedModelError(
            f"{type(model).__name__} is a TorchScript module, whose layers cannot be observed; "
            "check the eager nn.Module (before torch.jit.script/trace) instead")
    named = list(model.named_modules())  # walked once, handed to every helper below
    lazy = lazy_modules(model, named) if not isinstance(loss_fn, TrainingStep) else []
    if lazy:  # the first forward would create their weights in the user's model: probe a copy
        model = copy.deepcopy(model)
        named = list(model.named_modules())
    hooked = model_hooks(model, named)
    with torch.inference_mode(False):  # a caller inside inference_mode would block gradients
        snap = _collect(model, named, inputs, targets, loss_fn, frozenset(needs), settings, input_shape, bool(hooked))
    notes = list(snap.notes)
    if lazy:
        notes.append(f"lazy modules ({_names(lazy)}) have no weights until their first forward: a copy of the "
                     "model was measured, its lazy weights drawn with netdoctor's seed; your model is left lazy")
    if hooked:
        notes.append(f"the model's own hooks on {_names(hooked)} ran during the probe's forward and backward pass, "
                     "as in training (a hook can be part of the computation)")
    return replace(snap, notes=tuple(notes)) if len(notes) != len(snap.notes) else snap


def _names(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def _collect(model: nn.Module, modules: list[tuple[str, nn.Module]], inputs: Any, targets: Any, loss_fn: Any,
             needs: frozenset[Need], settings: ProbeSettings, input_shape: Any, hooked: bool = True) -> ModelSnapshot:
    want_acts = Need.ACTIVATIONS in needs
    want_grads = Need.GRADIENTS in needs
    params, buffers = parameters_and_buffers(model, modules)  # without repeats (tied weights count once)
    tensors = params + buffers
    device, dtype = model_device_dtype(model, tensors)
    step = loss_fn if isinstance(loss_fn, TrainingStep) else None
    batch = None
    if step is not None:  # the model's own training step: the batch goes in as the loader yields it
        batch = to_device(inputs, device, dtype, settings.max_samples)
        named, y = split_batch(batch)
        sizes = [int(t.shape[0]) for t in named.values() if t.dim() >= 1]
        probe_in = ProbeInputs(args=(batch,), named=named, batch_size=sizes[0] if sizes else 1)
    elif inputs is None:
        probe_in = synthetic_inputs(input_shape, device, dtype, settings.seed, settings.max_samples)
        y = prepare_targets(targets, device, dtype, settings.max_samples)
    else:
        probe_in = prepare_inputs(inputs, device, dtype, settings.max_samples, copy=not reads_input_only(model, hooked))
        y = prepare_targets(targets, device, dtype, settings.max_samples)
    if getattr(inputs, "netdoctor_synthetic", False):
        probe_in.synthetic = True  # made up by the loader (token ids from a config), not data to judge
    sparsity = Need.SPARSITY in needs
    probe = Probe(model, settings, activations=want_acts, sparsity=sparsity, named=modules, hooked=hooked)
    pstats = ParamStats(weights=Need.WEIGHTS in needs, grads=None, max_units=settings.max_units,
                        grad_moments=Need.GRADIENT_MOMENTS in needs, sparsity=sparsity)
    data = None
    if Need.DATA in needs and not probe_in.synthetic:
        data = data_stats(probe_in, y, _conv1d_first(modules), probe.stats.of)

    trainable = [p for p in params if p.requires_grad]
    ledger = NeedsLedger(needs)
    notes: list[str] = []
    grads: dict[int, torch.Tensor | None] | None = None
    out_grad: torch.Tensor | None = None
    loss_probe = sum_ratio = None
    saved = SavedState(model, modules, params)
    try:
        with seeded(settings.seed, cuda_devices(model, tensors)):
            if not _training_already(modules):
                model.train()
            grad_mode = torch.enable_grad() if want_grads and trainable else torch.no_grad()
            with grad_mode:
                for t in probe_in.named.values():
                    probe.mark_input(t)
                watch = LossWatch()
                try:
                    with probe, TimeGrowth(model, enabled=want_grads and bool(trainable), named=modules) as time_growth:
                        if step is not None:
                            with watch:
                                output = step(batch)
                        else:
                            output = model(*probe_in.args, **probe_in.kwargs)
                except DATA_EXCEPTIONS as exc:
                    raise forward_error(exc, probe.failing_frame(), model) from exc
                if step is not None:
                    called, main = watch.loss()  # the output the step fed into its loss
                    rows = output_rows(main, probe.stats.of)
                    out_info = output_info(main, 1, settings.max_units, probe.stats.of, rows) if main is not None else None
                    loss, loss_info, note = step_loss(output, step.name, called)
                else:
                    main = main_output(output)
                    out_tensors = list(iter_tensors(output))
                    rows = output_rows(main, probe.stats.of)
                    out_info = (output_info(main, len(out_tensors), settings.max_units, probe.stats.of, rows)
                                if main is not None else None)
                    loss, loss_info, note = compute_loss(loss_fn, output, main, y,
                                                         out_info.looks_like if out_info else "unknown", settings.seed)
                    sum_ratio = (loss_additivity(loss_fn, output, y, loss_info.value)
                                 if loss_info.source == "user" else None)
                if note:
                    notes.append(note)
            pstats.values(params)  # while the forward pass has left them in cache
            if want_grads:
                if not trainable:
                    ledger.miss(Need.GRADIENTS, REASON_NO_TRAINABLE)
                elif not loss.requires_grad:
                    grads = {}
                    notes.append(REASON_LOSS_DETACHED)
                else:
                    watch_out = (main is not None and main.requires_grad and main.numel() <= MAX_ENTRIES)
                    found = torch.autograd.grad(loss, trainable + ([main] if watch_out else []), allow_unused=True)
                    grads = {id(p): g for p, g in zip(trainable, found)}
                    pstats.gradients(trainable, grads)  # while the backward pass has left them in cache
                    if watch_out:
                        out_grad = found[-1]
                        out_grad = torch.zeros_like(main) if out_grad is None else out_grad
            if main is not None and main.is_floating_point() and main.numel() <= MAX_ENTRIES:
                loss_probe = _loss_probe(main, out_grad, y, sum_ratio, data, rows)
            del loss, output, out_grad, batch
    finally:
        saved.restore()

    output_names = probe.output_origins([main]) if main is not None else []
    recs = all_records(probe, model)
    graph = Graph(recs, output_names)
    pstats.grads = grads
    layers = time_growth.annotate(build_layers(recs, graph, pstats), settings.seed)
    have_grads = grads is not None
    grads = None
    if out_info is not None:
        final = graph.recs.get(output_names[-1]) if output_names else None
        out_info = dataclasses.replace(out_info, final_layer=final.name if final else None,
                                       final_activation=graph.final_activation(final))

    ledger.got(*(needs & {Need.WEIGHTS, Need.ACTIVATIONS, Need.SPARSITY}))
    if want_grads and have_grads:
        ledger.got(Need.GRADIENTS, *(needs & {Need.GRADIENT_MOMENTS}))
    ledger.settle(Need.LOSS, loss_info.source == "user",
                  REASON_SURROGATE if loss_info.source == "surrogate" else REASON_NO_LOSS)
    ledger.settle(Need.DATA, not probe_in.synthetic, getattr(inputs, "netdoctor_reason", REASON_SYNTHETIC))
    suppressions = {name: dict(marks) for name, m in modules if (marks := marks_of(m))}
    return ModelSnapshot(
        framework="torch",
        framework_version=str(torch.__version__),  # a plain str: a TorchVersion would import torch wherever the report is unpickled
        model_class=type(model).__name__,
        layers=tuple(layers),
        collected=frozenset(ledger.collected),
        missing=ledger.missing(),
        param_count=sum(p.numel() for p in params),
        trainable_param_count=sum(p.numel() for p in trainable),
        batch_size=probe_in.batch_size,
        synthetic_inputs=probe_in.synthetic,
        data=data,
        output=out_info,
        loss=loss_info,
        loss_probe=loss_probe,
        residual=probe.residual,
        suppressions=suppressions,
        notes=tuple(notes),
    )


def _host(t: torch.Tensor) -> Any:
    return t.detach().float().cpu().numpy()


def _loss_probe(main: torch.Tensor, out_grad: torch.Tensor | None, targets: Any, sum_ratio: float | None,
                data: DataStats | None, rows: OutputRows | None) -> Any:
    """The loss probe (see :mod:`netdoctor.adapters._lossprobe`) from the output (``rows``, when made),
    its loss gradient and the targets; ``data``, when measured, already knows the kind of the same targets."""
    y = first_target(targets)
    y_host = None if y is None else _host(y) if y.is_floating_point() else y.detach().cpu().numpy()
    kind = data.target_kind if data is not None else target_kind(y_host) if y_host is not None else None
    return measure_loss_probe(None if rows is not None else _host(main), None if out_grad is None else _host(out_grad),
                              y_host, kind, sum_ratio=sum_ratio, rows=rows)


def _training_already(named: list[tuple[str, nn.Module]]) -> bool:
    """Every module is in training mode and none overrides ``train()``: ``model.train()`` would change
    nothing (and costs a ``Module.__setattr__`` per module)."""
    base = nn.Module.train
    return all(m.training and type(m).train is base for _, m in named)


def _conv1d_first(named: list[tuple[str, nn.Module]]) -> bool:
    """The first weight module is a ``Conv1d`` (3-D inputs are then channels-first)."""
    for _, m in named:
        if isinstance(m, torch.jit.ScriptModule):
            continue
        kind = module_kind(m)
        if kind in WEIGHT_KINDS:
            return kind == KIND_CONV and isinstance(m, nn.Conv1d)
    return False
