"""Hand-built snapshots for rule tests: a tiny numpy network with real forward/backward numbers.

``Net`` runs a sequential stack (linear, activation, batchnorm, dropout) in numpy, backpropagates
a real loss, and turns every layer into the records an adapter would produce, with
``TensorStats.from_array`` on the actual arrays. No framework is imported.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from netdoctor.snapshot import (
    KIND_ACTIVATION,
    KIND_BATCHNORM,
    KIND_DROPOUT,
    KIND_LINEAR,
    ROLE_BIAS,
    ROLE_BUFFER,
    ROLE_NORM_SCALE,
    ROLE_NORM_SHIFT,
    ROLE_WEIGHT,
    DataStats,
    LayerRecord,
    LossInfo,
    ModelSnapshot,
    Need,
    OutputInfo,
    ParamRecord,
    TensorStats,
)

ALL_NEEDS = frozenset(Need) - {Need.HISTORY}
SAT = 5.0


def stats(a: Any, unit_axis: int | None = -1) -> TensorStats:
    arr = np.asarray(a)
    with np.errstate(all="ignore"):
        return TensorStats.from_array(arr, unit_axis=unit_axis if arr.ndim >= 1 else None)


def dup_frac(w: np.ndarray) -> float:
    rows = [r.tobytes() for r in np.asarray(w).reshape(w.shape[0], -1)]
    counts: dict[bytes, int] = {}
    for r in rows:
        counts[r] = counts.get(r, 0) + 1
    return sum(1 for r in rows if counts[r] > 1) / len(rows)


def param(name: str, role: str, value: np.ndarray, grad: np.ndarray | None = None, *, trainable: bool = True,
          initializer: str | None = None) -> ParamRecord:
    value = np.asarray(value, dtype=np.float64)
    fan_in = fan_out = units = dup = None
    if role == ROLE_WEIGHT and value.ndim >= 2:
        rf = int(np.prod(value.shape[2:])) if value.ndim > 2 else 1
        fan_in, fan_out, units = value.shape[1] * rf, value.shape[0] * rf, value.shape[0]
        dup = dup_frac(value)
    return ParamRecord(name=name, role=role, stats=stats(value, None),
                       grad=None if grad is None else stats(grad, None), trainable=trainable,
                       fan_in=fan_in, fan_out=fan_out, units=units, duplicate_unit_frac=dup, initializer=initializer)


def _act(name: str, z: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.maximum(z, 0)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return 1 / (1 + np.exp(-np.clip(z, -500, 500)))
    if name == "exp":
        with np.errstate(over="ignore"):
            return np.exp(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    return z


def _dact(name: str, z: np.ndarray, a: np.ndarray, g: np.ndarray) -> np.ndarray:
    if name == "relu":
        return g * (z > 0)
    if name == "tanh":
        return g * (1 - a * a)
    if name == "sigmoid":
        return g * a * (1 - a)
    if name == "exp":
        return g * a
    if name == "softmax":
        return a * (g - (g * a).sum(axis=-1, keepdims=True))
    return g


@dataclass
class Net:
    """A sequential numpy network. Build with ``.linear/.act/.bn/.dropout`` and call ``.snapshot``."""

    layers: list[tuple[str, dict]] = field(default_factory=list)

    def linear(self, w: np.ndarray, b: np.ndarray | None = None, name: str | None = None, **kw: Any) -> Net:
        w = np.asarray(w, dtype=np.float64)
        self.layers.append(("linear", {"w": w, "b": np.zeros(w.shape[0]) if b is None else np.asarray(b, float),
                                       "name": name, "bias": b is not False, **kw}))
        return self

    def act(self, fn: str, name: str | None = None) -> Net:
        self.layers.append(("act", {"fn": fn, "name": name}))
        return self

    def bn(self, units: int, gamma: float | np.ndarray = 1.0, name: str | None = None, beta: float = 0.0) -> Net:
        self.layers.append(("bn", {"gamma": np.full(units, 1.0) * gamma, "beta": np.full(units, float(beta)),
                                   "name": name}))
        return self

    def dropout(self, p: float = 0.5, name: str | None = None) -> Net:
        self.layers.append(("dropout", {"p": p, "name": name}))
        return self

    def snapshot(self, x: np.ndarray, y: np.ndarray | None = None, *, loss: str = "ce", loss_source: str = "user",
                 residual: bool | None = False, data: bool = True, framework: str = "torch",
                 final_activation: str | None = None, loss_info: LossInfo | None = None,
                 entry_input: np.ndarray | None = None) -> ModelSnapshot:
        x = np.asarray(x, dtype=np.float64)
        n = x.shape[0]
        cache: list[dict] = []
        h = x if entry_input is None else np.asarray(entry_input, float)
        counts = {"linear": 0, "act": 0, "bn": 0, "dropout": 0}
        for kind, spec in self.layers:
            counts[kind] += 1
            name = spec["name"] or {"linear": "fc", "act": "act", "bn": "bn", "dropout": "drop"}[kind] + str(counts[kind])
            c = {"kind": kind, "spec": spec, "name": name, "in": h}
            if kind == "linear":
                with np.errstate(all="ignore"):
                    h = h @ spec["w"].T + spec["b"]
            elif kind == "act":
                c["z"] = h
                h = _act(spec["fn"], h)
            elif kind == "bn":
                mu, var = h.mean(0), h.var(0)
                c["xhat"] = (h - mu) / np.sqrt(var + 1e-5)
                c["inv"] = 1 / np.sqrt(var + 1e-5)
                h = spec["gamma"] * c["xhat"] + spec["beta"]
            c["out"] = h
            cache.append(c)
        out = h
        value, g = self._loss(loss, out, y, n)
        grads: dict[int, dict[str, np.ndarray]] = {}
        for i in range(len(cache) - 1, -1, -1):
            c = cache[i]
            kind, spec = c["kind"], c["spec"]
            with np.errstate(all="ignore"):
                if kind == "linear":
                    grads[i] = {"weight": g.T @ c["in"], "bias": g.sum(0)}
                    g = g @ spec["w"]
                elif kind == "act":
                    g = _dact(spec["fn"], c["z"], c["out"], g)
                elif kind == "bn":
                    xhat, gamma = c["xhat"], spec["gamma"]
                    grads[i] = {"weight": (g * xhat).sum(0), "bias": g.sum(0)}
                    dxhat = g * gamma
                    g = c["inv"] / n * (n * dxhat - dxhat.sum(0) - xhat * (dxhat * xhat).sum(0))
        records = self._records(cache, grads, n)
        if final_activation is None:
            last_act = next((c for c in reversed(cache) if c["kind"] == "act"), None)
            final_activation = last_act["spec"]["fn"] if last_act is not None and cache[-1] is last_act else None
        looks = _looks_like(out)
        li = loss_info or LossInfo(name={"ce": "CrossEntropyLoss", "mse": "MSELoss", "bce": "BCEWithLogitsLoss"}[loss],
                                   expects={"ce": "logits", "mse": "any", "bce": "logits"}[loss], value=value,
                                   source=loss_source)
        ds = None
        if data:
            ds = DataStats(inputs={"x": stats(x)}, targets=None if y is None else stats(y, None),
                           target_kind=None, num_samples=n)
        last_w = [r for r in records if r.kind == KIND_LINEAR][-1]
        return ModelSnapshot(
            framework=framework, model_class="Net", layers=tuple(records), collected=ALL_NEEDS, batch_size=n,
            synthetic_inputs=not data, data=ds,
            output=OutputInfo(stats=stats(out), looks_like=looks, final_activation=final_activation,
                              final_layer=last_w.name),
            loss=li, residual=residual,
        )

    @staticmethod
    def _loss(loss: str, out: np.ndarray, y: np.ndarray | None, n: int) -> tuple[float, np.ndarray]:
        with np.errstate(all="ignore"):
            if loss == "ce":
                y = np.asarray(y, dtype=int)
                p = _act("softmax", out)
                value = float(-np.mean(np.log(p[np.arange(n), y] + 1e-300)))
                onehot = np.eye(out.shape[1])[y]
                return value, (p - onehot) / n
            y = np.asarray(y, dtype=float).reshape(out.shape)
            if loss == "mse":
                return float(np.mean((out - y) ** 2)), 2 * (out - y) / out.size
            s = _act("sigmoid", out)
            value = float(-np.mean(y * np.log(s + 1e-12) + (1 - y) * np.log(1 - s + 1e-12)))
            return value, (s - y) / out.size

    def _records(self, cache: list[dict], grads: dict[int, dict[str, np.ndarray]], n: int) -> list[LayerRecord]:
        recs: list[LayerRecord] = []
        prev: str | None = None
        seen_weight = False
        depth = 0
        for i, c in enumerate(cache):
            kind, spec, name = c["kind"], c["spec"], c["name"]
            inputs_from = (prev,) if prev else ()
            if kind == "linear":
                nxt = cache[i + 1] if i + 1 < len(cache) else None
                act = nxt["spec"]["fn"] if nxt is not None and nxt["kind"] == "act" else "linear"
                g = grads.get(i, {})
                params = [param("weight", ROLE_WEIGHT, spec["w"], g.get("weight"), trainable=spec.get("trainable", True),
                                initializer=spec.get("initializer"))]
                if spec["bias"]:
                    params.append(param("bias", ROLE_BIAS, spec["b"], g.get("bias")))
                rec = LayerRecord(name=name, type_name="Linear", kind=KIND_LINEAR, activation=act, params=tuple(params),
                                  input=stats(c["in"]), output=stats(c["out"]), inputs_from=inputs_from,
                                  consumes_model_input=not prev, entry=not seen_weight, depth=depth,
                                  executed=spec.get("executed", True),
                                  attrs={"units": spec["w"].shape[0], "use_bias": bool(spec["bias"])})
                seen_weight = True
                depth += 1
            elif kind == "act":
                fn = spec["fn"]
                z = c["z"]
                ua = (c["out"] > 0).mean(0) if fn in ("relu", "relu6") else None
                us = (np.abs(z) > SAT).mean(0) if fn in ("sigmoid", "tanh") else None
                rec = LayerRecord(name=name, type_name=fn, kind=KIND_ACTIVATION, activation=fn, input=stats(z),
                                  output=stats(c["out"]), unit_active=ua, unit_saturated=us, inputs_from=inputs_from)
            elif kind == "bn":
                g = grads.get(i, {})
                params = (param("weight", ROLE_NORM_SCALE, spec["gamma"], g.get("weight")),
                          param("bias", ROLE_NORM_SHIFT, spec["beta"], g.get("bias")),
                          param("running_var", ROLE_BUFFER, np.ones_like(spec["gamma"]), trainable=False))
                rec = LayerRecord(name=name, type_name="BatchNorm1d", kind=KIND_BATCHNORM, params=params,
                                  input=stats(c["in"]), output=stats(c["out"]), inputs_from=inputs_from)
            else:
                rec = LayerRecord(name=name, type_name="Dropout", kind=KIND_DROPOUT, input=stats(c["in"]),
                                  output=stats(c["out"]), inputs_from=inputs_from, attrs={"p": spec["p"]})
            recs.append(rec)
            prev = name
        return recs


def _looks_like(out: np.ndarray) -> str:
    if not np.all(np.isfinite(out)):
        return "unknown"
    if out.min() >= 0 and out.ndim >= 2 and np.allclose(out.sum(-1), 1.0, atol=1e-4):
        return "probabilities"
    if out.min() >= 0 and out.max() <= 1:
        return "sigmoid"
    return "logits"


def he(rng: np.random.Generator, n_out: int, n_in: int, gain: float = 2.0) -> np.ndarray:
    return rng.normal(0, np.sqrt(gain / n_in), size=(n_out, n_in))


def mlp(rng: np.random.Generator, widths: list[int], act: str = "relu",
        init: Any = None, head_act: str | None = None) -> Net:
    """Dense stack ``widths[0] -> ... -> widths[-1]`` with ``act`` between (He init by default)."""
    net = Net()
    pairs = list(zip(widths[:-1], widths[1:]))
    for i, (a, b) in enumerate(pairs):
        w = init(rng, b, a) if init is not None else he(rng, b, a)
        net.linear(w)
        if i < len(pairs) - 1:
            net.act(act)
        elif head_act:
            net.act(head_act)
    return net


def blobs(rng: np.random.Generator, n: int = 256, d: int = 8, classes: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Standardized Gaussian blobs (healthy inputs) and integer labels."""
    centers = rng.normal(0, 1.5, size=(classes, d))
    y = rng.integers(0, classes, size=n)
    x = centers[y] + rng.normal(0, 1, size=(n, d))
    return (x - x.mean(0)) / x.std(0), y


def with_layers(snap: ModelSnapshot, layers: list[LayerRecord], **kw: Any) -> ModelSnapshot:
    return replace(snap, layers=tuple(layers), **kw)


def find(snap: ModelSnapshot, name: str) -> LayerRecord:
    rec = snap.layer(name)
    assert rec is not None, name
    return rec


def run(code: str, snap: ModelSnapshot, **options: Any):
    """Run one rule on a snapshot and return its findings."""
    from netdoctor.config import Config
    from netdoctor.engine import run_rules
    from netdoctor.rules import registry

    spec = registry()[code]
    cfg = Config(options={code: options}) if options else Config()
    rep = run_rules(snap, [spec], cfg)
    assert not rep.targets[0].skipped, rep.targets[0].skipped
    return list(rep.findings) + list(rep.suppressed)
