"""Result records: severities, categories, findings and the report.

These types are framework-neutral and cheap to import. Rules yield :class:`Finding`
objects; the engine gathers them into a :class:`Report`; reporters render a finished
report and never analyse anything themselves.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

SCHEMA_VERSION = 1


class Severity(enum.IntEnum):
    """How bad a finding is. Ordered: ``INFO < WARNING < ERROR``."""

    INFO = 1
    WARNING = 2
    ERROR = 3

    def __str__(self) -> str:  # "error", "warning", "info"
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | Severity) -> Severity:
        """Parse ``"error"``/``"warning"``/``"info"`` (case-insensitive)."""
        if isinstance(value, Severity):
            return value
        try:
            return cls[str(value).strip().upper()]
        except KeyError:
            raise ValueError(
                f"unknown severity {value!r}; expected one of: error, warning, info"
            ) from None


class Category(enum.Enum):
    """What part of the network a rule looks at; the hundreds digit of its code."""

    DATA = 1
    WEIGHTS = 2
    GRADIENTS = 3
    ACTIVATIONS = 4
    STRUCTURE = 5
    TRAINING = 6

    def __str__(self) -> str:
        return self.name.lower()

    @classmethod
    def from_code(cls, code: str) -> Category:
        """``"ND301"`` -> ``Category.GRADIENTS``."""
        return cls(int(code[2]))


@dataclass(frozen=True, slots=True)
class Finding:
    """One diagnosed problem.

    Attributes:
        code: Rule code, e.g. ``"ND301"``.
        name: Rule name, e.g. ``"vanishing-gradients"``.
        severity: Configured severity of this finding.
        category: Rule category.
        message: What was measured and the limit it broke.
        layer: Qualified layer name, or ``None`` for model-wide findings.
        recommendation: One imperative sentence saying what to change.
        snippet: Code for the user's framework that applies the recommendation.
        evidence: Measured numbers behind the finding.
        file: The model file the finding belongs to (set by the CLI).
        step: Training step where it was first seen (monitor only).
        verification: Before/after measurements of the recommended fix, when verified.
        line: Line of ``file`` where the layer was created, when the loader located it (Keras
            model files); reporters that need a line otherwise look for the layer's name.
    """

    code: str
    name: str
    severity: Severity
    category: Category
    message: str
    layer: str | None = None
    recommendation: str = ""
    snippet: str | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    file: str | None = None
    step: int | None = None
    verification: Mapping[str, Any] | None = None
    line: int | None = None

    @property
    def rule(self) -> str:
        """Alias of :attr:`code` (the JSON field name)."""
        return self.code

    def with_(self, **changes: Any) -> Finding:
        """Return a copy with some fields replaced."""
        return replace(self, **changes)

    def sort_key(self) -> tuple:
        return (-int(self.severity), self.file or "", self.code, self.layer or "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (stable field names, see ``schema_version``)."""
        return {
            "file": self.file,
            "rule": self.code,
            "name": self.name,
            "severity": str(self.severity),
            "category": str(self.category),
            "layer": self.layer,
            "line": self.line,
            "message": self.message,
            "recommendation": self.recommendation,
            "snippet": self.snippet,
            "evidence": _jsonable(dict(self.evidence)),
            "step": self.step,
            "verification": _jsonable(self.verification) if self.verification else None,
        }


@dataclass(frozen=True, slots=True)
class SkippedRule:
    """A selected rule that could not run, and why.

    ``part`` names the part of the rule that could not be judged when the rest of it ran (e.g.
    the loss-scaled limits of ND302 under a surrogate loss); ``None`` when the whole rule was skipped.
    """

    code: str
    name: str
    reason: str
    part: str | None = None

    @property
    def label(self) -> str:
        """``"ND302 exploding-gradients"``, with ``" (part)"`` for a partly skipped rule."""
        return f"{self.code} {self.name}" + (f" ({self.part})" if self.part else "")

    def to_dict(self) -> dict[str, str | None]:
        return {"rule": self.code, "name": self.name, "reason": self.reason, "part": self.part}


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """What was checked: one model (from one file, or passed to the library API).

    Attributes:
        file: Model file, or ``None`` for library calls.
        framework: ``"torch"`` or ``"keras"``.
        framework_version: Version string of the framework.
        model_class: Class name of the model.
        param_count: Number of parameters (trainable and not).
        batch_size: Samples in the probe batch.
        synthetic_inputs: Inputs were synthesized (no data was given).
        loss: Description of the loss used for the probe (e.g. ``"CrossEntropyLoss"``).
        skipped: Rules that could not run on this model.
        rules_passed: Codes of rules that ran on this model and found nothing.
        layers: Per-layer health rows for the report table (see ``netdoctor.analysis.health.layer_health``).
        notes: Extra remarks from the adapter (e.g. "surrogate loss used").
    """

    file: str | None
    framework: str
    framework_version: str = ""
    model_class: str = ""
    param_count: int = 0
    batch_size: int = 0
    synthetic_inputs: bool = False
    loss: str | None = None
    skipped: tuple[SkippedRule, ...] = ()
    rules_passed: tuple[str, ...] = ()
    layers: tuple[Mapping[str, Any], ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "framework": self.framework,
            "framework_version": self.framework_version,
            "model_class": self.model_class,
            "param_count": self.param_count,
            "batch_size": self.batch_size,
            "synthetic_inputs": self.synthetic_inputs,
            "loss": self.loss,
            "skipped": [s.to_dict() for s in self.skipped],
            "rules_passed": list(self.rules_passed),
            "layers": [_jsonable(dict(row)) for row in self.layers],
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class LoadError:
    """A model file that could not be checked (import failure, crash, bad data)."""

    file: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "message": self.message}


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file reached by a directory walk or a pattern that holds no model ("no model: skipped")."""

    file: str
    reason: str = "no model"

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Report:
    """The outcome of one ``check`` (one or several models).

    Attributes:
        findings: Active findings, most severe first.
        targets: One entry per checked model.
        rules_run: Codes of the rules that were selected and ran.
        errors: Files that could not be checked.
        skipped_files: Files a directory walk or a pattern reached that hold no model; they
            do not change the exit code.
        suppressed: Findings silenced by ``netdoctor.allow`` or per-layer ignores.
        timings: Seconds spent per phase (``"collect"``, ``"rules"``, ``"total"``).
        history: The training history of a monitored run (``netdoctor.history.History``),
            drawn by the HTML report; ``None`` for a one-shot check. Not part of the JSON
            (the run's ``log_to`` file carries it).
    """

    findings: tuple[Finding, ...] = ()
    targets: tuple[TargetInfo, ...] = ()
    rules_run: tuple[str, ...] = ()
    errors: tuple[LoadError, ...] = ()
    suppressed: tuple[Finding, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    history: Any = field(default=None, repr=False, compare=False)
    skipped_files: tuple[SkippedFile, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "findings", tuple(sorted(self.findings, key=Finding.sort_key)))

    # -- queries -------------------------------------------------------------------
    @property
    def skipped(self) -> tuple[SkippedRule, ...]:
        """Skipped rules of all targets (deduplicated by code and reason)."""
        seen: dict[tuple[str, str, str], SkippedRule] = {}
        for t in self.targets:
            for s in t.skipped:
                seen.setdefault((s.code, s.reason, s.part or ""), s)
        return tuple(seen.values())

    def count(self, severity: Severity | str) -> int:
        """Number of findings of exactly this severity."""
        sev = Severity.parse(severity)
        return sum(1 for f in self.findings if f.severity == sev)

    def codes(self) -> set[str]:
        """Set of rule codes that produced findings."""
        return {f.code for f in self.findings}

    def by_code(self, code: str) -> list[Finding]:
        return [f for f in self.findings if f.code == code]

    @property
    def ok(self) -> bool:
        """True when there is no error-severity finding and no load error."""
        return self.exit_code("error") == 0

    def exit_code(self, fail_on: str | Severity = "error") -> int:
        """0: nothing at or above ``fail_on``; 1: findings at or above it; 2: load errors.

        ``fail_on`` is ``"error"``, ``"warning"``, ``"info"`` or ``"never"``.
        """
        if self.errors:
            return 2
        if isinstance(fail_on, str) and fail_on.strip().lower() == "never":
            return 0
        threshold = Severity.parse(fail_on)
        return 1 if any(f.severity >= threshold for f in self.findings) else 0

    # -- combination ---------------------------------------------------------------
    @classmethod
    def merge(cls, reports: Iterable[Report], *, total: float | None = None) -> Report:
        """Combine per-file reports into one.

        Args:
            reports: The per-file reports.
            total: Wall-clock seconds of the whole run; replaces the sum of the files'
                ``total`` timings (files checked in parallel overlap).
        """
        reports = list(reports)
        timings: dict[str, float] = {}
        for r in reports:
            for k, v in r.timings.items():
                timings[k] = timings.get(k, 0.0) + v
        if total is not None:
            timings["total"] = total
        rules: list[str] = []
        for r in reports:
            rules.extend(c for c in r.rules_run if c not in rules)
        return cls(
            findings=tuple(f for r in reports for f in r.findings),
            targets=tuple(t for r in reports for t in r.targets),
            rules_run=tuple(rules),
            errors=tuple(e for r in reports for e in r.errors),
            suppressed=tuple(f for r in reports for f in r.suppressed),
            skipped_files=tuple(s for r in reports for s in r.skipped_files),
            timings=timings,
        )

    def with_file(self, file: str) -> Report:
        """Stamp every finding and target with ``file``."""
        return replace(
            self,
            findings=tuple(f.with_(file=file) for f in self.findings),
            suppressed=tuple(f.with_(file=file) for f in self.suppressed),
            targets=tuple(replace(t, file=file) for t in self.targets),
        )

    def summary(self) -> str:
        """One line like ``2 errors, 1 warning, 17 rules passed in 0.84s``."""
        parts = []
        for sev, word in ((Severity.ERROR, "error"), (Severity.WARNING, "warning"), (Severity.INFO, "info")):
            n = self.count(sev)
            if n or sev != Severity.INFO:
                parts.append(f"{n} {word}{'' if n == 1 or word == 'info' else 's'}")
        passed = len(set().union(*(set(t.rules_passed) for t in self.targets))) if self.targets else 0
        parts.append(f"{passed} rules passed")
        line = ", ".join(parts)
        if self.suppressed:
            line += f" ({len(self.suppressed)} suppressed)"
        if self.errors:
            line += f", {len(self.errors)} file{'s' if len(self.errors) != 1 else ''} failed to load"
        if self.skipped_files:
            n = len(self.skipped_files)
            line += f", {n} file{'s' if n != 1 else ''} skipped (no model)"
        total = self.timings.get("total")
        if total is not None:
            line += f" in {total:.2f}s"
        return line

    # -- display ---------------------------------------------------------------------
    def __str__(self) -> str:
        """The text report, as ``netdoctor check`` prints it (without colour)."""
        from netdoctor.reporters import render

        return render("text", self)

    def __repr__(self) -> str:
        files = ", ".join(t.file or t.model_class or "model" for t in self.targets[:3])
        more = f" and {len(self.targets) - 3} more" if len(self.targets) > 3 else ""
        return f"<netdoctor Report{' of ' + files + more if files else ''}: {self.summary()}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """IPython's plain-text display: the text report instead of the dataclass fields."""
        printer.text(repr(self) if cycle else str(self).rstrip("\n"))

    def _repr_html_(self) -> str:
        """Jupyter's rich display: the HTML report in an ``<iframe srcdoc>`` (styles scoped to the report)."""
        from netdoctor import reporters

        return reporters.get("html").notebook(self)

    def to_html(self, path: Any = None, **opts: Any) -> str:
        """Render the self-contained HTML report; write it to ``path`` when given.

        ``opts`` go to :func:`netdoctor.reporters.html.render` (e.g. ``history=``).
        Returns the HTML text.
        """
        # through the reporter registry, as str() does: findings depends on no reporter module
        from netdoctor import reporters

        text = reporters.render("html", self, **opts)
        if path is not None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping with ``schema_version``."""
        return {
            "schema_version": SCHEMA_VERSION,
            "summary": {
                "errors": self.count(Severity.ERROR),
                "warnings": self.count(Severity.WARNING),
                "infos": self.count(Severity.INFO),
                "suppressed": len(self.suppressed),
                "load_errors": len(self.errors),
                "skipped_files": len(self.skipped_files),
            },
            "findings": [f.to_dict() for f in self.findings],
            "suppressed": [f.to_dict() for f in self.suppressed],
            "targets": [t.to_dict() for t in self.targets],
            "rules_run": list(self.rules_run),
            "errors": [e.to_dict() for e in self.errors],
            "skipped_files": [s.to_dict() for s in self.skipped_files],
            "timings": {k: round(v, 6) for k, v in self.timings.items()},
        }


def _jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays and tuples into plain JSON types."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _jsonable(value.tolist())
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)  # JSON has no NaN/Inf
        return value
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, enum.Enum):
        return str(value)
    return str(value)
