"""Rule declaration: the ``@rule`` decorator, :class:`RuleSpec` and :class:`RuleContext`.

A rule is a generator function ``(snapshot, ctx) -> Iterator[Finding]`` declared with::

    @rule(code="ND301", name="vanishing-gradients", needs={Need.GRADIENTS},
          severity=Severity.ERROR, options={"min_ratio": 1e-3})
    def vanishing_gradients(snap, ctx):
        \"\"\"What it does / Why is this bad? / Example / Use instead / Options / References.\"\"\"
        ...
        yield ctx.finding("message with measurement and limit", layer="fc1",
                          recommendation="Imperative sentence.",
                          snippet=ctx.snippet(torch="...", keras="..."),
                          evidence={"grad_norm": 1e-9})

The context fills in code, name, category and the *configured* severity, and holds the
rule's configured options (defaults merged with user overrides).

Beside its code a rule declares what ``--verify`` and the reports need to know about it:
``fix=`` (its fix plan, see :mod:`netdoctor.verify.plan`), ``metric=`` (the numbers measured
before and after the fix, see :mod:`netdoctor.verify.verdict`) and ``chart=`` (which
:class:`~netdoctor.reporters.html.charts.Thresholds` field draws which of its options).

Importing this module imports the :mod:`netdoctor.rules` package first, which registers every
built-in rule: :func:`registry` always sees them all.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from netdoctor.findings import Category, Finding, Severity
from netdoctor.snapshot import ModelSnapshot, Need

if TYPE_CHECKING:
    from netdoctor.verify.plan import PlanFunc
    from netdoctor.verify.verdict import MetricFunc

RuleFunc = Callable[[ModelSnapshot, "RuleContext"], Iterator[Finding]]

_REGISTRY: dict[str, "RuleSpec"] = {}


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """Declaration of one rule.

    Attributes:
        code: ``ND`` + three digits; the hundreds digit is the category.
        name: kebab-case problem name (``"dead-units"``).
        summary: First line of the docstring.
        category: Derived from the code.
        severity: Default severity.
        needs: What the adapter must collect for the rule to run.
        options: Default option values (thresholds); users override them by name.
        func: The rule function.
        doc: The full docstring (user documentation, shown by ``netdoctor explain``).
        fix: The rule's fix plan ``(finding, report, snapshot) -> FixPlan | str``, or the reason
            there is no mechanical fix; ``None``: no fix.
        metric: The numbers ``--verify`` measures before and after the fix,
            ``(finding, measure) -> {label: value}``; ``None``: only the count of findings.
        chart: ``Thresholds`` field -> option name, for the reference lines the charts draw.
    """

    code: str
    name: str
    summary: str
    category: Category
    severity: Severity
    needs: frozenset[Need]
    options: Mapping[str, Any]
    func: RuleFunc
    doc: str
    fix: PlanFunc | str | None = None
    metric: MetricFunc | None = None
    chart: Mapping[str, str] = field(default_factory=dict)

    def run(self, snapshot: ModelSnapshot, ctx: "RuleContext") -> list[Finding]:
        return list(self.func(snapshot, ctx))


@dataclass(slots=True)
class RuleContext:
    """What a running rule gets besides the snapshot.

    Attributes:
        spec: The rule's declaration.
        severity: Configured severity (default unless the user overrode it).
        options: Configured options (defaults merged with overrides).
        framework: ``"torch"`` or ``"keras"``; picks the snippet language.
    """

    spec: RuleSpec
    severity: Severity
    options: dict[str, Any] = field(default_factory=dict)
    framework: str = "torch"
    skipped_parts: list[tuple[str, str]] = field(default_factory=list)

    def skip_part(self, part: str, reason: str) -> None:
        """Record that the part ``part`` of this rule could not be judged, and why.

        The rule still runs its other parts; the engine reports it as skipped (with the part and
        the reason) and never as passed, even when the parts that ran found nothing.
        """
        self.skipped_parts.append((part, reason))

    def finding(
        self,
        message: str,
        *,
        layer: str | None = None,
        recommendation: str = "",
        snippet: str | None = None,
        evidence: Mapping[str, Any] | None = None,
        severity: Severity | None = None,
        step: int | None = None,
    ) -> Finding:
        """Build a finding of this rule.

        ``severity`` lowers (never raises) the configured severity for this one finding,
        e.g. to report a milder variant of the problem at ``INFO``.
        """
        sev = self.severity if severity is None else min(self.severity, severity)
        return Finding(
            code=self.spec.code,
            name=self.spec.name,
            severity=sev,
            category=self.spec.category,
            message=message,
            layer=layer,
            recommendation=recommendation,
            snippet=snippet,
            evidence=dict(evidence or {}),
            step=step,
        )

    def snippet(self, *, torch: str | None = None, keras: str | None = None) -> str | None:
        """Pick the code snippet for the model's framework."""
        return keras if self.framework == "keras" else torch

    def opt(self, name: str) -> Any:
        return self.options[name]


def rule(
    *,
    code: str,
    name: str,
    needs: set[Need] | frozenset[Need],
    severity: Severity = Severity.WARNING,
    options: Mapping[str, Any] | None = None,
    fix: PlanFunc | str | None = None,
    metric: MetricFunc | None = None,
    chart: Mapping[str, str] | None = None,
) -> Callable[[RuleFunc], RuleFunc]:
    """Register a rule function. See the module docstring."""
    if not (len(code) == 5 and code.startswith("ND") and code[2:].isdigit()):
        raise ValueError(f"bad rule code {code!r}")

    def decorate(func: RuleFunc) -> RuleFunc:
        doc = inspect.cleandoc(func.__doc__ or "")
        if code in _REGISTRY and _REGISTRY[code].func is not func:
            raise ValueError(f"rule code {code} registered twice")
        spec = RuleSpec(
            code=code,
            name=name,
            summary=doc.splitlines()[0] if doc else name,
            category=Category.from_code(code),
            severity=severity,
            needs=frozenset(needs),
            options=dict(options or {}),
            func=func,
            doc=doc,
            fix=fix,
            metric=metric,
            chart=dict(chart or {}),
        )
        _REGISTRY[code] = spec
        func.spec = spec  # type: ignore[attr-defined]
        return func

    return decorate


def registry() -> dict[str, RuleSpec]:
    """All registered rules by code."""
    return dict(sorted(_REGISTRY.items()))


def resolve(key: str) -> RuleSpec | None:
    """Find a rule by code (``"ND301"``) or name (``"vanishing-gradients"``)."""
    reg = registry()
    k = key.strip()
    if k.upper() in reg:
        return reg[k.upper()]
    for spec in reg.values():
        if spec.name == k.lower():
            return spec
    return None
