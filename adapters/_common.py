"""Framework-free helpers shared by the torch and Keras adapters.

Everything here works on plain Python numbers and numpy arrays, never on framework
tensors, so both adapters can import it without pulling the other framework in: the
reasons a need was not measured and the :class:`NeedsLedger` that records them, output and
target classification, the fixers' :class:`Applied` record and the host-RNG part of their
leave-no-trace guard.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netdoctor.snapshot import Need

#: Most samples in a synthetic probe batch (inputs made from ``input_shape``). Real data uses
#: ``ProbeSettings.max_samples``; random inputs carry no information about the data, so a
#: smaller batch measures the model just as well and keeps large models quick.
SYNTHETIC_BATCH = 64
#: Fewest samples a synthetic batch is shrunk to for a large input: the rules that judge
#: per-unit batch statistics (ND401 dead units, ND402 saturation) need ``min_observations``
#: (16) samples x positions per unit, and a dense layer after global pooling sees one
#: observation per sample.
SYNTHETIC_MIN_BATCH = 16
#: Input values (summed over the inputs of one sample, times the batch) a synthetic batch
#: aims at: 2**20 float32 values, 4 MiB. Activations grow with the input, so this bounds the
#: probe's memory and time: 64 samples of 3x32x32, 37 of 3x96x96, 16 of 3x224x224.
SYNTHETIC_BUDGET = 2**20


def synthetic_batch(sample_size: int, max_samples: int) -> int:
    """Samples in a synthetic batch of inputs with ``sample_size`` values per sample.

    ``SYNTHETIC_BUDGET // sample_size`` kept within ``[SYNTHETIC_MIN_BATCH, SYNTHETIC_BATCH]``,
    then capped by ``max_samples`` (``--max-samples``), which always wins (at least 1).
    """
    fit = SYNTHETIC_BUDGET // max(int(sample_size), 1)
    return max(1, min(int(max_samples), SYNTHETIC_BATCH, max(SYNTHETIC_MIN_BATCH, fit)))

#: Reasons written into ``ModelSnapshot.missing`` (shown to the user when a rule is skipped).
REASON_NO_LOSS = "no loss given: define loss_fn or criterion in the model file"
REASON_SYNTHETIC = (
    "no data given: inputs were synthesized from the input shape; pass real inputs "
    "(sample_batch() in the model file or --data) to check the data"
)
REASON_NO_HISTORY = "training history is only recorded by netdoctor.monitor during training"
REASON_NO_TRAINABLE = "the model has no trainable parameters, so there are no gradients to measure"
REASON_LOSS_DETACHED = (
    "the loss is not connected to any trainable parameter (was the output detached or "
    "computed under torch.no_grad()?), so gradients could not be measured"
)

REASON_SURROGATE = (
    "no targets were given, so the model's own loss could not be evaluated (gradients were measured with a "
    "surrogate loss); give targets: a data function or DataLoader yielding (x, y), or --data with y"
)

NOTE_SYNTHETIC_LABELS = (
    "no targets given: the loss {name} was evaluated on seeded random labels ({what}), "
    "so its form (logits or probabilities) and gradient scale are the real ones"
)

NOTE_SURROGATE = (
    "no targets given: gradients were measured with a surrogate loss (MSE against seeded "
    "random N(0,1) targets of the output's shape); loss rules are skipped"
)
NOTE_DEFAULT_LOSS = (
    "no loss given: gradients were measured with netdoctor's default loss for the targets "
    "({name}); loss rules are skipped"
)

#: Canonical activation names for spellings used by frameworks and users.
ACTIVATION_SYNONYMS: dict[str, str] = {
    "relu": "relu", "relu6": "relu6", "leakyrelu": "leaky_relu", "leaky_relu": "leaky_relu",
    "rrelu": "leaky_relu", "elu": "elu", "selu": "selu", "celu": "celu", "gelu": "gelu",
    "gelu_new": "gelu", "gelu_fast": "gelu", "gelu_pytorch_tanh": "gelu", "quick_gelu": "gelu",
    "silu": "silu", "swish": "silu", "mish": "mish", "hardswish": "hardswish",
    "hard_swish": "hardswish", "softplus": "softplus", "prelu": "prelu",
    "sigmoid": "sigmoid", "hardsigmoid": "hard_sigmoid", "hard_sigmoid": "hard_sigmoid",
    "tanh": "tanh", "hardtanh": "hard_tanh", "hard_tanh": "hard_tanh", "softsign": "softsign",
    "softmax": "softmax", "softmax2d": "softmax", "log_softmax": "log_softmax",
    "logsoftmax": "log_softmax", "softmin": "softmin", "logsigmoid": "log_sigmoid",
    "log_sigmoid": "log_sigmoid", "glu": "glu", "linear": "linear", "identity": "linear",
}


def canonical_activation(name: str | None) -> str | None:
    """Canonical activation name (``"LeakyReLU"`` -> ``"leaky_relu"``), or the lower-cased input."""
    if name is None:
        return None
    key = str(name).strip().lower()
    return ACTIVATION_SYNONYMS.get(key, ACTIVATION_SYNONYMS.get(key.replace("_", ""), key))


def saturation_threshold(activation: str, preact: float) -> tuple[float, float] | None:
    """Output bounds beyond which a saturating unit counts as saturated.

    Args:
        activation: Canonical activation name.
        preact: Pre-activation magnitude limit (``ProbeSettings.saturation_preact``).

    Returns:
        ``(low, high)``: the unit is saturated where its output is ``<= low`` or ``>= high``
        (the outputs at pre-activations ``-preact`` and ``+preact``). ``None`` for
        activations that do not saturate.
    """
    if activation == "sigmoid":
        hi = 1.0 / (1.0 + math.exp(-preact))
        return 1.0 - hi, hi
    if activation == "tanh":
        hi = math.tanh(preact)
        return -hi, hi
    if activation == "softsign":
        hi = preact / (1.0 + preact)
        return -hi, hi
    if activation == "hard_tanh":  # flat beyond +-1: pinned exactly at the bounds
        return -1.0, 1.0
    if activation == "hard_sigmoid":
        return 0.0, 1.0
    return None


def classify_output(
    *,
    is_float: bool,
    all_finite: bool,
    min_value: float,
    max_value: float,
    max_row_sum_error: float,
    max_row_logsumexp_error: float,
    tol: float = 1e-3,
) -> str:
    """Classify a model output from a few reduced numbers (``OutputInfo.looks_like``).

    Args:
        is_float: The output has a floating dtype.
        all_finite: No NaN/Inf in the output.
        min_value: Smallest entry.
        max_value: Largest entry.
        max_row_sum_error: ``max |sum over the last axis - 1|`` over rows.
        max_row_logsumexp_error: ``max |logsumexp over the last axis|`` over rows.
        tol: Tolerance of the row-sum tests.

    Returns:
        ``"probabilities"``, ``"log_probabilities"``, ``"sigmoid"``, ``"logits"`` or ``"unknown"``.
    """
    if not is_float or not all_finite:
        return "unknown"
    if min_value >= 0.0 and max_value <= 1.0 + tol and max_row_sum_error <= tol:
        return "probabilities"
    if max_value <= 0.0 and max_row_logsumexp_error <= tol:
        return "log_probabilities"
    if min_value >= 0.0 and max_value <= 1.0:
        return "sigmoid"
    return "logits"


def target_kind(targets: Any) -> str | None:
    """Kind of a target array: ``"class_index"``, ``"one_hot"``, ``"binary"``, ``"float"``.

    Integer arrays are class indices unless they are 2-D and one-hot; float arrays whose
    values are all 0 or 1 are one-hot (2-D, exactly one 1 per row, more than one column) or
    binary; anything else is ``"float"``. ``None`` for an empty or non-numeric array.
    """
    a = np.asarray(targets)
    if a.size == 0 or a.dtype.kind not in "biuf":
        return None
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        return "float"
    rows = a.ndim == 2 and a.shape[1] > 1  # the shape one-hot targets have
    if a.dtype.kind in "biu" and not rows:
        return "binary" if a.dtype.kind == "b" else "class_index"
    zero_one = bool(np.all((a == 0) | (a == 1)))
    if rows and zero_one and bool(np.all(a.sum(axis=1) == 1)):
        return "one_hot"
    if a.dtype.kind in "biu":
        return "binary" if a.dtype.kind == "b" else "class_index"
    if zero_one:
        return "binary"
    return "float"


def loss_expectation(name: str) -> str:
    """What a loss named ``name`` wants as model output (``LossInfo.expects``).

    Knows the torch loss classes and functionals and the Keras loss names; anything else
    (MSE, L1, Huber, custom callables) is ``"any"``.
    """
    key = name.replace("_", "").lower()
    if key in {"crossentropyloss", "crossentropy", "bcewithlogitsloss", "binarycrossentropywithlogits",
               "multilabelsoftmarginloss", "sparsecategoricalcrossentropywithlogits"}:
        return "logits"
    if key in {"bceloss", "binarycrossentropy"}:
        return "probabilities"
    if key in {"nllloss", "nll", "kldivloss", "kldiv", "poissonnllloss"}:
        return "log_probabilities"
    return "any"


class NeedsLedger:
    """What one ``collect`` was asked for, what it measured, and why the rest is missing.

    Args:
        needs: The needs of the selected rules.

    ``collected`` starts with :attr:`Need.STRUCTURE` (every adapter reads the layers);
    :meth:`missing` gives ``ModelSnapshot.missing``.
    """

    def __init__(self, needs: frozenset[Need]) -> None:
        self.needs = frozenset(needs)
        self.collected: set[Need] = {Need.STRUCTURE}
        self.reasons: dict[Need, str] = {}

    def got(self, *needs: Need) -> None:
        """Record ``needs`` as measured."""
        self.collected.update(needs)

    def miss(self, need: Need, reason: str) -> None:
        """Record why ``need`` was not measured (the text a skipped rule shows)."""
        self.reasons[need] = reason

    def settle(self, need: Need, measured: bool, reason: str) -> None:
        """For a requested ``need``: measured, or missing for ``reason``; nothing when not requested."""
        if need not in self.needs:
            return
        if measured:
            self.got(need)
        else:
            self.miss(need, reason)

    def missing(self) -> dict[Need, str]:
        """Reason per requested need that was not collected (a generic one where none is known)."""
        out: dict[Need, str] = {}
        for need in self.needs:
            if need in self.collected:
                continue
            if need == Need.HISTORY:
                out[need] = self.reasons.get(need, REASON_NO_HISTORY)
            elif need == Need.GRADIENT_MOMENTS and Need.GRADIENTS in self.reasons:  # no gradients, no moments
                out[need] = self.reasons[Need.GRADIENTS]
            else:
                out[need] = self.reasons.get(need, f"{need} could not be collected for this model")
        return out


@dataclass
class Applied:
    """A fixer's fixed copy of the model and what the probe and the adapter should feed it.

    ``rename`` maps a layer's original name to its name in the copy (a wrapped layer moves);
    ``clip`` is the global gradient-norm clip of the probe; ``transform`` says how to read the
    original's output in the fixed loss's form (``"log"`` or ``"logit"``).
    """

    model: Any
    inputs: Any
    targets: Any
    loss_fn: Any
    rename: dict[str, str] = field(default_factory=dict)
    clip: float | None = None
    transform: str | None = None


@contextlib.contextmanager
def host_rngs_restored() -> Iterator[None]:
    """Run the body, then put Python's and numpy's global RNG states back."""
    saved = HostRngs()
    try:
        yield
    finally:
        saved.restore()


class HostRngs:
    """Python's and numpy's global RNG states at construction; :meth:`restore` puts them back."""

    def __init__(self) -> None:
        self.python = random.getstate()
        self.numpy = np.random.get_state()

    def restore(self) -> None:
        random.setstate(self.python)
        np.random.set_state(self.numpy)


def label_form(loss_name: str) -> str | None:
    """How to synthesize labels a named classification loss accepts, or ``None`` (a regression loss).

    ``"index"`` (class indices: cross-entropy / NLL / sparse categorical), ``"one_hot"`` (Keras
    categorical cross-entropy), ``"binary"`` (0/1 of the output's shape: binary cross-entropy).
    """
    key = loss_name.replace("_", "").lower()
    if "binary" in key or key.startswith("bce") or "multilabel" in key:
        return "binary"
    if "sparse" in key or key in {"crossentropyloss", "crossentropy", "nllloss", "nll", "nllloss(log(output))"}:
        return "index"
    if "categorical" in key and "crossentropy" in key:
        return "one_hot"
    return None


def synthetic_labels(form: str, out_shape: tuple[int, ...], class_axis: int, seed: int) -> np.ndarray:
    """Seeded random labels for an output of ``out_shape`` whose classes lie along ``class_axis``."""
    rng = np.random.default_rng(int(seed) + 2)
    shape = tuple(int(d) for d in out_shape)
    if form == "binary":
        return rng.integers(0, 2, size=shape).astype(np.float32)
    axis = class_axis % len(shape)
    classes = max(shape[axis], 1)
    idx = rng.integers(0, classes, size=shape[:axis] + shape[axis + 1:])
    if form == "index":
        return idx.astype(np.int64)
    return np.moveaxis(np.eye(classes, dtype=np.float32)[idx], -1, axis)


def column_counts(mask: np.ndarray) -> np.ndarray:
    """Column sums of a 2-D boolean (or byte) mask, as float64.

    Summed as bytes, 255 rows at a time (no column can overflow), then widened: half the time
    of one int32 sum of a (256, 512) mask.
    """
    rows = mask.view(np.uint8) if mask.dtype == np.bool_ else mask
    out = np.add.reduce(rows[:255], axis=0, dtype=np.uint8).astype(np.float64)
    for i in range(255, rows.shape[0], 255):
        out += np.add.reduce(rows[i:i + 255], axis=0, dtype=np.uint8)
    return out


def float32_cancels(var: float, mean: float, n: int) -> bool:
    """A variance taken from float32 sums (``sum x^2 / n - mean^2``) that the cancellation may have spoiled.

    A float32 sum of squares of ``n`` near-equal terms is off by up to about ``1e-9 * n`` of itself
    (numpy's and torch's dot on ``1000 + N(0, 0.01^2)``: 1e-4 at 200k to 400k entries, 5e-4 at 2M, 7e-3
    at 8M), and all of that error lands on the variance. Both adapters take exact float64 passes for a
    variance at most ``max(1e-4, 1e-8 * n)`` of ``mean^2``, where it is off by at most about a tenth.
    """
    return var <= max(1e-4, 1e-8 * n) * mean * mean


def unit_sums_cancel(var: np.ndarray, mean: np.ndarray, rows: int) -> np.ndarray:
    """Per unit: a variance taken from float32 sums over ``rows`` entries (``sum x^2 / rows - mean^2``)
    that is not finite (squares that overflow) or at most ``max(1e-2, 1e-5 * rows)`` of ``mean^2``
    (a spread too small next to the mean, like a year column, and constant units). Both adapters sum
    those units again around their mean.
    """
    return ~np.isfinite(var) | (var <= max(1e-2, 1e-5 * rows) * mean * mean)


def all_different(keys: np.ndarray) -> bool:
    """No two of the 1-D ``keys`` are equal, and none is NaN (which would hide a repeat; 0.0 and -0.0
    count as equal): the quick test both adapters run on per-unit keys before comparing units."""
    k = np.sort(keys)
    return not (k.size and np.isnan(k[-1])) and not bool((k[1:] == k[:-1]).any())


def format_shape(shape: Any) -> str:
    """``(32, 100)`` style text for a shape (``torch.Size``, tuple, list)."""
    dims = tuple(int(d) for d in shape)
    if len(dims) == 1:
        return f"({dims[0]},)"
    return "(" + ", ".join(str(d) for d in dims) + ")"


def first_line(text: Any, limit: int = 240) -> str:
    """First non-empty line of ``str(text)``, shortened to ``limit`` characters."""
    for line in str(text).splitlines():
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""
