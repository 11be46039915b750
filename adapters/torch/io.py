"""Data in and models in: probe inputs, targets and outputs (conversion, synthetic data, output
summary, data stats) and checkpoints loaded into a model (:func:`load_weights`)."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from netdoctor.adapters._common import classify_output, first_line, synthetic_batch, target_kind
from netdoctor.adapters._lossprobe import MAX_ENTRIES, OutputRows
from netdoctor.adapters.torch.flow import iter_tensors
from netdoctor.adapters.torch.state import global_forward_hooks
from netdoctor.adapters.torch.stats import reduce
from netdoctor.errors import DataError, ModelLoadError
from netdoctor.snapshot import DataStats, OutputInfo, TensorStats


@dataclass
class ProbeInputs:
    """Inputs as the model will receive them.

    Attributes:
        args: Positional arguments of the model call.
        kwargs: Keyword arguments of the model call.
        named: Each input tensor by display name (``"x"``, ``"x[0]"``, dict keys).
        batch_size: Samples in the probe batch.
        synthetic: The inputs were made from ``input_shape``.
    """

    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    named: dict[str, torch.Tensor] = field(default_factory=dict)
    batch_size: int = 0
    synthetic: bool = False


def model_device_dtype(model: nn.Module, tensors: Sequence[torch.Tensor] | None = None,
                       ) -> tuple[torch.device, torch.dtype]:
    """Device of the model's first parameter/buffer and its floating dtype (``tensors``: its parameters
    and buffers, when the caller has them)."""
    device = torch.device("cpu")
    dtype = None
    for t in (list(model.parameters()) + list(model.buffers()) if tensors is None else tensors):
        if device.type == "cpu" and t.device.type != "meta":
            device = t.device
        if dtype is None and t.is_floating_point():
            dtype = t.dtype
        if dtype is not None and device.type != "cpu":
            break
    return device, dtype or torch.get_default_dtype()


def _to_tensor(value: Any, device: torch.device, dtype: torch.dtype, n: int, what: str, copy: bool = True) -> Any:
    """One array-like -> a fresh tensor on ``device`` (floats cast to ``dtype``), first ``n`` rows; with
    ``copy=False``, the caller's own memory where no conversion is needed."""
    if isinstance(value, Mapping):  # a dict passed as one positional input
        return {k: _to_tensor(v, device, dtype, n, f"{what}[{k!r}]") for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        t = value.detach()
        if t.is_meta:
            raise DataError(f"{what} is on the meta device: it has a shape but no values to measure; "
                            "pass a batch of real data (on the CPU or the model's device)")
        if t.is_complex():
            raise DataError(f"{what} is complex ({t.dtype}); netdoctor checks real-valued models: pass real "
                            "inputs (e.g. torch.view_as_real(x))")
    elif isinstance(value, np.ndarray) or np.isscalar(value) or isinstance(value, (list, tuple)):
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise DataError(f"{what} has dtype {arr.dtype}, which a model cannot take; pass numeric real arrays")
        if arr.dtype.kind == "u" and arr.dtype != np.uint8:
            arr = arr.astype(np.int64)
        t = torch.from_numpy(np.ascontiguousarray(arr))
    else:
        return value  # options such as return_dict=True pass through unchanged
    if t.dim() >= 1 and t.shape[0] > n:
        t = t[:n]
    target_dtype = dtype if t.is_floating_point() else None
    return t.to(device=device, dtype=target_dtype, copy=copy)


def _is_array(value: Any) -> bool:
    return isinstance(value, (torch.Tensor, np.ndarray))


#: Built-in modules that only read their input and return a new tensor (never a view of it): a batch fed
#: straight into one of them cannot be written by the model.
READ_ONLY_ENTRIES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding, nn.LayerNorm,
                     nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def reads_input_only(model: nn.Module, hooked: bool) -> bool:
    """Whether ``model`` provably cannot write into its input: an ``nn.Sequential`` (exactly; nested ones
    too) whose first module is one of :data:`READ_ONLY_ENTRIES` (exactly, not a subclass), with no hook
    on any module (``hooked``) and no global module hook. Then the probe needs no private copy of a
    single input tensor (see :func:`prepare_inputs`); anything else gets one, since a ``forward`` may
    write into its input in place (``x.sub_(mean)``, ``nn.ReLU(inplace=True)`` first)."""
    if hooked or global_forward_hooks():
        return False
    first: Any = model
    while type(first) is nn.Sequential:
        first = next(iter(first._modules.values()), None)
    return type(first) in READ_ONLY_ENTRIES


def prepare_inputs(inputs: Any, device: torch.device, dtype: torch.dtype, max_samples: int,
                   copy: bool = True) -> ProbeInputs:
    """Convert user inputs: a tensor/array, a tuple/list (positional) or a dict (keywords).

    Each becomes a private copy on the model's device, in its float dtype, unless ``copy`` is false
    (:func:`reads_input_only`): then a single input tensor or array that needs no conversion is used
    in place (a (256, 784) batch copied by the probe cost 0.07 ms of an MLP check, paired).
    """
    n = max_samples
    if isinstance(inputs, Mapping):
        kwargs = {str(k): _to_tensor(v, device, dtype, n, f"input {k!r}") for k, v in inputs.items()}
        named = {k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)}
        return ProbeInputs(args=(), kwargs=kwargs, named=named, batch_size=_batch(named))
    if isinstance(inputs, (tuple, list)) and inputs and all(_is_array(v) or isinstance(v, Mapping) or v is None for v in inputs):
        args = tuple(_to_tensor(v, device, dtype, n, f"input x[{i}]") for i, v in enumerate(inputs))
        named = {}
        for i, v in enumerate(args):
            if isinstance(v, torch.Tensor):
                named[f"x[{i}]"] = v
            elif isinstance(v, Mapping):
                named.update({f"x[{i}][{k!r}]": t for k, t in v.items() if isinstance(t, torch.Tensor)})
        return ProbeInputs(args=args, named=named, batch_size=_batch(named))
    if _is_array(inputs) or isinstance(inputs, (list, tuple)) or np.isscalar(inputs):
        try:
            t = _to_tensor(inputs, device, dtype, n, "the input", copy=copy)
        except ValueError as exc:
            raise DataError(f"cannot turn the inputs into an array ({exc}); pass a tensor, an array, "
                            "a tuple of them or a dict") from None
        return ProbeInputs(args=(t,), named={"x": t}, batch_size=_batch({"x": t}))
    raise DataError(f"inputs of type {type(inputs).__name__} are not supported; pass a tensor, a numpy "
                    "array, a tuple of them (positional inputs) or a dict (keyword inputs)")


def _batch(named: Mapping[str, torch.Tensor]) -> int:
    for name, t in named.items():
        if t.dim() >= 1:
            if t.shape[0] == 0:
                raise DataError(f"the probe batch is empty: {'the input' if name == 'x' else name} has 0 samples "
                                f"(shape {tuple(t.shape)}); give at least one sample (--max-samples must be >= 1)")
            if t.numel() == 0:
                raise DataError(f"{'the input' if name == 'x' else name} has shape {tuple(t.shape)}: no values "
                                "to measure; check sample_batch() or --input-shape")
            return int(t.shape[0])
    return 1


def synthetic_inputs(input_shape: Any, device: torch.device, dtype: torch.dtype, seed: int,
                     max_samples: int) -> ProbeInputs:
    """Seeded N(0, 1) inputs of shape ``(batch, *input_shape)`` (one per shape if several).

    ``batch`` is :func:`~netdoctor.adapters._common.synthetic_batch`: fewer samples for a large
    input, never more than ``max_samples``.
    """
    if input_shape is None:
        raise DataError("no inputs: pass a sample batch (netdoctor.check(model, x)) or the shape of one "
                        "sample (input_shape=(3, 32, 32) or --input-shape 3,32,32)")
    shapes = input_shape
    if not (isinstance(shapes, (tuple, list)) and shapes and all(isinstance(s, (tuple, list, torch.Size)) for s in shapes)):
        shapes = [shapes]
    all_dims = []
    for shape in shapes:
        try:
            dims = tuple(int(d) for d in shape)
        except (TypeError, ValueError):
            dims = ()
        if not dims or any(d <= 0 for d in dims):
            raise DataError(f"input_shape {input_shape!r} is not a shape; give the positive sizes of one sample "
                            "without the batch axis, e.g. (3, 32, 32)")
        all_dims.append(dims)
    batch = synthetic_batch(sum(math.prod(d) for d in all_dims), max_samples)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    args = [torch.randn((batch, *dims), generator=gen, device=device, dtype=dtype) for dims in all_dims]
    named = {"x" if len(args) == 1 else f"x[{i}]": t for i, t in enumerate(args)}
    return ProbeInputs(args=tuple(args), named=named, batch_size=batch, synthetic=True)


def prepare_targets(targets: Any, device: torch.device, dtype: torch.dtype, max_samples: int) -> Any:
    """Targets on the model's device: floats in the model's dtype, integers as int64."""
    if targets is None:
        return None
    if isinstance(targets, Mapping):
        return {k: prepare_targets(v, device, dtype, max_samples) for k, v in targets.items()}
    if isinstance(targets, (tuple, list)) and targets and all(_is_array(v) for v in targets):
        return type(targets)(prepare_targets(v, device, dtype, max_samples) for v in targets)
    t = _to_tensor(targets, device, dtype, max_samples, "the targets")
    if isinstance(t, torch.Tensor) and not t.is_floating_point() and t.dtype not in (torch.bool, torch.int64):
        t = t.long()
    return t


def main_output(output: Any) -> torch.Tensor | None:
    """The output the loss consumes: ``.logits`` if present, else the first tensor."""
    if isinstance(output, torch.Tensor):
        return output
    logits = None
    if isinstance(output, Mapping):
        logits = output.get("logits")
    elif not isinstance(output, (tuple, list)):
        logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    return next(iter_tensors(output), None)


Reducer = Callable[[torch.Tensor, int | None], TensorStats]


def _reducer(max_units: int) -> Reducer:
    return lambda t, axis: reduce(t, unit_axis=axis, max_units=max_units, unit_moments=axis is not None)[0]


@torch.no_grad()
def output_info(main: torch.Tensor, num_outputs: int, max_units: int, stats_of: Reducer | None = None,
                rows: OutputRows | None = None) -> OutputInfo:
    """Stats and ``looks_like`` of the main output (``final_*`` are filled by the caller).

    ``stats_of(tensor, unit_axis)`` reduces a tensor (default: :func:`reduce`); the adapter passes
    its records' cached one, since the output is also the last layer's. ``rows``: the output as
    :class:`~netdoctor.adapters._lossprobe.OutputRows` (see :func:`output_rows`), whose row sums and
    log-sum-exp the loss probe reads too.
    """
    stats = (stats_of or _reducer(max_units))(main, -1)
    looks = "unknown"
    if main.is_floating_point() and main.numel():
        x = main.detach().float()
        x2 = x.reshape(1, -1) if x.dim() == 0 else x
        finite = stats.frac_nonfinite == 0.0
        if finite and (rows is not None or x2.device.type == "cpu"):  # numpy: cheaper than torch's dispatch
            rows = rows if rows is not None else OutputRows(x2.numpy().astype(np.float64))
            errs = [rows.row_sum_err(), rows.lse_err()]
        elif finite:
            errs = torch.stack([(x2.sum(-1) - 1).abs().max(), torch.logsumexp(x2, -1).abs().max()]).cpu().tolist()
        else:
            errs = [float("inf"), float("inf")]
        looks = classify_output(is_float=True, all_finite=finite, min_value=stats.min, max_value=stats.max,
                                max_row_sum_error=errs[0], max_row_logsumexp_error=errs[1])
    return OutputInfo(stats=stats, looks_like=looks, num_outputs=num_outputs)


def output_rows(main: torch.Tensor | None, stats_of: Reducer) -> OutputRows | None:
    """The main output as :class:`~netdoctor.adapters._lossprobe.OutputRows` (float64 on the host), shared
    by its classification and the loss probe, when it has two or more axes, at most ``MAX_ENTRIES`` entries
    and no NaN/Inf (``stats_of``: the records' cached reduction, as for :func:`output_info`)."""
    if main is None or not main.is_floating_point() or main.dim() < 2 or not 0 < main.numel() <= MAX_ENTRIES \
            or stats_of(main, -1).frac_nonfinite != 0.0:
        return None
    return OutputRows.of(main.detach().cpu().double().numpy(), finite=True)


def first_target(targets: Any) -> torch.Tensor | None:
    """The first tensor inside the targets (what the default loss and the data stats use)."""
    return next(iter_tensors(targets), None) if targets is not None else None


@torch.no_grad()
def data_stats(inputs: ProbeInputs, targets: Any, channels_first_3d: bool, stats_of: Reducer) -> DataStats:
    """Statistics of the real inputs (per-feature vectors) and targets.

    ``stats_of(tensor, unit_axis)`` reduces an input or a target: the adapter passes its
    records' cached reduction, since an input is also the first layer's input.
    """
    per_input: dict[str, TensorStats] = {}
    for name, t in inputs.named.items():
        if t.dim() >= 4:
            axis: int | None = 1
        elif t.dim() == 3 and channels_first_3d:
            axis = 1
        elif t.dim() >= 2:
            axis = -1
        elif t.dim() == 1 and t.is_floating_point():  # one scalar per sample: one feature
            t, axis = t.unsqueeze(1), -1
        else:
            axis = None
        if not t.is_floating_point() and t.dim() < 4:
            axis = None  # token ids and masks are not features
        per_input[name] = stats_of(t, axis)
    y = first_target(targets)
    tstats = kind = None
    if y is not None:
        arr = y.detach().cpu().numpy() if y.dtype != torch.bfloat16 else y.detach().float().cpu().numpy()
        tstats = stats_of(y, -1 if y.dim() >= 2 else None)
        kind = target_kind(arr)
    return DataStats(inputs=per_input, targets=tstats, target_kind=kind, num_samples=inputs.batch_size)


# -- checkpoints ----------------------------------------------------------------------
def load_weights(model: nn.Module, path: str, *, unsafe: bool = False) -> None:
    """Load a state dict from ``path`` into ``model``.

    Args:
        model: The module to fill.
        path: A ``torch.save`` file (state dict, or a checkpoint dict holding one under
            ``state_dict``/``model_state_dict``/``model``) or a ``.safetensors`` file.
        unsafe: Allow full pickles (``weights_only=False``), e.g. a whole saved module.
            Only for files you trust: unpickling runs code.

    Raises:
        ModelLoadError: Missing/unreadable file, a pickle refused in safe mode, or weights
            that do not fit the model; the message is one line that says what to do.
    """
    if not os.path.isfile(path):
        raise ModelLoadError(f"weights file {path} not found; check the path given to --weights")
    device, _ = model_device_dtype(model)
    try:
        if str(path).endswith(".safetensors"):
            from safetensors.torch import load_file

            obj: Any = load_file(str(path), device=str(device))
        else:
            obj = torch.load(path, map_location=device, weights_only=not unsafe)
    except Exception as exc:
        text = str(exc)
        found = re.search(r"(?:unsupported|Unsupported global:?) GLOBAL ([\w.]+)", text)
        if not unsafe and found:
            what = found.group(1)
            raise ModelLoadError(
                f"{path} is a full pickle, not a plain state dict: loading it would run code "
                f"(torch.load(weights_only=True) refuses unsupported GLOBAL {what}); save model.state_dict() "
                "instead, or pass --unsafe (unsafe=True in the API) only if you trust the file") from None
        raise ModelLoadError(f"cannot read weights from {path} ({type(exc).__name__}: {_load_reason(text)}); "
                             "is it a torch.save or safetensors file?") from None
    state = _state_dict_of(obj)
    if state is None:
        raise ModelLoadError(f"{path} holds a {type(obj).__name__}, not a state dict; save model.state_dict()")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"weights in {path} do not fit {type(model).__name__}: {_mismatch(exc)}") from None


def _load_reason(text: str) -> str:
    """The informative line of a ``torch.load`` error (after torch's generic preamble)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if line.endswith("WeightsUnpickler error:") and i + 1 < len(lines):
            return first_line(lines[i + 1])
        if "WeightsUnpickler error:" in line:
            return first_line(line.split("WeightsUnpickler error:", 1)[1]) or first_line(line)
    return first_line(text)


def _state_dict_of(obj: Any) -> Mapping[str, Any] | None:
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if isinstance(obj, Mapping):
        if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        for key in ("state_dict", "model_state_dict", "model", "net", "weights"):
            inner = obj.get(key)
            if isinstance(inner, nn.Module):
                return inner.state_dict()
            if isinstance(inner, Mapping) and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
        if not obj:
            return obj
    return None


def _mismatch(exc: RuntimeError) -> str:
    """Condense ``load_state_dict``'s multi-line error into one line."""
    parts = []
    for line in str(exc).splitlines():
        line = line.strip()
        if line.startswith(("Missing key(s)", "Unexpected key(s)", "size mismatch")):
            parts.append(line.rstrip("."))
    text = "; ".join(parts) if parts else first_line(exc)
    return text if len(text) <= 400 else text[:397] + "..."
