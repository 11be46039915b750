"""Reference initializations: which scheme suits an activation, and how far a weight is from it.

He (``2 / fan_in``) for the ReLU family, LeCun (``1 / fan_in``) for SELU, Glorot/Xavier
(``2 / (fan_in + fan_out)``) for tanh, sigmoid and linear layers. Read by the weight rules, the
fix plans (which initializer a re-initialization uses) and the verification metrics.
"""

from __future__ import annotations

from netdoctor.snapshot import RELU_FAMILY, LayerRecord, ParamRecord

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


def reference_variance(act: str | None, fan_in: int, fan_out: int) -> float:
    """The weight variance of the reference initialization for ``act`` at these fans."""
    name = init_reference(act)[0]
    if name == "He":
        return 2.0 / fan_in
    if name == "LeCun":
        return 1.0 / fan_in
    return 2.0 / (fan_in + fan_out)


def variance_ratio(rec: LayerRecord) -> float | None:
    """Second moment of ``rec``'s weight over its reference variance (``None`` without fans)."""
    p = rec.weight
    if p is None or not p.fan_in or not p.fan_out:
        return None
    return (p.stats.mean ** 2 + p.stats.std ** 2) / reference_variance(rec.activation, p.fan_in, p.fan_out)


def far_too_small(p: ParamRecord | None, act: str | None) -> bool:
    """Whether ``p``'s second moment is under a tenth of ``gain / fan_in`` (a tiny initialization)."""
    return (p is not None and bool(p.fan_in)
            and p.stats.mean ** 2 + p.stats.std ** 2 < init_reference(act)[3] / p.fan_in / 10)
