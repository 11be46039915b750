"""The probe loss: the user's, netdoctor's documented default, or a gradient surrogate.

* ``loss_fn`` given: ``loss_fn(raw_output, targets)``; ``source="user"``.
* The model returned its own scalar ``.loss`` (Hugging Face models given ``labels``): that
  loss; ``source="user"``.
* Targets but no loss: integer class targets -> cross-entropy on the output, interpreted by
  what the output looks like (logits -> ``F.cross_entropy``; probabilities -> NLL of their
  log; log-probabilities -> ``F.nll_loss``; 0/1 targets shaped like the output -> binary
  cross-entropy); float targets -> MSE. ``source="default"``.
* No targets: MSE against seeded N(0, 1) targets of the output's shape, only so that
  gradients can be measured. ``source="surrogate"``.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from netdoctor.adapters._common import (
    NOTE_DEFAULT_LOSS,
    NOTE_SURROGATE,
    NOTE_SYNTHETIC_LABELS,
    first_line,
    format_shape,
    label_form,
    loss_expectation,
    synthetic_labels,
)
from netdoctor.adapters._lossprobe import UNIT_EPS, batch_additivity
from netdoctor.adapters.torch.io import first_target
from netdoctor.errors import LossError
from netdoctor.snapshot import LossInfo


def loss_name(loss_fn: Any) -> str:
    """Display name of a loss callable (class name of modules, function name otherwise)."""
    if isinstance(loss_fn, functools.partial):
        return loss_name(loss_fn.func)
    if isinstance(loss_fn, nn.Module):
        return type(loss_fn).__name__
    name = getattr(loss_fn, "__name__", None)
    if name == "<lambda>":
        return "custom loss"
    return name or type(loss_fn).__name__


def _check_scalar(value: Any, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise LossError(f"{what} returned {type(value).__name__}, not a tensor; return the loss tensor "
                        "itself (not loss.item()) so gradients can flow")
    if value.numel() != 1:
        raise LossError(f"{what} returned a tensor of shape {format_shape(value.shape)}, not a scalar; "
                        "reduce it to one number (e.g. reduction='mean')")
    if not value.is_floating_point():
        raise LossError(f"{what} returned an integer tensor ({value.dtype}); return a floating-point loss")
    return value.reshape(())


def _model_loss(output: Any) -> torch.Tensor | None:
    loss = output.get("loss") if isinstance(output, Mapping) else getattr(output, "loss", None)
    if isinstance(loss, torch.Tensor) and loss.numel() == 1 and loss.is_floating_point():
        return loss.reshape(())
    return None


def compute_loss(
    loss_fn: Any, output: Any, main: torch.Tensor | None, targets: Any, looks_like: str, seed: int,
) -> tuple[torch.Tensor, LossInfo, str | None]:
    """Compute the probe loss.

    Returns:
        ``(loss, info, note)``; ``info.value`` is filled, ``note`` is a report-header remark.

    Raises:
        LossError: The loss raised, or returned something other than a floating scalar.
    """
    note = None
    if loss_fn is not None and targets is None and main is not None and main.dim() >= 1:
        form = label_form(loss_name(loss_fn))
        if form is not None and (form == "binary" or main.dim() >= 2):
            # a classification loss: random labels of the right form stand in for the missing targets
            labels = synthetic_labels(form, tuple(main.shape), 1, seed)
            targets = torch.from_numpy(labels).to(main.device)
            if targets.is_floating_point():
                targets = targets.to(main.dtype)
            what = "0/1" if form == "binary" else f"uniform over {main.shape[1]} classes"
            note = NOTE_SYNTHETIC_LABELS.format(name=loss_name(loss_fn), what=what)
    if loss_fn is not None and targets is not None:
        name = loss_name(loss_fn)
        try:
            value = loss_fn(output, targets)
        except Exception as exc:
            rescued = _on_unit_range(loss_fn, output, targets, name, exc)
            if rescued is not None:
                return rescued
            if targets is None:
                raise LossError(f"loss_fn ({name}) raised {type(exc).__name__}: {first_line(exc)}; the probe batch "
                                "has no targets: return (x, y) from sample_batch() or save y in the --data "
                                "file") from exc
            raise LossError(f"loss_fn ({name}) raised {type(exc).__name__}: {first_line(exc)}; check that "
                            "loss_fn(output, target) accepts the model output and the targets") from exc
        value = _check_scalar(value, f"loss_fn ({name})")
        number = float(value.detach())
        unit = None if math.isfinite(number) else _finite_on_unit(loss_fn, output, targets)
        info = LossInfo(name=name, expects=loss_expectation(name), value=number, source="user", unit_range=unit)
        return value, info, note
    if targets is None:
        own = _model_loss(output)
        if own is not None:
            info = LossInfo(name="model output .loss", expects="unknown", value=float(own.detach()), source="user")
            return own, info, None
    if main is None or not main.is_floating_point():
        raise LossError("the model output has no floating-point tensor to compute a loss on; pass loss_fn")
    if targets is None:
        gen = torch.Generator(device=main.device)
        gen.manual_seed(int(seed) + 1)
        fake = torch.randn(main.shape, generator=gen, device=main.device, dtype=main.dtype)
        value = F.mse_loss(main, fake)
        info = LossInfo(name="surrogate_mse", expects="any", value=float(value.detach()), source="surrogate")
        unused = f"; the given loss {loss_name(loss_fn)} needs targets, so it was not used" if loss_fn is not None else ""
        return value, info, NOTE_SURROGATE + unused
    y = first_target(targets)
    if y is None:
        raise LossError("the targets hold no array; pass an array of targets or loss_fn")
    name, expects, fn = _default_loss(main, y, looks_like)
    try:
        value = fn()
    except Exception as exc:
        raise LossError(f"default loss {name} failed on output {format_shape(main.shape)} and targets "
                        f"{format_shape(y.shape)} ({type(exc).__name__}: {first_line(exc)}); pass loss_fn") from exc
    value = _check_scalar(value, f"default loss {name}")
    info = LossInfo(name=name, expects=expects, value=float(value.detach()), source="default")
    return value, info, NOTE_DEFAULT_LOSS.format(name=name)


def _outside_unit(output: Any) -> bool:
    """``output`` is one floating tensor with finite entries outside [0, 1]."""
    if not isinstance(output, torch.Tensor) or not output.is_floating_point() or output.numel() == 0:
        return False
    with torch.no_grad():
        finite = output[torch.isfinite(output)]
        return bool(finite.numel()) and bool((finite.min() < 0) | (finite.max() > 1))


def _finite_on_unit(loss_fn: Any, output: Any, targets: Any) -> bool | None:
    """``LossInfo.unit_range`` of a loss that is non-finite on ``output``: finite on it clamped into (0, 1)?"""
    if not _outside_unit(output):
        return None
    try:
        with torch.no_grad():
            value = loss_fn(output.clamp(UNIT_EPS, 1 - UNIT_EPS), targets)
    except Exception:
        return None
    return isinstance(value, torch.Tensor) and value.numel() == 1 and bool(torch.isfinite(value).all())


def _on_unit_range(loss_fn: Any, output: Any, targets: Any, name: str,
                   exc: Exception) -> tuple[torch.Tensor, LossInfo, str] | None:
    """A loss that raised on an output outside [0, 1] but runs on it clamped into (0, 1) (torch's BCELoss on
    logits): the probe goes on with the clamped output, and the failure is the measurement (ND503)."""
    if targets is None or not _outside_unit(output):
        return None
    try:
        value = loss_fn(output.clamp(UNIT_EPS, 1 - UNIT_EPS), targets)
    except Exception:
        return None
    if not isinstance(value, torch.Tensor) or value.numel() != 1 or not value.is_floating_point() \
            or not bool(torch.isfinite(value.detach()).all()):
        return None
    error = f"{type(exc).__name__}: {first_line(exc)}"
    info = LossInfo(name=name, expects=loss_expectation(name), value=float("nan"), source="user",
                    error=error, unit_range=True)
    note = (f"loss_fn ({name}) raised {error} on the model output, which lies outside [0, 1]; the gradients "
            "were measured with the output clamped into (0, 1)")
    return value.reshape(()), info, note


#: torch's own two-argument losses whose batch reduction is exactly a mean or a sum of per-sample
#: terms (given no class ``weight``, and no ignored class targets for the two below it).
_STOCK_LOSSES = frozenset({"MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "BCELoss", "BCEWithLogitsLoss",
                           "KLDivLoss", "SoftMarginLoss", "MultiLabelSoftMarginLoss", "PoissonNLLLoss",
                           "CrossEntropyLoss", "NLLLoss"})


def stock_sum_ratio(loss_fn: Any, targets: torch.Tensor) -> float | None:
    """The sum ratio one of torch's own loss classes has by construction: 1 for ``reduction="sum"``,
    2 for a mean (``"mean"``, ``"batchmean"``); ``None`` for anything else (a subclass, a class weight,
    ignored targets that make the mean a weighted one), which is measured on the halves."""
    cls = type(loss_fn)
    if cls.__module__ != "torch.nn.modules.loss" or cls.__name__ not in _STOCK_LOSSES \
            or getattr(loss_fn, "weight", None) is not None:
        return None
    reduction = getattr(loss_fn, "reduction", None)
    if reduction == "sum":
        return 1.0
    if reduction not in ("mean", "batchmean"):
        return None
    if cls.__name__ in ("CrossEntropyLoss", "NLLLoss") and not targets.is_floating_point() \
            and bool((targets == loss_fn.ignore_index).any()):
        return None
    return 2.0


def loss_additivity(loss_fn: Any, output: Any, targets: Any, whole: float | None = None) -> float | None:
    """``LossProbe.sum_ratio`` of a user loss on a tensor output and tensor targets (halves of the rows);
    ``whole``: the probe's own loss on them (see :func:`~netdoctor.adapters._lossprobe.batch_additivity`).

    One of torch's own losses gets the ratio its reduction fixes (:func:`stock_sum_ratio`), which
    saves two more loss calls (about 0.1 ms).
    """
    if loss_fn is None or not isinstance(output, torch.Tensor) or not isinstance(targets, torch.Tensor):
        return None
    if output.dim() == 0 or targets.dim() == 0 or output.shape[0] != targets.shape[0]:
        return None

    def loss_on(a: int, b: int) -> float:
        value = loss_fn(output[a:b], targets[a:b])
        return float(value.detach().reshape(-1)[0]) if isinstance(value, torch.Tensor) and value.numel() == 1 \
            else float("nan")

    with torch.no_grad():
        return batch_additivity(loss_on, int(output.shape[0]), whole, known=stock_sum_ratio(loss_fn, targets))


def _default_loss(out: torch.Tensor, y: torch.Tensor, looks_like: str):
    """``(name, expects, thunk)`` of the documented default loss for ``y``."""
    if y.is_floating_point():
        target = y.reshape(out.shape) if y.shape != out.shape and y.numel() == out.numel() else y
        if target.shape != out.shape:
            raise LossError(f"default loss mse needs targets shaped like the output, got targets "
                            f"{format_shape(y.shape)} for output {format_shape(out.shape)}; pass loss_fn")
        return "mse", "any", lambda: F.mse_loss(out, target.to(out.dtype))
    y = y.long()
    binary_shape = y.shape == out.shape or (out.dim() == y.dim() + 1 and out.shape[-1] == 1 and out.shape[:-1] == y.shape)
    if binary_shape and (out.dim() == 0 or out.shape[-1] == 1 or y.shape == out.shape):
        yf = y.reshape(out.shape).to(out.dtype)
        if looks_like in ("sigmoid", "probabilities"):
            return "binary_cross_entropy", "probabilities", lambda: F.binary_cross_entropy(out.clamp(0, 1), yf)
        return "binary_cross_entropy_with_logits", "logits", lambda: F.binary_cross_entropy_with_logits(out, yf)
    if out.dim() == y.dim() + 1 and out.shape[0] == y.shape[0] and tuple(out.shape[2:]) == tuple(y.shape[1:]):
        logits, labels = out, y  # class axis 1: (N, C) or (N, C, d1, ...)
    elif out.dim() == y.dim() + 1 and tuple(out.shape[:-1]) == tuple(y.shape):
        logits, labels = out.reshape(-1, out.shape[-1]), y.reshape(-1)  # class axis last: (N, S, C)
    else:
        raise LossError(f"default loss cross_entropy cannot pair class targets {format_shape(y.shape)} with "
                        f"output {format_shape(out.shape)}; pass loss_fn")
    if looks_like == "probabilities":
        return "nll_loss(log(output))", "probabilities", lambda: F.nll_loss(torch.log(logits.clamp_min(1e-12)), labels)
    if looks_like == "log_probabilities":
        return "nll_loss", "log_probabilities", lambda: F.nll_loss(logits, labels)
    return "cross_entropy", "logits", lambda: F.cross_entropy(logits, labels)


def step_loss(value: Any, step_name: str, called: str | None) -> tuple[torch.Tensor, LossInfo, str | None]:
    """The loss a model's own training step returned; ``called`` is the loss function it used, if seen."""
    value = _check_scalar(value, step_name)
    name = f"{step_name} -> {called}" if called else step_name
    info = LossInfo(name=name, expects=loss_expectation(called) if called else "unknown",
                    value=float(value.detach()), source="user")
    return value, info, None
