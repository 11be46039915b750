"""How rule messages write numbers and names: ``fmt``, ``pct``, ``plural``, ``name_list``, ``nice_floor``.

Also used by :mod:`netdoctor.verify` for its reasons, so that a verdict reads like the finding.
"""

from __future__ import annotations

import math
from typing import Sequence

def fmt(x: float, digits: int = 2) -> str:
    """Short human form of a measurement: ``0.12``, ``660``, ``3.4e-7``, ``1.2e+4``, ``inf``."""
    if x is None:
        return "n/a"
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    ax = abs(x)
    if 100 <= ax < 1e5:
        return str(int(round(x)))
    if 1e-3 <= ax < 100:
        d = max(digits - 1 - math.floor(math.log10(ax)), 0)
        return f"{round(x, d):.{d}f}".rstrip("0").rstrip(".") if d else str(int(round(x)))
    mant, exp = f"{x:.{max(digits - 1, 0)}e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    return f"{mant}e{int(exp):+d}".replace("e+", "e+") if int(exp) > 0 else f"{mant}e{int(exp)}"


def pct(frac: float) -> str:
    """``0.623 -> '62%'``; small non-zero fractions keep one decimal (``'0.4%'``)."""
    p = 100.0 * float(frac)
    if 0 < p < 1:
        return f"{p:.1f}%"
    return f"{p:.0f}%"


def nice_floor(x: float) -> float:
    """Round down to 1, 2 or 5 times a power of ten (a readable clipping threshold)."""
    if not x > 0 or math.isinf(x):
        return 1.0
    e = math.floor(math.log10(x))
    base = 10.0 ** e
    for m in (5.0, 2.0, 1.0):
        if x >= m * base:
            out = m * base
            return float(f"{out:.6g}")
    return base


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def name_list(names: Sequence[str], limit: int = 4) -> str:
    """```a`, `b`, `c` and 3 more`` (backticks around layer names)."""
    shown = [f"`{n}`" for n in names[:limit]]
    rest = len(names) - len(shown)
    if rest > 0:
        return ", ".join(shown) + f" and {rest} more"
    if len(shown) > 1:
        return ", ".join(shown[:-1]) + " and " + shown[-1]
    return shown[0] if shown else ""
