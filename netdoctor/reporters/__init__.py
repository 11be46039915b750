"""Reporters: turn a finished :class:`~netdoctor.findings.Report` into text.

Each reporter is a module ``netdoctor.reporters.<name>`` with a function
``render(report: Report, **opts) -> str``. Modules are imported only when used, so adding a
format is adding a module; :func:`available` lists the formats whose modules exist.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netdoctor.findings import Report


def available() -> list[str]:
    """Names of the installed reporter modules, sorted (``["github", "json", "text", ...]``)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get(name: str) -> ModuleType:
    """Import the reporter module ``name``.

    Raises:
        ValueError: No reporter of that name (the message lists the available ones).
    """
    if name.startswith("_") or name not in available():
        raise ValueError(f"unknown format {name!r}; available: {', '.join(available())}")
    return importlib.import_module(f"{__name__}.{name}")


def render(name: str, report: Report, **opts: Any) -> str:
    """Render ``report`` with the reporter ``name`` (``"text"``, ``"json"``, ...)."""
    return get(name).render(report, **opts)


__all__ = ["available", "get", "render"]
