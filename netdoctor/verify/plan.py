"""Which fix answers which finding: the fix steps, :func:`plan_for` and :func:`describe`.

Part of :mod:`netdoctor.verify` (framework-free). A :class:`FixPlan` is a tuple of hashable
:class:`FixStep` edits (re-initialize, insert a normalization, remove a layer, standardize the
inputs, clip, ...) plus fallbacks tried when the symptom stays; the framework's fixer applies
them. A finding without a mechanical fix gets the reason as a string instead of a plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from netdoctor.findings import Finding, Report
from netdoctor.verify.protocol import FixStep, step
from netdoctor.snapshot import ModelSnapshot


@dataclass(frozen=True)
class FixPlan:
    """The fix for one finding: edits, fallbacks tried when the symptom stays, probe kind."""

    steps: tuple[FixStep, ...]
    fallbacks: tuple[FixPlan, ...] = ()
    probe_mode: str = "full"  # "full": full-batch steps; "minibatch": shuffled minibatches (spikes)


# -- which fix for which finding ---------------------------------------------------------------
_NO_FIX = {
    "ND103": "dropping a constant feature changes the model's input width; drop it in the data pipeline",
    "ND604": "no recommended clipping norm in the finding",
}


def plan_for(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    """The mechanical fix for ``f``, or the reason there is none."""
    handler = _PLANS.get(f.code)
    if handler is None:
        return _NO_FIX.get(f.code, "netdoctor has no mechanical fix for this rule; apply the recommendation by hand")
    return handler(f, report, snap)


def _init_for(rec: Any, param: Any) -> str:
    """Initializer key for a parameter: he:relu, he:leaky_relu, lecun, glorot, glorot:tanh, orthogonal, normal."""
    from netdoctor.rules._util import init_reference
    from netdoctor.snapshot import KIND_EMBEDDING, ROLE_EMBEDDING, ROLE_RECURRENT

    if param is not None and param.role == ROLE_RECURRENT:
        return "orthogonal"
    if rec.kind == KIND_EMBEDDING or (param is not None and param.role == ROLE_EMBEDDING):
        return "normal"
    act = (rec.activation or "").lower()
    name = init_reference(rec.activation)[0]
    if name == "He":
        return "he:leaky_relu" if act == "leaky_relu" else "he:relu"
    return "lecun" if name == "LeCun" else ("glorot:tanh" if act == "tanh" else "glorot")


def _reinit(snap: ModelSnapshot, name: str, param: str | None = None) -> FixStep:
    from netdoctor.snapshot import ROLE_WEIGHT

    rec = snap.layer(name)
    if rec is None:
        raise KeyError(name)
    p = next((q for q in rec.params if q.name == param), None) if param else None
    p = p or rec.param(ROLE_WEIGHT) or rec.weight
    return step("reinit", name, param=p.name if p else "weight", init=_init_for(rec, p))


def _norm_step(snap: ModelSnapshot, name: str) -> FixStep:
    rec = snap.layer(name)
    rank = len(rec.output.shape) if rec is not None and rec.output is not None else 2
    return step("insert_norm", name, rank=rank, activation=(rec.activation if rec else None))


def _plain_hidden(snap: ModelSnapshot, names: Iterable[str]) -> list[str]:
    """Dense/conv layers among ``names`` that are not the head and not already normalized."""
    from netdoctor.rules._util import is_head, norm_after
    from netdoctor.snapshot import KIND_CONV, KIND_LINEAR

    out = []
    for n in names:
        rec = snap.layer(n)
        if rec is not None and rec.kind in (KIND_LINEAR, KIND_CONV) and not is_head(snap, rec) \
                and norm_after(snap, rec) is None:
            out.append(n)
    return out


def _var_ratio(rec: Any) -> float | None:
    from netdoctor.rules._util import init_reference

    p = rec.weight
    if p is None or not p.fan_in or not p.fan_out:
        return None
    name = init_reference(rec.activation)[0]
    canon = 2.0 / p.fan_in if name == "He" else 1.0 / p.fan_in if name == "LeCun" else 2.0 / (p.fan_in + p.fan_out)
    return (p.stats.mean ** 2 + p.stats.std ** 2) / canon


def _plan_weights(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    if f.code == "ND204":
        return FixPlan((step("reset_nonfinite", f.layer),))
    if f.code == "ND203":
        names = list(f.evidence.get("layers") or [f.layer])
        return FixPlan(tuple(_reinit(snap, n) for n in names))
    return FixPlan((_reinit(snap, f.layer, f.evidence.get("param")),))


def _plan_vanishing(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    import re

    from netdoctor.analysis.gradflow import gradient_chain
    from netdoctor.rules._util import init_reference

    rec_txt = f.recommendation or ""
    named = re.match(r"Initialize `([^`]+)` randomly", rec_txt)
    if named:
        return FixPlan((_reinit(snap, named.group(1)),))
    hidden = [r.rec for r in gradient_chain(snap)[:-1]]
    if rec_txt.startswith("Initialize the hidden layers"):
        small = [r for r in hidden if r.weight is not None and r.weight.fan_in and r.weight.stats.mean ** 2
                 + r.weight.stats.std ** 2 < init_reference(r.activation)[3] / r.weight.fan_in / 10]
        return FixPlan(tuple(_reinit(snap, r.name) for r in small or hidden))
    names = _plain_hidden(snap, [r.name for r in hidden])
    if not names:
        return "every hidden layer is already normalized; the cause is elsewhere"
    return FixPlan(tuple(_norm_step(snap, n) for n in names))


def _plan_exploding(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    from netdoctor.analysis.gradflow import gradient_chain

    steps = [step("standardize")] if any(g.code == "ND101" for g in report.findings) else []
    large = [n for g in report.findings if g.code == "ND203" and g.evidence.get("direction") == "large"
             for n in (g.evidence.get("layers") or [g.layer])]
    if not large and not steps:
        large = [r.name for r in gradient_chain(snap) if (_var_ratio(r.rec) or 0.0) > 3.0]
    steps += [_reinit(snap, n) for n in dict.fromkeys(large)]
    steps.append(step("clip", max_norm=float(f.evidence.get("max_norm") or 1.0)))
    return FixPlan(tuple(steps))


def _plan_drift(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    names = [n for n in f.evidence.get("rms", {}) if snap.layer(n) is not None] or [f.layer]
    norm = _plain_hidden(snap, names)
    return FixPlan(tuple(_reinit(snap, n) for n in names),
                   fallbacks=(FixPlan(tuple(_norm_step(snap, n) for n in norm)),) if norm else ())


def _plan_data(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    if f.code in ("ND101", "ND102"):
        return FixPlan((step("standardize" if f.code == "ND101" else "drop_rows"),))
    origin = f.evidence.get("origin")  # ND303
    if origin is None and any(g.code == "ND102" for g in report.findings):
        return FixPlan((step("drop_rows"),))
    rec = snap.layer(origin) if origin else None
    if rec is not None and any(p.stats.frac_nonfinite > 0 for p in rec.params):
        return FixPlan((step("reset_nonfinite", origin),))
    return ("the first NaN/Inf is produced by a computation inside the model (" + str(f.evidence.get("origin"))
            + "); change that computation by hand")


def _plan_no_gradient(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    cause = str(f.evidence.get("cause", ""))
    kind, _, name = cause.partition(":")
    rec = snap.layer(name) if name else None
    if kind in ("zero-weights", "zero-head", "zero-input") and rec is not None and rec.weight is not None \
            and rec.weight.stats.abs_max == 0.0:
        return FixPlan((_reinit(snap, name),))
    dead = next((g for g in report.findings if g.code == "ND401" and g.layer == name), None)
    if kind in ("dead", "zero-input") and dead is not None:
        return plan_for(dead, report, snap)  # revive the dead layer the way ND401 recommends
    return f"the cause ({kind or 'unknown'}) is in the model's code or data flow; fix it by hand"


def _plan_units(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    import re

    from netdoctor.rules._util import producer_weight_layer

    rec_txt = f.recommendation or ""
    named = re.match(r"Reset the negative biases of `([^`]+)`", rec_txt)
    if named:
        return FixPlan((step("zero_bias", named.group(1)),))
    if f.code == "ND402" and rec_txt.startswith("Standardize the inputs"):
        return FixPlan((step("standardize"),))
    rec = snap.layer(f.layer) if f.layer else None
    prod = producer_weight_layer(snap, rec) if rec is not None else None
    if f.code == "ND402" and prod is not None and f.severity > f.severity.INFO:
        return FixPlan((_reinit(snap, prod.name), _norm_step(snap, prod.name)))
    return "the recommended change (activation, learning rate or output) needs a decision by hand"


def _plan_structure(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    from netdoctor.snapshot import KIND_ACTIVATION

    if f.code == "ND504":
        names = [p[0] for p in f.evidence.get("pairs", ())] or [f.layer]
        return FixPlan(tuple(step("no_bias", n) for n in names))
    if f.code == "ND502":
        names = _plain_hidden(snap, f.evidence.get("layers", ()))
        return FixPlan(tuple(_norm_step(snap, n) for n in names)) if names else "no plain hidden layer to normalize"
    drop, bn = f.evidence.get("dropout") or f.layer, f.evidence.get("batchnorm")
    after = snap.successor(bn) if bn else None
    target = after.name if after is not None and after.kind == KIND_ACTIVATION and "/" not in after.name else bn
    remove = FixPlan((step("remove", drop),))
    return FixPlan((step("move_dropout", drop, after=target),), fallbacks=(remove,)) if target else remove


def _plan_output(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    ev, out, loss = f.evidence, snap.output, snap.loss
    act, units = ev.get("final_activation"), int(ev.get("units") or 1)
    if out is None or loss is None:
        return "the output or the loss was not measured"
    if act == "softmax" and units == 1:
        return "a one-unit softmax needs a new head and loss (one sigmoid unit with binary cross-entropy)"
    expects = "logits" if loss.from_logits is True else ev.get("expects") or loss.expects
    if loss.from_logits is False and "crossentropy" in loss.name.lower().replace("_", ""):
        expects = "probabilities"
    final = out.final_layer
    module = final is not None and "/" not in final and snap.framework == "torch"
    keras = snap.framework == "keras"
    if expects == "logits" and act in ("softmax", "sigmoid"):
        if keras:
            return FixPlan((step("loss_form", form="probabilities"),))
        by_loss = FixPlan((step("loss_form", form="probabilities"),))
        if module:  # a functional softmax in forward() cannot be removed: switch the loss instead
            return FixPlan((step("remove", final, transform="log" if act == "softmax" else "logit"),), (by_loss,))
        return by_loss
    if expects == "probabilities" and act == "sigmoid" and units > 1:
        return FixPlan((step("set_activation", (final or "").split("/")[0], activation="softmax"),))
    if expects == "probabilities":
        return FixPlan((step("loss_form", form="logits", units=units),))
    if expects == "log_probabilities":
        if act == "softmax" and module:
            return FixPlan((step("set_activation", final, activation="log_softmax", transform="log"),))
        return FixPlan((step("loss_form", form="logits", units=units),))
    return "this output/loss pairing has no mechanical fix"


def _plan_spikes(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan | str:
    norm = f.evidence.get("max_norm")
    if not norm:
        return _NO_FIX["ND604"]
    return FixPlan((step("clip", max_norm=float(norm)),), probe_mode="minibatch")


_PLANS = {
    "ND101": _plan_data, "ND102": _plan_data, "ND303": _plan_data,
    "ND201": _plan_weights, "ND202": _plan_weights, "ND203": _plan_weights, "ND204": _plan_weights,
    "ND301": _plan_vanishing, "ND302": _plan_exploding, "ND304": _plan_no_gradient,
    "ND401": _plan_units, "ND402": _plan_units, "ND403": _plan_drift,
    "ND501": _plan_structure, "ND502": _plan_structure, "ND503": _plan_output, "ND504": _plan_structure,
    "ND604": _plan_spikes,
}


# -- what the fix does, in words ---------------------------------------------------------------
_INIT_NAMES = {"he:relu": "He normal (ReLU)", "he:leaky_relu": "He normal (leaky ReLU)", "lecun": "LeCun normal",
               "glorot": "Glorot uniform", "glorot:tanh": "Glorot uniform (tanh gain)", "orthogonal": "orthogonal",
               "normal": "N(0, 1)"}


def describe(plan: FixPlan, snap: ModelSnapshot) -> str:
    """One line saying what the fix changes, naming the user's layers."""
    from netdoctor.rules._util import name_list

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
