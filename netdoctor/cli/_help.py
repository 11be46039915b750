"""``--help`` without type placeholders: flags show no ``<bool>``, arguments show their metavar.

typer prints a Python type for every parameter (``--debug <bool>``, ``PATH <list[str]>``) and
writes required arguments as ``{rule}`` in the usage line. The command and group classes here
(``cls=`` of ``typer.Typer``/``app.command``) keep the help to readable names: an option with a
value shows its metavar (``--format FORMAT``), a flag shows nothing, an argument shows its
upper-case name once (``netdoctor explain [OPTIONS] RULE``).
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


class _Flag(TyperOption):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None


class _Argument(TyperArgument):
    @property
    def display_name_raw(self) -> str:
        return self.metavar or (self.name or "").upper()

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def display_type(self, ctx: Any) -> str:
        return ""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if self.nargs != 1:
            name += "..."
        return name if self.required else f"[{name}]"


def _readable(params: list[Any]) -> list[Any]:
    for p in params:
        if type(p) is TyperOption and (p.is_flag or p.count):
            p.__class__ = _Flag
        elif type(p) is TyperArgument:
            p.__class__ = _Argument
    return params


class Command(TyperCommand):
    """A command whose help shows metavars, not Python types."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _readable(super().get_params(ctx))


class Group(TyperGroup):
    """The ``netdoctor`` group, with the same help as :class:`Command`."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _readable(super().get_params(ctx))
