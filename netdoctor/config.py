"""Configuration: rule selection, severities, options, per-layer ignores, fail-on.

``Config`` is what the engine consumes; :func:`make_config` builds one from library-call
arguments, :func:`validate_refs` checks rule references. ``[tool.netdoctor]`` in
pyproject.toml is read into one by :mod:`netdoctor.config_file`; the CLI then overrides it
with its flags.
"""

from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from netdoctor.errors import ConfigError
from netdoctor.findings import Finding, Severity

FAIL_ON_VALUES = ("error", "warning", "info", "never")
#: The one default fail level of ``netdoctor check``, the ``netdoctor`` pytest fixture and the
#: items of ``pytest --netdoctor``: a warning is reported, an error fails.
DEFAULT_FAIL_ON = "error"


@dataclass(frozen=True)
class Config:
    """Resolved configuration.

    Attributes:
        select: Codes or prefixes to enable (``("ND",)`` = all). Longest prefix wins
            between ``select`` and ``ignore``.
        ignore: Codes or prefixes to disable.
        fail_on: ``"error"``, ``"warning"``, ``"info"`` or ``"never"``.
        severity: Per-rule severity overrides, by code.
        options: Per-rule option overrides, by code.
        per_layer_ignores: ``{layer glob: (codes or prefixes...)}``; matching findings are
            suppressed (counted, not hidden).
    """

    select: tuple[str, ...] = ("ND",)
    ignore: tuple[str, ...] = ()
    fail_on: str = DEFAULT_FAIL_ON
    severity: Mapping[str, Severity] = field(default_factory=dict)
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    per_layer_ignores: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def is_selected(self, code: str, name: str = "") -> bool:
        """Whether a rule is enabled: the longest matching prefix of select/ignore wins."""
        return _selected(code, name, tuple(self.select), tuple(self.ignore))

    def severity_for(self, code: str, default: Severity) -> Severity:
        return self.severity.get(code, default)

    def options_for(self, code: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
        merged = dict(defaults)
        merged.update(self.options.get(code, {}))
        return merged

    def layer_ignored(self, finding: Finding) -> bool:
        """Whether a per-layer ignore covers this finding."""
        if finding.layer is None:
            return False
        for pattern, codes in self.per_layer_ignores.items():
            if fnmatch.fnmatchcase(finding.layer, pattern):
                if _longest_match(finding.code, finding.name, codes) >= 0:
                    return True
        return False


@functools.lru_cache(maxsize=4096)
def _selected(code: str, name: str, select: tuple[str, ...], ignore: tuple[str, ...]) -> bool:
    """:meth:`Config.is_selected`, cached: every check asks it of every rule, with the same patterns."""
    best_sel = _longest_match(code, name, select)
    return best_sel >= 0 and best_sel > _longest_match(code, name, ignore)


def _longest_match(code: str, name: str, patterns: Iterable[str]) -> int:
    """Length of the longest pattern matching ``code`` (by prefix) or ``name`` (exactly).

    A name match counts as a full-code match. -1 when nothing matches.
    """
    best = -1
    for p in patterns:
        p = p.strip()
        if not p:
            continue
        if p.lower() == name:
            best = max(best, len(code))
        elif code.startswith(p.upper()) and p.upper().startswith("ND"):
            best = max(best, len(p))
        elif p.upper() == "ALL":
            best = max(best, 0)
    return best


def make_config(
    select: Iterable[str] | None = None,
    ignore: Iterable[str] | None = None,
    base: Config | None = None,
    **changes: Any,
) -> Config:
    """Build a ``Config`` from library-call arguments, validating rule references."""
    from dataclasses import replace

    cfg = base or Config()
    if select is not None:
        cfg = replace(cfg, select=tuple(validate_refs(select)))
    if ignore is not None:
        cfg = replace(cfg, ignore=tuple(cfg.ignore) + tuple(validate_refs(ignore)))
    if changes:
        cfg = replace(cfg, **changes)
    if cfg.fail_on not in FAIL_ON_VALUES:
        raise ConfigError(f"fail-on must be one of {', '.join(FAIL_ON_VALUES)}, not {cfg.fail_on!r}")
    return cfg


def validate_refs(refs: Iterable[str]) -> list[str]:
    """Check that each code, prefix or name refers to at least one rule.

    Args:
        refs: Rule codes, prefixes or names (a comma-separated string is split).

    Returns:
        The non-empty references, stripped.

    Raises:
        netdoctor.errors.ConfigError: A reference matches no rule (with a suggestion).
    """
    from netdoctor.rules import registry

    if isinstance(refs, str):
        refs = [r for r in refs.split(",")]
    reg = registry()
    out = []
    for ref in refs:
        if not isinstance(ref, str):
            raise ConfigError(f"rules are named by code, prefix or name (strings such as 'ND301' or "
                              f"'dead-units'), not {ref!r}")
        r = ref.strip()
        if not r:
            continue
        if r.upper() == "ALL" or any(code.startswith(r.upper()) for code in reg) or any(
            s.name == r.lower() for s in reg.values()
        ):
            out.append(r)
            continue
        raise ConfigError(f"unknown rule {r!r}{suggest(r, list(reg) + [s.name for s in reg.values()])}")
    return out


def suggest(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'X'?"`` for the closest of ``candidates`` to ``word``, else ``""``."""
    import difflib

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""

