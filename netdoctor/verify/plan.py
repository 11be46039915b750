"""Fix plans: the edits that answer a finding, and what they change, in words.

A :class:`FixPlan` is a tuple of hashable :class:`~netdoctor.verify.protocol.FixStep` edits
(re-initialize, insert a normalization, remove a layer, standardize the inputs, clip, ...) plus
fallbacks tried when the symptom stays; the framework's fixer applies them. Each rule declares
its fix beside its code (``@rule(..., fix=...)``): a function ``(finding, report, snapshot) ->
FixPlan | str`` built from the helpers here, or the reason there is no mechanical fix.
:func:`plan_for` looks it up on the rule's spec; :func:`describe` says what a plan changes.
Framework-free.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Callable, Union

from netdoctor.analysis.graph import is_head, norm_after
from netdoctor.analysis.init import init_reference
from netdoctor.findings import Finding, Report
from netdoctor.snapshot import (
    KIND_CONV,
    KIND_EMBEDDING,
    KIND_LINEAR,
    ROLE_EMBEDDING,
    ROLE_RECURRENT,
    ROLE_WEIGHT,
    LayerRecord,
    ModelSnapshot,
    ParamRecord,
)
from netdoctor.verify.protocol import FixStep, step


@dataclass(frozen=True)
class FixPlan:
    """The fix for one finding: edits, fallbacks tried when the symptom stays, probe kind."""

    steps: tuple[FixStep, ...]
    fallbacks: tuple[FixPlan, ...] = ()
    probe_mode: str = "full"  # "full": full-batch steps; "minibatch": shuffled minibatches (spikes)


#: A rule's fix: ``(finding, report, snapshot) -> FixPlan | str`` (the plan, or why there is none).
PlanFunc = Callable[[Finding, Report, ModelSnapshot], Union[FixPlan, str]]

#: The reason given for a rule that declares no fix.
NO_MECHANICAL_FIX = "netdoctor has no mechanical fix for this rule; apply the recommendation by hand"


def plan_for(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    """The mechanical fix for ``f`` (its rule's declared ``fix``), or the reason there is none."""
    from netdoctor.rules.spec import registry

    spec = registry().get(f.code)
    fix = spec.fix if spec is not None else None
    if fix is None:
        return NO_MECHANICAL_FIX
    if isinstance(fix, str):
        return fix
    return fix(f, report, snap)


# -- the edits rules build their plans from ---------------------------------------------------
def _init_for(rec: LayerRecord, param: ParamRecord | None) -> str:
    """Initializer key for a parameter: he:relu, he:leaky_relu, lecun, glorot, glorot:tanh, orthogonal, normal."""
    if param is not None and param.role == ROLE_RECURRENT:
        return "orthogonal"
    if rec.kind == KIND_EMBEDDING or (param is not None and param.role == ROLE_EMBEDDING):
        return "normal"
    act = (rec.activation or "").lower()
    name = init_reference(rec.activation)[0]
    if name == "He":
        return "he:leaky_relu" if act == "leaky_relu" else "he:relu"
    return "lecun" if name == "LeCun" else ("glorot:tanh" if act == "tanh" else "glorot")


def reinit(snap: ModelSnapshot, name: str, param: str | None = None) -> FixStep:
    """Re-initialize ``param`` (default: the weight) of layer ``name`` with the reference for its activation."""
    rec = snap.layer(name)
    if rec is None:
        raise KeyError(name)
    p = next((q for q in rec.params if q.name == param), None) if param else None
    p = p or rec.param(ROLE_WEIGHT) or rec.weight
    return step("reinit", name, param=p.name if p else "weight", init=_init_for(rec, p))


def norm_step(snap: ModelSnapshot, name: str) -> FixStep:
    """Insert a normalization layer after ``name``, before its activation."""
    rec = snap.layer(name)
    rank = len(rec.output.shape) if rec is not None and rec.output is not None else 2
    return step("insert_norm", name, rank=rank, activation=(rec.activation if rec else None))


def plain_hidden(snap: ModelSnapshot, names: Iterable[str]) -> list[str]:
    """Dense/conv layers among ``names`` that are not the head and not already normalized."""
    out = []
    for n in names:
        rec = snap.layer(n)
        if rec is not None and rec.kind in (KIND_LINEAR, KIND_CONV) and not is_head(snap, rec) \
                and norm_after(snap, rec) is None:
            out.append(n)
    return out


# -- what the fix does, in words ---------------------------------------------------------------
_INIT_NAMES = {"he:relu": "He normal (ReLU)", "he:leaky_relu": "He normal (leaky ReLU)", "lecun": "LeCun normal",
               "glorot": "Glorot uniform", "glorot:tanh": "Glorot uniform (tanh gain)", "orthogonal": "orthogonal",
               "normal": "N(0, 1)"}


def describe(plan: FixPlan, snap: ModelSnapshot) -> str:
    """One line saying what the fix changes, naming the user's layers."""
    from netdoctor.rules.format import name_list

    def typed(name: str | None) -> str:
        rec = snap.layer(name) if name else None
        return f"`{name}` ({rec.type_name})" if rec is not None else f"`{name}`"

    parts: list[str] = []
    groups: dict[tuple, list[str]] = {}
    for s in plan.steps:
        if s.op == "reinit":
            groups.setdefault(("reinit", s.get("init")), []).append(s.layer or "")
        elif s.op in ("insert_norm", "no_bias", "zero_bias", "reset_nonfinite"):
            groups.setdefault((s.op,), []).append(s.layer or "")
    for key, names in groups.items():
        text = {"reinit": "re-initialize {} with " + _INIT_NAMES.get(str(key[-1]), str(key[-1])),
                "insert_norm": "insert a normalization layer after {} (before its activation)",
                "no_bias": "remove the bias of {}", "zero_bias": "reset the bias of {} to zero",
                "reset_nonfinite": "re-initialize {} (NaN/Inf parameters)"}[key[0]]
        parts.append(text.format(name_list(names)))
    for s in plan.steps:
        if s.op == "standardize":
            parts.insert(0, "standardize the inputs with the probe batch's per-feature mean and std")
        elif s.op == "drop_rows":
            parts.insert(0, "drop the samples that contain NaN/Inf")
        elif s.op == "clip":
            parts.append(f"clip the global gradient norm at {s.get('max_norm'):g} in the training probe")
        elif s.op == "remove":
            parts.append(f"remove {typed(s.layer)}")
        elif s.op == "move_dropout":
            parts.append(f"move {typed(s.layer)} after {typed(s.get('after'))}")
        elif s.op == "set_activation":
            parts.append(f"make {typed(s.layer)} a {s.get('activation')}")
        elif s.op == "loss_form":
            loss = snap.loss.name if snap.loss else "the loss"
            parts.append(f"switch {loss} to the form that takes {s.get('form')}")
    return "; ".join(parts)
