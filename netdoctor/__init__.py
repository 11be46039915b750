"""netdoctor: a pytest-style diagnostic linter for neural networks.

``import netdoctor`` stays light: no torch, tensorflow or keras is imported until a model
of that framework is checked.

    >>> report = netdoctor.check(model, x, y)          # doctest: +SKIP
    >>> report.exit_code("warning")                    # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from netdoctor._version import __version__
from netdoctor.errors import NetdoctorError
from netdoctor.findings import Category, Finding, Report, Severity
from netdoctor.suppress import allow

__all__ = ["Category", "Finding", "NetdoctorError", "Report", "Severity", "__version__", "allow", "check"]


def check(model: Any, inputs: Any = None, targets: Any = None, **kwargs: Any) -> Report:
    """Diagnose a model on one probe batch; see :func:`netdoctor.api.check`."""
    from netdoctor.api import check as _check

    return _check(model, inputs, targets, **kwargs)


_LAZY = {"watch": ("netdoctor.monitor", "watch"), "KerasCallback": ("netdoctor.adapters.keras.callback", "KerasCallback")}


def __getattr__(name: str) -> Any:
    """Lazy attributes: ``netdoctor.watch`` and ``netdoctor.KerasCallback`` import on first use."""
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'netdoctor' has no attribute {name!r}")
