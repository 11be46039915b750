"""``TensorStats``: summary statistics of one tensor.

Adapters reduce tensors inside their framework and fill these records; ``from_array`` is the
numpy reference implementation (used for raw data and by the rule tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True, eq=False)
class TensorStats:
    """Summary statistics of one tensor, reduced inside the framework.

    All moments are over finite entries only; ``frac_nonfinite`` counts the rest.
    ``unit_mean``/``unit_std``/``unit_min``/``unit_max`` are per-unit vectors (see the module
    docstring for the unit axis) and are filled where a rule uses them: the inputs of
    entry weight layers (for ND101), the raw data and the main output.

    A gradient's statistics are its norm (:meth:`of_norm`): ``l2`` and ``frac_nonfinite`` are
    exact, the other moments are NaN (not measured: the rules read a gradient's norm only), unless
    a selected rule needs ``Need.GRADIENT_MOMENTS``. A gradient that is zero or holds NaN/Inf gets
    every statistic.

    ``abs_mean`` and ``frac_zero`` of a tensor of more than 16384 entries are measured (from a fixed
    subsample, :mod:`netdoctor.adapters._sample`) only when a selected rule needs ``Need.SPARSITY``;
    otherwise they are what the exact sum, minimum and maximum decide (``abs_mean`` of a tensor of one
    sign, ``frac_zero`` of one with no zero or only zeros, both of a ReLU's output) and NaN where they
    do not. No built-in rule reads them.
    """

    shape: tuple[int, ...]
    mean: float = 0.0
    std: float = 0.0
    min: float = 0.0
    max: float = 0.0
    abs_max: float = 0.0
    abs_mean: float = 0.0
    l2: float = 0.0
    frac_zero: float = 0.0
    frac_nonfinite: float = 0.0
    dtype: str = "float32"
    unit_mean: np.ndarray | None = None
    unit_std: np.ndarray | None = None
    unit_min: np.ndarray | None = None
    unit_max: np.ndarray | None = None

    @classmethod
    def of_norm(cls, shape: tuple[int, ...], l2: float, dtype: str) -> TensorStats:
        """Statistics of a finite, non-zero tensor of which only the L2 norm was measured (a gradient).

        ``l2`` is the norm and ``frac_nonfinite`` 0; the moments that were not measured
        (mean, std, min, max, abs_max, abs_mean, frac_zero) are NaN, so that no reader mistakes
        them for zeros.
        """
        nan = math.nan
        return cls(shape=shape, mean=nan, std=nan, min=nan, max=nan, abs_max=nan, abs_mean=nan, l2=l2,
                   frac_zero=nan, frac_nonfinite=0.0, dtype=dtype)

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))

    @property
    def rms(self) -> float:
        """Root mean square, ``sqrt(mean^2 + std^2)``."""
        return float(np.sqrt(self.mean * self.mean + self.std * self.std))

    @property
    def is_integer(self) -> bool:
        return self.dtype.startswith(("int", "uint", "bool", "long"))

    def to_dict(self) -> dict[str, Any]:
        d = {
            "shape": list(self.shape), "mean": self.mean, "std": self.std, "min": self.min,
            "max": self.max, "abs_max": self.abs_max, "abs_mean": self.abs_mean, "l2": self.l2,
            "frac_zero": self.frac_zero, "frac_nonfinite": self.frac_nonfinite, "dtype": self.dtype,
        }
        return d

    @classmethod
    def from_array(cls, a: Any, unit_axis: int | None = None, max_units: int = 4096) -> TensorStats:
        """Compute stats of a numpy-compatible array (used by tests and for raw data).

        Adapters reduce in the framework instead; this is the reference implementation.
        """
        arr = np.asarray(a)
        dtype = str(arr.dtype)
        x = arr.astype(np.float64, copy=False)
        finite = np.isfinite(x)
        n = x.size
        nonfinite = float(1.0 - finite.mean()) if n else 0.0
        xf = x[finite] if nonfinite else x.ravel()
        if xf.size == 0:
            return cls(shape=tuple(arr.shape), frac_nonfinite=nonfinite if n else 0.0, dtype=dtype)
        unit = {}
        if unit_axis is not None and arr.ndim >= 1:
            moved = np.moveaxis(np.where(finite, x, np.nan), unit_axis, -1).reshape(-1, arr.shape[unit_axis])
            moved = moved[:, :max_units]
            with np.errstate(all="ignore"):
                import warnings
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    unit = {
                        "unit_mean": np.nanmean(moved, axis=0),
                        "unit_std": np.nanstd(moved, axis=0),
                        "unit_min": np.nanmin(moved, axis=0),
                        "unit_max": np.nanmax(moved, axis=0),
                    }
        return cls(
            shape=tuple(int(s) for s in arr.shape),
            mean=float(xf.mean()),
            std=float(xf.std()),
            min=float(xf.min()),
            max=float(xf.max()),
            abs_max=float(np.abs(xf).max()),
            abs_mean=float(np.abs(xf).mean()),
            l2=float(np.sqrt(np.square(xf).sum())),
            frac_zero=float((xf == 0).sum() / n),
            frac_nonfinite=nonfinite,
            dtype=dtype,
            **unit,
        )
