"""Keras layer taxonomy: kinds, activation names, attributes, parameter roles and fans.

Pure look-ups on layer objects (class names, configs, variable shapes); nothing here runs
a computation. Kinds are matched on the class and its bases, so a subclass of ``Dense``
is still ``linear``.
"""

from __future__ import annotations

import math
from typing import Any

from netdoctor.adapters._common import canonical_activation as common_canonical
from netdoctor.snapshot import (
    KIND_ACTIVATION,
    KIND_ATTENTION,
    KIND_BATCHNORM,
    KIND_CONV,
    KIND_DROPOUT,
    KIND_EMBEDDING,
    KIND_GROUPNORM,
    KIND_LAYERNORM,
    KIND_LINEAR,
    KIND_OTHER,
    KIND_POOL,
    KIND_PREPROCESS,
    KIND_RNN,
    KIND_SCALE,
    ROLE_BIAS,
    ROLE_BUFFER,
    ROLE_EMBEDDING,
    ROLE_NORM_SCALE,
    ROLE_NORM_SHIFT,
    ROLE_OTHER,
    ROLE_RECURRENT,
    ROLE_WEIGHT,
)

_KIND_BY_CLASS: dict[str, str] = {
    **dict.fromkeys(("Dense", "EinsumDense"), KIND_LINEAR),
    **dict.fromkeys(
        ("Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
         "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
         "BaseConv", "BaseConvTranspose", "BaseDepthwiseConv", "BaseSeparableConv"),
        KIND_CONV,
    ),
    **dict.fromkeys(("Embedding", "ReversibleEmbedding"), KIND_EMBEDDING),
    **dict.fromkeys(
        ("LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM", "ConvLSTM1D",
         "ConvLSTM2D", "ConvLSTM3D"),
        KIND_RNN,
    ),
    **dict.fromkeys(("MultiHeadAttention", "GroupedQueryAttention"), KIND_ATTENTION),
    "BatchNormalization": KIND_BATCHNORM,
    **dict.fromkeys(("LayerNormalization", "RMSNormalization"), KIND_LAYERNORM),
    "GroupNormalization": KIND_GROUPNORM,
    **dict.fromkeys(
        ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
         "GaussianDropout", "AlphaDropout"),
        KIND_DROPOUT,
    ),
    **dict.fromkeys(("Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax"), KIND_ACTIVATION),
    **dict.fromkeys(("Normalization", "Rescaling"), KIND_PREPROCESS),
    **dict.fromkeys(
        ("MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
         "AveragePooling3D", "GlobalAveragePooling1D", "GlobalAveragePooling2D",
         "GlobalAveragePooling3D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
         "AdaptiveAveragePooling1D", "AdaptiveAveragePooling2D", "AdaptiveAveragePooling3D",
         "AdaptiveMaxPooling1D", "AdaptiveMaxPooling2D", "AdaptiveMaxPooling3D",
         "BasePooling", "BaseGlobalPooling", "MaxPool", "AveragePool"),
        KIND_POOL,
    ),
    "LayerScale": KIND_SCALE,
}

# keras.ops activation operations (functional use on KerasTensors) -> canonical name.
_OP_ACTIVATIONS: dict[str, str] = {
    "Relu": "relu", "Relu6": "relu6", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softmax": "softmax",
    "LogSoftmax": "log_softmax", "Gelu": "gelu", "Silu": "silu", "Elu": "elu", "Selu": "selu",
    "Celu": "celu", "LeakyRelu": "leaky_relu", "Softplus": "softplus", "Softsign": "softsign",
    "HardSigmoid": "hard_sigmoid", "HardSilu": "hardswish", "HardTanh": "hard_tanh",
    "LogSigmoid": "log_sigmoid", "Mish": "mish",
}

# Function names (keras.activations) -> canonical names of the snapshot.
_ACT_ALIASES = {
    "swish": "silu", "hard_swish": "hardswish", "hard_silu": "hardswish", "linear": "linear",
    "relu6": "relu6", "leaky_relu": "leaky_relu", "log_softmax": "log_softmax",
}

RESHAPE_CLASSES = frozenset({
    "Flatten", "Reshape", "Permute", "RepeatVector", "ZeroPadding1D", "ZeroPadding2D",
    "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D",
    "UpSampling3D", "Identity", "Masking", "ActivityRegularization", "GaussianNoise",
})
MERGE_CLASSES = frozenset({"Add", "Concatenate", "Average", "Maximum", "Minimum"})
_WRAPPER_KINDS = frozenset({KIND_LINEAR, KIND_CONV, KIND_EMBEDDING})

# Variable name -> (role in a weight layer, initializer attribute of the owning layer).
_VAR_ROLES: dict[str, tuple[str, str]] = {
    "kernel": (ROLE_WEIGHT, "kernel_initializer"),
    "depthwise_kernel": (ROLE_WEIGHT, "depthwise_initializer"),
    "pointwise_kernel": (ROLE_WEIGHT, "pointwise_initializer"),
    "embeddings": (ROLE_EMBEDDING, "embeddings_initializer"),
    "recurrent_kernel": (ROLE_RECURRENT, "recurrent_initializer"),
    "bias": (ROLE_BIAS, "bias_initializer"),
    "gamma": (ROLE_NORM_SCALE, "gamma_initializer"),
    "scale": (ROLE_NORM_SCALE, "gamma_initializer"),
    "beta": (ROLE_NORM_SHIFT, "beta_initializer"),
    "moving_mean": (ROLE_BUFFER, "moving_mean_initializer"),
    "moving_variance": (ROLE_BUFFER, "moving_variance_initializer"),
    "mean": (ROLE_BUFFER, ""),
    "variance": (ROLE_BUFFER, ""),
    "count": (ROLE_BUFFER, ""),
}


def class_names(obj: Any) -> list[str]:
    """Names of the class of ``obj`` and its bases, most specific first."""
    return [k.__name__ for k in type(obj).__mro__]


def is_layer(obj: Any) -> bool:
    """True for ``keras.layers.Layer`` instances (not bare ``keras.ops`` operations)."""
    return "Layer" in class_names(obj)


def inner_layer(layer: Any) -> Any | None:
    """The wrapped layer of ``TimeDistributed`` and similar wrappers (not Bidirectional)."""
    names = class_names(layer)
    if "Wrapper" in names and "Bidirectional" not in names:
        return getattr(layer, "layer", None)
    return None


def kind_of(op: Any) -> str:
    """The snapshot ``KIND_*`` of a Keras layer or operation."""
    names = class_names(op)
    if "Wrapper" in names and "Bidirectional" not in names:
        inner = inner_layer(op)
        if inner is not None:
            k = kind_of(inner)
            return k if k in _WRAPPER_KINDS or k == KIND_RNN else KIND_OTHER
    if not is_layer(op):
        return KIND_ACTIVATION if type(op).__name__ in _OP_ACTIVATIONS else KIND_OTHER
    for n in names:
        if n in _KIND_BY_CLASS:
            return _KIND_BY_CLASS[n]
    return KIND_OTHER


def canonical_activation(fn: Any) -> str | None:
    """Canonical name of a Keras activation (function, string or layer config value)."""
    if fn is None:
        return "linear"
    name = fn if isinstance(fn, str) else getattr(fn, "__name__", None)
    if name is None:
        name = type(fn).__name__
    name = str(name).lower()
    return _ACT_ALIASES.get(name) or common_canonical(name)


def fused_activation(layer: Any) -> str | None:
    """Activation a weight layer applies to its own output (``Dense(..., activation=...)``).

    ``None`` when the layer has no ``activation`` argument (LSTM activations are internal).
    """
    names = class_names(layer)
    if not any(n in _KIND_BY_CLASS and _KIND_BY_CLASS[n] in (KIND_LINEAR, KIND_CONV) for n in names):
        inner = inner_layer(layer)
        return fused_activation(inner) if inner is not None else None
    if not hasattr(layer, "activation"):
        return None
    return canonical_activation(layer.activation)


def activation_name(op: Any) -> str | None:
    """Canonical name of the function computed by an activation layer or operation."""
    cls = type(op).__name__
    if cls in _OP_ACTIVATIONS and not is_layer(op):
        return _OP_ACTIVATIONS[cls]
    names = class_names(op)
    if "ReLU" in names:
        if getattr(op, "max_value", None) == 6 and not getattr(op, "negative_slope", 0):
            return "relu6"
        return "leaky_relu" if getattr(op, "negative_slope", 0) else "relu"
    for n, act in (("LeakyReLU", "leaky_relu"), ("PReLU", "prelu"), ("ELU", "elu"), ("Softmax", "softmax")):
        if n in names:
            return act
    if "Activation" in names:
        return canonical_activation(getattr(op, "activation", None))
    return None


def _tuple(v: Any) -> Any:
    return tuple(v) if isinstance(v, (list, tuple)) else v


def layer_attrs(layer: Any, kind: str) -> dict[str, Any]:
    """Kind-specific attributes (``use_bias``, ``p``, ``kernel_size``, ``groups``, ``units``, ``axis``)."""
    inner = inner_layer(layer)
    src = inner if inner is not None else layer
    a: dict[str, Any] = {}
    if not is_layer(src):
        return a
    names = class_names(src)
    if kind in (KIND_LINEAR, KIND_CONV, KIND_EMBEDDING, KIND_RNN, KIND_ATTENTION):
        if hasattr(src, "use_bias"):
            a["use_bias"] = bool(src.use_bias)
        elif kind == KIND_LINEAR and hasattr(src, "bias_axes"):
            a["use_bias"] = src.bias_axes is not None
    if kind == KIND_LINEAR and hasattr(src, "units"):
        a["units"] = int(src.units)
    if kind == KIND_LINEAR and hasattr(src, "equation"):
        a["equation"] = src.equation
    if kind == KIND_CONV:
        a["kernel_size"] = _tuple(getattr(src, "kernel_size", None))
        a["strides"] = _tuple(getattr(src, "strides", None))
        a["data_format"] = getattr(src, "data_format", "channels_last")
        if "BaseDepthwiseConv" in names or "DepthwiseConv2D" in names or "DepthwiseConv1D" in names:
            a["depthwise"] = True
            a["depth_multiplier"] = int(getattr(src, "depth_multiplier", 1))
        else:
            a["groups"] = int(getattr(src, "groups", 1) or 1)
        if getattr(src, "filters", None) is not None:
            a["units"] = int(src.filters)
        a["transpose"] = "BaseConvTranspose" in names
    if kind == KIND_EMBEDDING:
        a["input_dim"] = int(getattr(src, "input_dim", 0))
        a["units"] = int(getattr(src, "output_dim", 0))
        a["mask_zero"] = bool(getattr(src, "mask_zero", False))
    if kind == KIND_RNN:
        fwd = getattr(src, "forward_layer", None)
        base = fwd if fwd is not None else src
        if getattr(base, "units", None) is not None:
            a["units"] = int(base.units)
        a["bidirectional"] = fwd is not None
        a["return_sequences"] = bool(getattr(src, "return_sequences", False))
        a["cell"] = type(getattr(base, "cell", base)).__name__
    if kind == KIND_ATTENTION:
        a["num_heads"] = int(getattr(src, "num_heads", getattr(src, "num_query_heads", 0)) or 0)
        a["key_dim"] = getattr(src, "key_dim", getattr(src, "head_dim", None))
    if kind == KIND_DROPOUT:
        a["p"] = float(getattr(src, "rate", 0.0))
    if kind in (KIND_BATCHNORM, KIND_LAYERNORM, KIND_GROUPNORM):
        axis = getattr(src, "axis", -1)
        a["axis"] = _tuple(axis)
        # RMSNormalization holds its gain variable in ``scale`` (always learned), not a flag: a Variable has no bool()
        center = getattr(src, "center", type(src).__name__ != "RMSNormalization")  # RMS norm: no shift
        scale = getattr(src, "scale", True)
        a["center"] = center if isinstance(center, bool) else True
        a["scale"] = scale if isinstance(scale, bool) else True
        a["epsilon"] = float(getattr(src, "epsilon", 0.0) or 0.0)
        if kind == KIND_GROUPNORM:
            a["groups"] = int(getattr(src, "groups", 1))
        if kind == KIND_BATCHNORM:
            a["momentum"] = float(getattr(src, "momentum", 0.99))
    if kind == KIND_PREPROCESS:
        if "Rescaling" in names:
            a["scale"] = _jsonable_num(getattr(src, "scale", 1.0))
            a["offset"] = _jsonable_num(getattr(src, "offset", 0.0))
        else:
            a["axis"] = _tuple(getattr(src, "axis", -1))
            a["invert"] = bool(getattr(src, "invert", False))
        a["standardizes"] = not a.get("invert", False)
    if kind == KIND_ACTIVATION:
        for key in ("negative_slope", "max_value", "threshold", "alpha"):
            v = getattr(src, key, None)
            if isinstance(v, (int, float)):
                a[key] = float(v)
    if kind == KIND_POOL:
        a["pool_size"] = _tuple(getattr(src, "pool_size", None))
    return a


def _jsonable_num(v: Any) -> Any:
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [float(x) for x in v]
    return str(v)


def param_role(var_name: str, layer_kind: str, trainable_var: bool) -> str:
    """Role of a variable called ``var_name`` inside a layer of ``layer_kind``."""
    role = _VAR_ROLES.get(var_name, (None, ""))[0]
    if role is None:
        return ROLE_OTHER if trainable_var else ROLE_BUFFER
    if role in (ROLE_NORM_SCALE, ROLE_NORM_SHIFT) and layer_kind not in (
        KIND_BATCHNORM, KIND_LAYERNORM, KIND_GROUPNORM
    ):
        return ROLE_OTHER
    return role


def initializer_name(owner: Any, var_name: str) -> str | None:
    """Class name of the initializer the owning layer configured for ``var_name``."""
    attr = _VAR_ROLES.get(var_name, (None, ""))[1]
    if not attr:
        return None
    candidates = [attr, "_" + attr]
    if var_name == "kernel":  # DepthwiseConv names its kernel "kernel" but configures depthwise_initializer
        candidates += ["depthwise_initializer", "_kernel_initializer"]
    init = next((getattr(owner, a) for a in candidates if getattr(owner, a, None) is not None), None)
    if init is None:
        return None
    if isinstance(init, str):
        return init
    name = type(init).__name__
    return getattr(init, "__name__", name) if name == "function" else name


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` exactly as Keras' ``VarianceScaling`` computes them."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def unit_axes(owner: Any, var_name: str, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Axes of a weight tensor that index its output units.

    Dense ``(in, out)`` -> last; conv ``(k..., in, out)`` -> last; depthwise
    ``(k..., in, multiplier)`` -> the last two (one unit per output channel); transposed
    conv ``(k..., out, in)`` -> second to last; embedding ``(vocab, dim)`` -> rows;
    EinsumDense -> the kernel axes that appear in the output of its equation.
    """
    nd = len(shape)
    if nd < 2:
        return (0,) if nd == 1 else ()
    names = class_names(owner)
    if var_name == "embeddings":
        return (0,)
    if var_name == "depthwise_kernel" or (var_name == "kernel" and "BaseDepthwiseConv" in names):
        return (nd - 2, nd - 1)
    if var_name == "kernel" and "BaseConvTranspose" in names:
        return (nd - 2,)
    equation = getattr(owner, "equation", None)
    if var_name == "kernel" and isinstance(equation, str) and "->" in equation:
        try:
            lhs, out = equation.replace(" ", "").split("->")
            kernel_spec = lhs.split(",")[1]
            axes = tuple(i for i, c in enumerate(kernel_spec) if c in out)
            if axes and len(kernel_spec) == nd:
                return axes
        except (IndexError, ValueError):
            pass
    return (nd - 1,)
