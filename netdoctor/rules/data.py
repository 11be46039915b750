"""ND1xx: the data the model is fed (inputs and targets)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from netdoctor.analysis.graph import norm_after
from netdoctor.findings import Finding, Report, Severity
from netdoctor.rules.format import fmt, pct, plural
from netdoctor.rules.snippets import standardize_snippet
from netdoctor.rules.spec import RuleContext, rule
from netdoctor.snapshot import KIND_CONV, KIND_EMBEDDING, LayerRecord, ModelSnapshot, Need, TensorStats
from netdoctor.verify.plan import FixPlan
from netdoctor.verify.protocol import step

if TYPE_CHECKING:
    from netdoctor.verify.verdict import Measure


def _varying(st: TensorStats) -> np.ndarray | None:
    """Mask of features that vary over the batch (constant ones are ND103's business)."""
    if st.unit_std is None:
        return None
    s = np.asarray(st.unit_std, dtype=float)
    return np.isfinite(s) & (s > 0)


def _feature_scales(st: TensorStats, varying: np.ndarray | None) -> np.ndarray:
    """Per-feature RMS ``sqrt(mean^2 + std^2)`` (the typical magnitude a weight layer sees);
    ``varying`` is :func:`_varying` of ``st``."""
    if st.unit_mean is None or st.unit_std is None:
        return np.asarray([st.rms], dtype=float)
    m = np.asarray(st.unit_mean, dtype=float)
    s = np.asarray(st.unit_std, dtype=float)
    r = np.sqrt(m * m + s * s)
    return np.where(varying & np.isfinite(r), r, 0.0)


def _feature_ranges(st: TensorStats, varying: np.ndarray | None) -> np.ndarray | None:
    """Per-feature magnitude ``max(|min|, |max|)`` of varying features: unlike the RMS it does not
    shrink for sparse columns (a pixel that is non-zero in 1 of 256 images spans its full range)."""
    if st.unit_min is None or st.unit_max is None:
        return None
    r = np.maximum(np.abs(np.asarray(st.unit_min, dtype=float)), np.abs(np.asarray(st.unit_max, dtype=float)))
    keep = np.isfinite(r) if varying is None else (varying & np.isfinite(r))
    return r[keep]


def _quantiles(a: np.ndarray, qs: tuple[float, ...]) -> tuple[float, ...]:
    """``np.quantile(a, qs)`` (linear interpolation) from a partial sort: a fifth of its cost on a feature vector."""
    n = a.size
    pos = [q * (n - 1) for q in qs]
    ks = sorted({math.floor(p) for p in pos} | {min(math.floor(p) + 1, n - 1) for p in pos})
    part = np.partition(a, ks)
    out = []
    for p in pos:
        lo = math.floor(p)
        hi = min(lo + 1, n - 1)
        out.append(float(part[lo] + (p - lo) * (part[hi] - part[lo])))
    return tuple(out)


def _entry_layers(snap: ModelSnapshot) -> list[LayerRecord]:
    """Weight layers that see the model input (through preprocessing only), embeddings excluded."""
    recs = [r for r in snap.layers if r.entry and r.is_weight_layer and r.input is not None]
    if not recs:  # adapter did not mark entries: the first executed weight layer fed by an input
        recs = [r for r in snap.weight_layers(executed_only=True) if r.consumes_model_input and r.input is not None][:1]
    return [r for r in recs if r.kind != KIND_EMBEDDING]


def _standardize(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan:
    return FixPlan((step("standardize"),))


def _input_scale(f: Finding, m: Measure) -> dict[str, Any]:
    """The largest feature RMS and the absolute maximum the flagged layer sees."""
    out: dict[str, Any] = {}
    r = m.rec(f.layer)
    if r is not None and r.input is not None:
        st = r.input
        if st.unit_mean is not None and st.unit_std is not None:
            rms = np.sqrt(np.asarray(st.unit_mean, float) ** 2 + np.asarray(st.unit_std, float) ** 2)
            out[f"max_feature_rms[{f.layer}]"] = float(np.nanmax(rms)) if rms.size else None
        out[f"input_abs_max[{f.layer}]"] = st.abs_max
    return out


@rule(code="ND101", name="unnormalized-inputs", needs={Need.DATA, Need.ACTIVATIONS}, severity=Severity.WARNING,
      options={"max_scale": 5.0, "max_spread": 100.0, "min_scale": 1e-2}, fix=_standardize, metric=_input_scale)
def unnormalized_inputs(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """Input features reach the first weight layer far from unit scale, or on very different scales.

    ## What it does
    Measures, for every *entry* weight layer (one that receives the model input through no other
    weight layer), the per-feature magnitude (RMS, ``sqrt(mean^2 + std^2)``) of what that layer
    actually sees, after any in-model ``Rescaling``/``Normalization``/mean-subtraction. It flags
    features whose typical magnitude is far above unit scale (raw 0-255 pixels, raw tabular
    columns such as a price or a year), features whose scales span orders of magnitude, and
    inputs that are all tiny. Integer token ids feeding an embedding are not features and are
    never judged. Outliers do not matter: a standardized column with a few large values still
    has RMS 1.

    When a normalization layer directly follows the entry layer (Keras' ResNet50 fed
    caffe-style inputs with RMS ~60, conv1 -> BatchNorm), a too-large common scale only slows
    that one layer's learning and is reported as info; features on different scales and raw
    0-255 pixels (which pretrained weights never expect) are still a warning.

    ## Why is this bad?
    The optimum of ``W1 x`` is scale-invariant, but the gradient of ``W1`` is proportional to
    ``x``: a feature with RMS 600 gets gradients 600 times those of a unit-scale feature, so one
    learning rate is too large for one and too small for the other. He/Glorot initialization
    assumes unit-variance inputs; large inputs saturate sigmoid/tanh units from the first step.

    ## Example
    ```python
    x = load_breast_cancer().data            # 'worst area' up to 4254, 'smoothness' ~0.1
    model = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 2))
    ```

    ## Use instead
    ```python
    mean, std = x_train.mean(0, keepdim=True), x_train.std(0, keepdim=True).clamp_min(1e-8)
    x = (x - mean) / std                      # Keras: norm = layers.Normalization(); norm.adapt(x)
    ```

    ## Options
    - ``max_scale`` (default 5.0): largest acceptable per-feature RMS. Standardized data has
      RMS 1, min-max-scaled data at most 1; 5 leaves room for skewed features while flagging
      digit pixels 0-16 (RMS up to ~12), iris in cm (~6), raw 0-255 pixels (~120).
    - ``max_spread`` (default 100.0): largest acceptable ratio between the 95th and 5th
      percentile of the per-feature range ``max(|min|, |max|)``. The range (not the RMS) keeps
      sparse columns, such as border pixels that are non-zero in one image of 256, from
      looking tiny, and percentiles keep a single odd column from deciding: digits/16 spans
      ~5x, standardized data with outliers ~10x, raw breast-cancer columns ~1e4x.
    - ``min_scale`` (default 0.01): flag when even the largest feature RMS is below this.

    ## References
    - LeCun, Bottou, Orr, Müller, "Efficient BackProp" (1998), section 4.3.
    - UMLAUT and DeepDiagnosis use ``min < -1 or max > 1``, which flags standardized data with
      outliers and misses per-feature mismatch; this rule judges per-feature scale instead.
    """
    if snap.data is None or snap.synthetic_inputs:
        return
    seen: set[tuple] = set()
    for rec in _entry_layers(snap):
        st = rec.input
        assert st is not None
        varying = _varying(st)
        scales = _feature_scales(st, varying)
        positive = scales[scales > 0]
        if positive.size == 0:
            continue
        max_s = float(positive.max())
        ranges = _feature_ranges(st, varying)
        ranges = ranges[ranges > 0] if ranges is not None else positive
        q05, q95 = _quantiles(ranges, (0.05, 0.95)) if ranges.size > 1 else (1.0, 1.0)
        spread = q95 / q05 if q05 > 0 else float("inf")
        sig = (round(max_s, 6), positive.size, round(spread, 3))
        if sig in seen:
            continue
        seen.add(sig)
        problems: list[str] = []
        what = "channel" if rec.kind == KIND_CONV else "feature"
        worst = int(np.argmax(scales)) if scales.size > 1 else None
        at = f"{what} {worst}; " if worst is not None else ""
        if max_s > ctx.opt("max_scale"):
            problems.append(f"per-{what} scale (RMS) up to {fmt(max_s)} ({at}limit {fmt(ctx.opt('max_scale'))})")
        if spread > ctx.opt("max_spread"):
            problems.append(f"{what} ranges spanning {fmt(spread)}x between the 5th and 95th percentile "
                            f"(max |x| {fmt(q05)} to {fmt(q95)}; limit {fmt(ctx.opt('max_spread'))}x)")
        if max_s < ctx.opt("min_scale"):
            problems.append(f"only tiny {what}s (largest RMS {fmt(max_s)}; limit {fmt(ctx.opt('min_scale'))})")
        if not problems:
            continue
        pixels = st.min >= 0 and 1.5 < st.max <= 255.0 and spread <= ctx.opt("max_spread") \
            and (rec.kind == KIND_CONV or st.max > 16 or positive.size > 16)
        norm = norm_after(snap, rec)
        # a normalization right after the entry layer undoes a common input scale (only the entry
        # layer's own learning speed suffers); it cannot undo features on different scales
        # (raw 0-255 pixels stay a warning: pretrained weights behind that BatchNorm expect scaled inputs)
        mild = norm is not None and spread <= ctx.opt("max_spread") and not pixels
        by = f"`{norm.name}`" if norm is not None and norm is not rec else "a normalization layer"
        note = f"; {by} normalizes its output, so only its learning speed suffers" if mild else ""
        yield ctx.finding(
            f"`{rec.name}` receives inputs with " + " and ".join(problems) + note,
            layer=rec.name,
            severity=Severity.INFO if mild else None,
            recommendation=("Scale the pixel values to [0, 1] before the first layer." if pixels else
                            "Standardize each input feature with the training-set mean and standard deviation."),
            snippet=standardize_snippet(ctx, rec, st, pixels),
            evidence={"max_feature_rms": max_s, "feature": worst, "q05_range": q05, "q95_range": q95, "spread": spread,
                      "n_features": int(scales.size), "min": st.min, "max": st.max, "mean": st.mean, "std": st.std,
                      "limits": {"max_scale": ctx.opt("max_scale"), "max_spread": ctx.opt("max_spread"),
                                 "min_scale": ctx.opt("min_scale")}},
        )


def _count(st: TensorStats) -> int:
    return int(round(st.frac_nonfinite * st.size))


def _drop_rows(f: Finding, report: Report, snap: ModelSnapshot) -> FixPlan:
    return FixPlan((step("drop_rows"),))


def _probe_loss(f: Finding, m: Measure) -> dict[str, Any]:
    return {"probe-batch loss": m.snap.loss.value if m.snap.loss is not None else None}


@rule(code="ND102", name="nonfinite-inputs", needs={Need.DATA}, severity=Severity.ERROR,
      options={"max_fraction": 0.0}, fix=_drop_rows, metric=_probe_loss)
def nonfinite_inputs(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """NaN or Inf values in the inputs or the targets.

    ## What it does
    Counts non-finite entries in every model input and in the targets of the probe batch.

    ## Why is this bad?
    One NaN in a batch makes the loss NaN, every gradient NaN, and after one optimizer step
    every weight NaN. Missing values in tabular data (``np.nan`` from pandas) are the usual
    source; ``inf`` comes from ``log(0)`` or division by zero in feature engineering.

    ## Example
    ```python
    x = df[["age", "income"]].to_numpy()      # income has missing values -> NaN
    ```

    ## Use instead
    ```python
    x = SimpleImputer(strategy="median").fit_transform(x)   # or drop the rows
    ```

    ## Options
    - ``max_fraction`` (default 0.0): tolerated fraction of non-finite entries. Zero, because a
      single NaN reaching the loss poisons the whole update.

    ## References
    - Goodfellow, Bengio, Courville, "Deep Learning" (2016), section 11.5 (debugging strategies).
    """
    data = snap.data
    if data is None:
        return
    items = [("input", name, st) for name, st in data.inputs.items()]
    if data.targets is not None:
        items.append(("targets", "y", data.targets))
    for kind, name, st in items:
        if st.frac_nonfinite <= ctx.opt("max_fraction"):
            continue
        n = _count(st)
        label = f"input `{name}`" if kind == "input" else "the targets"
        var = name if kind == "input" else "y"
        yield ctx.finding(
            f"{pct(st.frac_nonfinite)} of the entries of {label} are NaN or Inf "
            f"({n} of {st.size}; limit {fmt(ctx.opt('max_fraction'))})",
            recommendation="Impute or drop the samples with missing values before training.",
            snippet=ctx.snippet(
                torch=(f"ok = torch.isfinite({var}).reshape(len({var}), -1).all(dim=1)\n"
                       "x, y = x[ok], y[ok]  # or impute: sklearn.impute.SimpleImputer(strategy=\"median\")"),
                keras=(f"ok = np.isfinite({var}).reshape(len({var}), -1).all(axis=1)\n"
                       "x, y = x[ok], y[ok]  # or impute: sklearn.impute.SimpleImputer(strategy=\"median\")"),
            ),
            evidence={"tensor": name, "frac_nonfinite": st.frac_nonfinite, "count": n, "size": st.size},
        )


@rule(code="ND103", name="constant-feature", needs={Need.DATA}, severity=Severity.INFO,
      options={"min_samples": 8},
      fix="dropping a constant feature changes the model's input width; drop it in the data pipeline")
def constant_feature(snap: ModelSnapshot, ctx: RuleContext) -> Iterator[Finding]:
    """An input feature that has the same value for every sample of the batch.

    ## What it does
    Looks at the per-feature standard deviation of every floating-point model input (features
    of tabular data, channels of images) and reports features with zero variance over the probe
    batch. Integer inputs (token ids, attention masks, segment ids) are not features and are
    skipped: a ``[CLS]`` id at position 0 is constant by design.

    ## Why is this bad?
    A constant column carries no information, wastes a weight per unit, and breaks
    standardization (division by a zero standard deviation gives NaN or Inf). It often reveals a
    pipeline bug: a column filled with a default, a sensor that was unplugged, an image channel
    that was zeroed. Reported as info because image borders (e.g. the corner pixels of
    ``load_digits``) are legitimately constant.

    ## Example
    ```python
    x = np.column_stack([age, income, np.ones(len(age))])   # a constant column slipped in
    ```

    ## Use instead
    ```python
    keep = x_train.std(axis=0) > 0
    x_train, x_test = x_train[:, keep], x_test[:, keep]      # or VarianceThreshold()
    ```

    ## Options
    - ``min_samples`` (default 8): below this many samples a feature can be constant by chance
      (e.g. a binary flag), so the rule stays silent.

    ## References
    - scikit-learn ``VarianceThreshold`` (feature selection by variance).
    """
    data = snap.data
    if data is None or data.num_samples < ctx.opt("min_samples"):
        return
    for name, st in data.inputs.items():
        if st.is_integer or st.unit_std is None or len(st.unit_std) < 2:
            continue
        std = np.asarray(st.unit_std, dtype=float)
        mean = np.asarray(st.unit_mean, dtype=float) if st.unit_mean is not None else np.zeros_like(std)
        const = np.flatnonzero(np.isfinite(std) & (std <= 1e-12 * (1.0 + np.abs(mean))))
        if const.size == 0:
            continue
        what = "channels" if len(st.shape) >= 4 else "features"
        idx = ", ".join(str(int(i)) for i in const[:8]) + (", ..." if const.size > 8 else "")
        which = what if const.size > 1 else what[:-1]
        values = [float(mean[i]) for i in const[:8]]
        yield ctx.finding(
            f"{const.size} of {len(std)} {what} of input `{name}` are constant over "
            f"{plural(data.num_samples, 'sample')} ({which} {idx}; limit: standard deviation > 0)",
            recommendation="Drop the constant features or fix the pipeline step that fills them.",
            snippet=ctx.snippet(
                torch="keep = x_train.std(dim=0) > 0\nx_train, x_test = x_train[:, keep], x_test[:, keep]",
                keras="keep = x_train.std(axis=0) > 0\nx_train, x_test = x_train[:, keep], x_test[:, keep]",
            ),
            evidence={"input": name, "constant": [int(i) for i in const], "values": values,
                      "n_features": int(len(std)), "samples": data.num_samples},
        )
