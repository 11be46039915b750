"""netdoctor: a pytest-style diagnostic linter for neural networks.

``import netdoctor`` stays light: no torch, tensorflow or keras is imported until a model
of that framework is checked.

    >>> report = netdoctor.check(model, x, y)          # doctest: +SKIP
    >>> report.exit_code("warning")                    # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

from netdoctor._version import __version__
from netdoctor.errors import NetdoctorError
from netdoctor.findings import Category, Finding, Report, Severity
from netdoctor.suppress import allow

if TYPE_CHECKING:  # what the lazy attributes below are, for type checkers (nothing is imported at run time)
    from netdoctor.adapters.keras.callback import KerasCallback as KerasCallback
    from netdoctor.config import Config
    from netdoctor.monitor.watch import watch as watch
    from netdoctor.snapshot import ProbeSettings

__all__ = ["Category", "Finding", "NetdoctorError", "Report", "Severity", "__version__", "allow", "check"]


def check(
    model: Any,
    inputs: Any = None,
    targets: Any = None,
    *,
    loss_fn: Any = None,
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    config: Config | None = None,
    input_shape: tuple[int, ...] | None = None,
    settings: ProbeSettings | None = None,
    verify: bool = False,
    fit_probe: bool = False,
) -> Report:
    """Diagnose a model on one probe batch; see :func:`netdoctor.api.check`."""
    from netdoctor.api import check as _check

    return _check(model, inputs, targets, loss_fn=loss_fn, select=select, ignore=ignore, config=config,
                  input_shape=input_shape, settings=settings, verify=verify, fit_probe=fit_probe)


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
