"""Helpers shared by the built-in rules: number formatting, code snippets, graph walks.

Nothing here imports a framework; everything reads a :class:`~netdoctor.snapshot.ModelSnapshot`.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

import numpy as np

from netdoctor.analysis.health import relative_grad as relative_grad  # one definition for rules and reports
from netdoctor.snapshot import (
    KIND_ACTIVATION,
    KIND_CONV,
    KIND_DROPOUT,
    KIND_LINEAR,
    KIND_OTHER,
    KIND_POOL,
    KIND_PREPROCESS,
    KIND_SCALE,
    RELU_FAMILY,
    ROLE_EMBEDDING,
    ROLE_NORM_SCALE,
    ROLE_OTHER,
    ROLE_RECURRENT,
    ROLE_WEIGHT,
    LayerRecord,
    ModelSnapshot,
    ParamRecord,
)

if TYPE_CHECKING:
    from netdoctor.rules.spec import RuleContext

#: Parameter roles that are weight matrices/kernels/tables (never biases or norm params).
MATRIX_ROLES = (ROLE_WEIGHT, ROLE_RECURRENT, ROLE_EMBEDDING)

#: Layer kinds a signal passes through without being re-weighted (for adjacency walks).
PASS_THROUGH_KINDS = frozenset({KIND_ACTIVATION, KIND_DROPOUT, KIND_POOL, KIND_OTHER, KIND_PREPROCESS})


# -- numbers ----------------------------------------------------------------------------------
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


# -- code references ---------------------------------------------------------------------------
def base_name(name: str) -> str:
    """Layer name without an activation-record suffix (``"fc1/relu" -> "fc1"``)."""
    return name.split("/")[0]


def torch_ref(name: str, root: str = "model") -> str:
    """Python expression reaching a submodule: ``"encoder.layers.0.linear1"`` ->
    ``model.encoder.layers[0].linear1``."""
    out = root
    for part in base_name(name).split("."):
        if not part:
            continue
        if part.isdigit():
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part}"
        else:
            out = f"{out}.get_submodule({part!r})"
    return out


def keras_ref(name: str, root: str = "model") -> str:
    return f'{root}.get_layer("{base_name(name)}")'


def activation_family(act: str | None) -> str:
    """``"relu"`` (ReLU family), ``"selu"``, ``"saturating"`` or ``"linear"``."""
    if act is None:
        return "linear"
    a = act.lower()
    if a == "selu":
        return "selu"
    if a in RELU_FAMILY:
        return "relu"
    if a in ("sigmoid", "tanh", "hard_sigmoid", "hard_tanh", "softsign"):
        return "saturating"
    return "linear"


def init_reference(act: str | None) -> tuple[str, str, str, float]:
    """(reference name, torch init call template, keras initializer, gain) for an activation.

    The torch template has ``{w}`` for the weight expression.
    """
    fam = activation_family(act)
    if fam == "relu":
        slope = "leaky_relu" if (act or "").lower() == "leaky_relu" else "relu"
        return ("He", f'nn.init.kaiming_normal_({{w}}, nonlinearity="{slope}")', "he_normal", 2.0)
    if fam == "selu":
        return ("LeCun", 'nn.init.kaiming_normal_({w}, nonlinearity="linear")  # LeCun normal for SELU',
                "lecun_normal", 1.0)
    gain = 'nn.init.calculate_gain("tanh")' if (act or "").lower() == "tanh" else None
    call = f"nn.init.xavier_uniform_({{w}}, gain={gain})" if gain else "nn.init.xavier_uniform_({w})"
    return ("Glorot", call, "glorot_uniform", 1.0)


def layer_units(rec: LayerRecord) -> int | None:
    """Output units (features/filters) of a weight layer, if known."""
    for key in ("units", "filters", "out_features", "out_channels", "output_dim"):
        v = rec.attrs.get(key)
        if isinstance(v, (int, np.integer)) and v > 0:
            return int(v)
    w = rec.weight
    if w is not None and w.units:
        return int(w.units)
    return None


def fused_activation(snapshot: ModelSnapshot, rec: LayerRecord) -> bool:
    """Whether ``rec``'s activation is fused into it (Keras ``Dense(..., activation=...)``)."""
    return any(r.name.startswith(rec.name + "/") for r in snapshot.layers)


def keras_ctor(rec: LayerRecord, fused: bool = True, **kwargs: str) -> str:
    """A Keras layer constructor for ``rec`` with extra keyword arguments (values are code).

    ``layers.Dense(64, activation="relu", kernel_initializer="he_normal", name="dense_1")``; the
    activation is written only when ``fused`` (it is part of the layer, not a separate one).
    """
    t = rec.type_name or "Dense"
    units = layer_units(rec)
    args: list[str] = []
    if rec.kind == KIND_LINEAR:
        t = "Dense"
        args.append(str(units) if units else "units")
    elif rec.kind == KIND_CONV:
        t = re.sub(r"(\d)d$", r"\1D", t)  # a torch-style name (Conv2d) -> Conv2D
        if not t.startswith("Depthwise"):
            args.append(str(units) if units else "filters")
        ks = rec.attrs.get("kernel_size")
        if isinstance(ks, (tuple, list)) and ks:
            ks_code = str(int(ks[0])) if len(set(ks)) == 1 else str(tuple(int(k) for k in ks))
        elif isinstance(ks, (int, np.integer)):
            ks_code = str(int(ks))
        else:
            ks_code = "kernel_size"
        args.append(ks_code)
    act = rec.activation
    if fused and act and act not in ("linear",) and "activation" not in kwargs and rec.kind in (KIND_LINEAR, KIND_CONV):
        args.append(f'activation="{act}"')
    args.extend(f"{k}={v}" for k, v in kwargs.items())
    args.append(f'name="{base_name(rec.name)}"')
    return f"layers.{t}({', '.join(args)})"


def torch_ctor(rec: LayerRecord, **kwargs: str) -> str:
    """A torch module constructor for a linear/conv layer, e.g. ``nn.Conv2d(3, 64, 3, bias=False)``."""
    w = rec.weight
    shape = tuple(w.stats.shape) if w is not None else ()
    extra = "".join(f", {k}={v}" for k, v in kwargs.items())
    t = rec.type_name if rec.type_name and rec.type_name.isidentifier() else "Linear"
    if rec.kind == KIND_LINEAR and len(shape) == 2:
        return f"nn.{t}({shape[1]}, {shape[0]}{extra})"
    if rec.kind == KIND_CONV and len(shape) >= 3:
        groups = int(rec.attrs.get("groups", 1) or 1)
        ks = shape[2] if len(set(shape[2:])) == 1 else tuple(shape[2:])
        g = f", groups={groups}" if groups != 1 else ""
        return f"nn.{t}({shape[1] * groups}, {shape[0]}, {ks}{g}{extra})"
    return f"nn.{t}(...{extra})"


# -- graph walks -------------------------------------------------------------------------------
def has_dataflow(snapshot: ModelSnapshot) -> bool:
    """Whether the adapter traced ``inputs_from`` (else fall back to execution order)."""
    return any(r.inputs_from for r in snapshot.layers)


def index_of(snapshot: ModelSnapshot) -> dict[str, int]:
    return {r.name: i for i, r in enumerate(snapshot.layers)}


def next_layers(snapshot: ModelSnapshot, rec: LayerRecord) -> list[LayerRecord]:
    """Direct consumers of ``rec`` (traced data flow), else its execution-order successor."""
    if has_dataflow(snapshot):
        cons = snapshot.consumers(rec.name)
        if cons:
            return cons
        if rec.inputs_from or rec.consumes_model_input:
            return []  # traced, and nobody consumed it (an output)
    nxt = snapshot.successor(rec.name)
    return [nxt] if nxt is not None else []


def walk_downstream(snapshot: ModelSnapshot, rec: LayerRecord, through: Iterable[str] = PASS_THROUGH_KINDS,
                    limit: int = 16) -> Iterator[LayerRecord]:
    """Layers reached from ``rec`` passing only through kinds in ``through``.

    Yields every reached layer (including the first one of another kind, where the walk stops
    on that branch).
    """
    through = frozenset(through)
    seen: set[str] = {rec.name}
    frontier = next_layers(snapshot, rec)
    steps = 0
    while frontier and steps < limit:
        steps += 1
        nxt: list[LayerRecord] = []
        for r in frontier:
            if r.name in seen:
                continue
            seen.add(r.name)
            yield r
            if r.kind in through:
                nxt.extend(next_layers(snapshot, r))
        frontier = nxt


def norm_after(snapshot: ModelSnapshot, rec: LayerRecord) -> LayerRecord | None:
    """The normalization layer that directly normalizes ``rec``'s output, if any.

    Uses ``attrs["norm_after"]`` when the adapter set it (a layer name or ``True``), else walks
    the data flow through activations/dropout/pooling/reshapes.
    """
    hint = rec.attrs.get("norm_after")
    if isinstance(hint, str) and snapshot.layer(hint) is not None:
        return snapshot.layer(hint)
    if hint is False:
        return None
    for r in walk_downstream(snapshot, rec):
        if r.is_norm:
            return r
        if r.is_weight_layer:
            break
    return rec if hint else None  # the adapter knows there is one; name unknown: return the layer itself


def matrix_params(rec: LayerRecord) -> list[ParamRecord]:
    """Weight matrices/kernels/tables (>= 2-D) of a weight layer; never biases or norm params."""
    if not rec.is_weight_layer:
        return []
    return [p for p in rec.params if p.role in MATRIX_ROLES and len(p.stats.shape) >= 2]


def is_head(snapshot: ModelSnapshot, rec: LayerRecord) -> bool:
    """Whether ``rec`` is the final classifier/regression head (the last executed weight layer)."""
    head = snapshot.output_layer
    if head is None:
        return False
    if rec.name == head.name:
        return True
    if snapshot.output is not None and snapshot.output.final_layer:
        return base_name(snapshot.output.final_layer) == rec.name
    return False


def producer_weight_layer(snapshot: ModelSnapshot, rec: LayerRecord) -> LayerRecord | None:
    """The weight layer whose output an activation/norm record transforms (walking upstream)."""
    by_name = {r.name: r for r in snapshot.layers}
    if rec.inputs_from:
        seen: set[str] = set()
        frontier = list(rec.inputs_from)
        while frontier:
            n = frontier.pop(0)
            if n in seen or n not in by_name:
                continue
            seen.add(n)
            r = by_name[n]
            if r.is_weight_layer:
                return r
            frontier.extend(r.inputs_from)
        return None
    if "/" in rec.name and base_name(rec.name) in by_name:
        return by_name[base_name(rec.name)]
    idx = index_of(snapshot).get(rec.name, 0)
    for r in reversed(snapshot.layers[:idx]):
        if r.is_weight_layer:
            return r
    return None


def has_zero_scale(rec: LayerRecord) -> bool:
    """A norm layer with an all-zero scale, or a layer-scale record whose values are all zero."""
    for p in rec.params:
        if p.role == ROLE_NORM_SCALE or (rec.kind == KIND_SCALE and p.role in (ROLE_OTHER, ROLE_WEIGHT)):
            if p.stats.size and p.stats.abs_max == 0.0:
                return True
    return False


def observations(rec: LayerRecord, vec: np.ndarray | None, batch_size: int) -> int:
    """Samples x positions behind a per-unit vector (conv channels see every position)."""
    if vec is None or rec.output is None or not len(vec):
        return batch_size
    shape = rec.output.shape
    n = len(vec)
    if len(shape) >= 2 and n in tuple(shape[1:]):
        return max(int(rec.output.size // n), batch_size)
    return batch_size


# -- snippets shared by several rules ----------------------------------------------------------
_TORCH_ACT = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "gelu": "GELU", "leaky_relu": "LeakyReLU",
              "elu": "ELU", "selu": "SELU", "silu": "SiLU", "swish": "SiLU", "relu6": "ReLU6", "mish": "Mish"}


def torch_act(act: str | None) -> str:
    return f"nn.{_TORCH_ACT.get((act or 'relu').lower(), 'ReLU')}()"


def batchnorm_snippet(ctx: "RuleContext", rec: LayerRecord, act: str | None = None) -> str | None:
    """Code that puts a BatchNorm between ``rec`` and its activation."""
    act = act or (rec.activation if rec.activation not in (None, "linear", "softmax") else "relu")
    units = layer_units(rec) or "units"
    w = rec.weight
    dim = max(len(w.stats.shape) - 2, 1) if (w is not None and rec.kind == KIND_CONV) else 1
    torch = (f"{torch_ctor(rec, bias='False')}, nn.BatchNorm{dim}d({units}), {torch_act(act)},"
             f"  # in place of `{base_name(rec.name)}` and its activation")
    keras = (f"{keras_ctor(rec, fused=False, use_bias='False')},\n"
             f"layers.BatchNormalization(),\nlayers.Activation(\"{act}\"),")
    return ctx.snippet(torch=torch, keras=keras)
