"""The loss probe: what the loss asks of the output, from host arrays both adapters hand over.

Both adapters give :func:`measure` the main output, the gradient of the loss with respect to
it and the targets, as numpy arrays. The output of a probe batch is small (rows x classes); a
larger one (a language model's ``batch x sequence x vocabulary`` logits) is skipped above
:data:`MAX_ENTRIES` entries rather than copied to the host.

The measurements do not depend on how the loss is written (see
:class:`netdoctor.snapshot.LossProbe`): the per-axis normalization of the output, the share of
rows the loss sends no gradient at all, the gradient the loss sends into the logits compared
with what cross-entropy would send, ``ln C`` for class targets, and the range of float targets
against the ranges a bounded output can reach.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from netdoctor.snapshot import LossProbe

#: Outputs with more entries than this are not copied to the host (1M floats = 4 MB).
MAX_ENTRIES = 1 << 20

#: Ranges a bounded output can reach: sigmoid/softmax and tanh.
RANGES = {"0,1": (0.0, 1.0), "-1,1": (-1.0, 1.0)}


def _labels(y: np.ndarray, out_shape: tuple[int, ...], kind: str | None) -> np.ndarray | None:
    """Class index per output row (last axis = classes), or ``None`` when the targets are not classes."""
    c = out_shape[-1]
    if kind == "class_index" and y.ndim == len(out_shape) and y.shape[-1] == 1:
        y = y[..., 0]  # Keras' (N, 1) class indices
    if kind == "class_index" and tuple(y.shape) == tuple(out_shape[:-1]):
        lab = y.reshape(-1).astype(np.int64)
    elif kind == "one_hot" and tuple(y.shape) == tuple(out_shape):
        lab = y.reshape(-1, c).argmax(-1)
    else:
        return None
    if lab.size == 0 or lab.min() < 0 or lab.max() >= c:
        return None
    return lab


def _finite(a: np.ndarray) -> bool:
    """Every entry of a float64 array is finite: its sum is (one pass, no mask), unless it overflows."""
    return math.isfinite(float(a.sum())) or bool(np.isfinite(a).all())


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


class OutputRows:
    """A finite float output as rows of classes (float64; one axis is one row), with the per-row sums and
    log-sum-exp that both the output's classification (``OutputInfo.looks_like``) and :func:`measure`
    read: one pass each, shared, instead of one set per reader. The exponentials are taken on first
    use (a regression loss probe never needs them).

    Row reductions over a short class axis are matrix-vector products (numpy's ``sum(-1)`` over ten
    classes costs several times more); the exponentials are shifted by the global maximum, and by
    each row's own where a row's sum would underflow (a row far below the others).
    """

    def __init__(self, z: np.ndarray) -> None:
        self.z = z
        self.classes = int(z.shape[-1]) if z.ndim else 1
        self.rows = z.reshape(-1, self.classes)
        self._ones = np.ones(self.classes)
        self.sums = self.rows @ self._ones
        self._row_sum_err = float(np.abs(self.sums - 1).max())
        self._exp: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @staticmethod
    def of(z: np.ndarray, finite: bool | None = None) -> OutputRows | None:
        """``OutputRows`` of a float64 array, or ``None`` (fewer than two axes, empty, too large, not
        finite; ``finite`` when the caller knows)."""
        if z.ndim < 2 or z.size == 0 or z.size > MAX_ENTRIES or z.dtype != np.float64:
            return None
        if not (finite if finite is not None else _finite(z)):
            return None
        return OutputRows(z)

    def _exponentials(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(exp(rows - shift), their row sums, log-sum-exp per row)``, computed once."""
        if self._exp is None:
            top = float(self.rows.max())
            e = np.exp(self.rows - top)
            total = e @ self._ones
            if total.size and not float(total.min()) > 1e-200:
                top_rows = self.rows.max(-1)
                e = np.exp(self.rows - top_rows[:, None])
                total = e @ self._ones
                self._exp = e, total, top_rows + np.log(total)
            else:
                self._exp = e, total, top + np.log(total)
        return self._exp

    @property
    def lse(self) -> np.ndarray:
        """Log-sum-exp of each row."""
        return self._exponentials()[2]

    def softmax(self) -> np.ndarray:
        """Row-wise softmax of the rows."""
        e, total, _ = self._exponentials()
        return e / total[:, None]

    def row_sum_err(self) -> float:
        """``max |row sum - 1|``."""
        return self._row_sum_err

    def lse_err(self) -> float:
        """``max |log-sum-exp of a row|``."""
        return float(np.abs(self.lse).max())


def _class_gradient(rows: np.ndarray, gr: np.ndarray, lab: np.ndarray, dist: bool,
                    at_logits: bool, zero: np.ndarray | None = None,
                    softmax: Callable[[], np.ndarray] | None = None) -> dict[str, float]:
    """``grad_vs_ce`` over the rows the model gets wrong, and the share of wrong rows with no gradient
    (``zero``: the rows of ``gr`` that are all zero, when the caller has them; ``softmax``: the rows'
    softmax, when the caller has it)."""
    n = rows.shape[0]
    idx = np.arange(n)
    if dist and at_logits:  # a distribution, and the gradient was taken at its logits already
        p, gz = rows, gr
    elif dist:  # a distribution: back through the softmax Jacobian to its logits
        p = rows
        gz = p * (gr - (gr * p).sum(-1, keepdims=True))
    else:
        p = softmax() if softmax is not None else _softmax(rows)
        gz = gr
    out: dict[str, float] = {}
    if zero is None:
        zero = np.abs(gr).max(-1) == 0
    wrong = rows.argmax(-1) != lab
    out["zero_grad_wrong"] = np.count_nonzero(zero & wrong) / n
    p_lab = p[idx, lab]
    hard = p_lab < 0.5  # the samples the model gets wrong: what the gradient must correct
    n_hard = np.count_nonzero(hard)
    if n_hard >= max(4, 0.02 * n):
        # |p - onehot(lab)|^2 of a row is |p|^2 - 2 p[lab] + 1, at least 1/4 on these rows (no cancellation)
        ph, gh = p[hard], gz[hard]
        ref_norm = math.sqrt(max(float(np.einsum("ij,ij->", ph, ph)) - 2.0 * float(p_lab[hard].sum()) + n_hard, 0.0))
        if ref_norm > 1e-12:
            out["grad_vs_ce"] = math.sqrt(float(np.einsum("ij,ij->", gh, gh))) * n / ref_norm
    return out


#: Clamp of the output into the open unit interval, to tell a loss that needs probabilities (``LossInfo.unit_range``).
UNIT_EPS = 1e-7

#: Smallest batch on which the loss is split in halves (``LossProbe.sum_ratio``).
MIN_SPLIT_ROWS = 16


def batch_additivity(loss_on: Callable[[int, int], float], n: int, whole: float | None = None,
                     known: float | None = None) -> float | None:
    """``(L(rows 0..h) + L(rows h..2h)) / L(rows 0..2h)`` for ``h = n // 2`` (``LossProbe.sum_ratio``).

    ``loss_on(start, stop)`` evaluates the user's loss on those rows of the output it was given and
    the matching targets (no forward pass). A mean over the batch gives 2 and a sum 1, exactly, for
    any loss that is a mean or a sum of per-sample terms. ``whole`` is the loss on all ``n`` rows
    when the adapter has it (the probe pass's own loss): for an even ``n`` it is not evaluated
    again. ``None`` for fewer than :data:`MIN_SPLIT_ROWS` rows, a loss that fails on a part, or a
    (near) zero or non-finite loss. ``known`` is the ratio the loss has by construction (one of the
    framework's own loss classes, from its ``reduction``): given a finite, non-zero ``whole``, it is
    the answer, and the halves are not evaluated.
    """
    if n < MIN_SPLIT_ROWS:
        return None
    if known is not None and whole is not None and math.isfinite(whole) and abs(whole) >= 1e-12:
        return known
    h = n // 2
    try:
        full = whole if whole is not None and 2 * h == n else loss_on(0, 2 * h)
        a, b = loss_on(0, h), loss_on(h, 2 * h)
    except Exception:  # a loss that cannot take part of a batch (fixed shapes, batch statistics): not judged
        return None
    if not all(math.isfinite(v) for v in (full, a, b)) or abs(full) < 1e-12:
        return None
    return float((a + b) / full)


def _soft_targets(rows: np.ndarray, g: np.ndarray | None, yf: np.ndarray,
                  softmax: Callable[[], np.ndarray] | None = None) -> dict[str, float]:
    """Float targets shaped like the output: are they class distributions, and is the loss a soft-target CE?
    (``softmax``: the rows' softmax, when the caller has it.)"""
    out: dict[str, float] = {}
    t = yf.reshape(rows.shape)
    bad = (t.min(-1) < 0) | (np.abs(t.sum(-1) - 1) > 1e-3)
    out["target_not_dist"] = float(bad.mean())
    if g is None or rows.shape[-1] < 2:
        return out
    gr = g.reshape(rows.shape)
    ref = (softmax() if softmax is not None else _softmax(rows)) * t.sum(-1, keepdims=True) - t
    gg, rr = float((gr * gr).sum()), float(np.linalg.norm(ref))
    if gg > 0 and rr > 1e-12:
        k = float((gr * ref).sum()) / gg
        out["soft_ce_err"] = float(np.linalg.norm(k * gr - ref)) / rr
    return out


def measure(out: Any, grad: Any, y: Any, kind: str | None, *, grad_at_logits: bool = False,
            sum_ratio: float | None = None, rows: OutputRows | None = None) -> LossProbe | None:
    """Measure the output/loss/target semantics of one probe batch.

    Args:
        out: The main output (float array, samples first).
        grad: d loss / d output, same shape, or ``None`` when no gradient reached the output.
        y: The targets (first target array) or ``None``.
        kind: ``target_kind`` of ``y`` (``"class_index"``, ``"one_hot"``, ``"binary"``, ``"float"``).
        grad_at_logits: ``grad`` was taken at the logits of a softmax output (Keras on TensorFlow,
            whose cross-entropies read the logits a softmax output carries), not at the output.
        sum_ratio: :func:`batch_additivity` of the loss, measured by the adapter.
        rows: ``out`` as :class:`OutputRows`, when the adapter made them already (``out`` is then not read).
    """
    if rows is not None:
        z = rows.z
    elif out is None:
        return None
    else:
        z = np.asarray(out, dtype=np.float64)
        if z.ndim == 0 or z.size == 0 or z.size > MAX_ENTRIES or not _finite(z):
            return None
        rows = OutputRows.of(z, finite=True)
    if rows is not None:
        c, flat, row_err = rows.classes, rows.rows, rows.row_sum_err()
    else:  # one axis: a value per sample
        c = 1
        flat = z.reshape(-1, 1)
        row_err = float(np.abs(flat[:, 0] - 1).max())
    nonneg = bool(flat.min() >= 0)
    batch_err = (float(np.abs(np.ones(z.shape[0]) @ z - 1).max())  # the columns' sums
                 if z.ndim == 2 and z.shape[0] > 1 else None)
    fields: dict[str, Any] = {}
    g = None
    if grad is not None:
        g = np.asarray(grad, dtype=np.float64)
        if g.shape != z.shape or not _finite(g):
            g = None
    zero_rows = None
    if g is not None:
        per_sample = g.reshape(g.shape[0], -1) if g.ndim >= 1 else g.reshape(1, -1)
        zero_rows = np.abs(per_sample) @ np.ones(per_sample.shape[1]) == 0  # a sum of |g| is 0 only if each is
        fields["zero_grad_rows"] = np.count_nonzero(zero_rows) / zero_rows.size
    yarr = None if y is None else np.asarray(y)
    if yarr is not None and c >= 2 and kind in ("class_index", "one_hot"):
        lab = _labels(yarr, tuple(z.shape), kind)
        if lab is not None:
            fields["target_classes"] = kind
            fields["expected_init_loss"] = math.log(c)
            if g is not None:
                fields.update(_class_gradient(flat, g.reshape(-1, c), lab, nonneg and row_err < 1e-3, grad_at_logits,
                                              zero_rows if z.ndim == 2 else None,
                                              rows.softmax if rows is not None else None))  # then the same rows
    elif yarr is not None and kind == "float" and yarr.size and np.isfinite(yarr).all():
        yf = yarr.astype(np.float64)
        fields["target_var"] = float(yf.var())
        fields["target_outside"] = {k: float(((yf < lo) | (yf > hi)).mean()) for k, (lo, hi) in RANGES.items()}
        fields["target_floor"] = {k: float(np.square(yf - np.clip(yf, lo, hi)).mean()) for k, (lo, hi) in RANGES.items()}
        if yf.size == z.size and (yf.shape == z.shape or (yf.ndim >= 1 and yf.shape[0] == z.shape[0])):
            fields.update(_soft_targets(flat, None if g is None or grad_at_logits else g, yf,
                                        rows.softmax if rows is not None else None))
    if sum_ratio is not None:
        fields["sum_ratio"] = sum_ratio
    return LossProbe(units=c, rows=int(flat.shape[0]), nonnegative=nonneg, row_sum_err=row_err,
                     batch_sum_err=batch_err, **fields)
