"""What each torch module and function is: kinds, parameter roles, fans and attributes."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import batchnorm as _bn
from torch.nn.modules import conv as _conv
from torch.nn.modules import dropout as _drop
from torch.nn.modules import instancenorm as _inorm
from torch.nn.modules import pooling as _pool
from torch.nn.modules import rnn as _rnn

from netdoctor.snapshot import (
    KIND_ACTIVATION, KIND_ATTENTION, KIND_BATCHNORM, KIND_CONV, KIND_DROPOUT, KIND_EMBEDDING,
    KIND_GROUPNORM, KIND_LAYERNORM, KIND_LINEAR, KIND_OTHER, KIND_POOL, KIND_RNN, KIND_SCALE,
    KIND_PREPROCESS, NORM_KINDS, ROLE_BIAS, ROLE_EMBEDDING, ROLE_NORM_SCALE, ROLE_NORM_SHIFT,
    ROLE_OTHER, ROLE_RECURRENT, ROLE_WEIGHT,
)

# -- modules ---------------------------------------------------------------------------

_ACTIVATION_MODULES: dict[type, str] = {
    nn.ReLU6: "relu6", nn.ReLU: "relu", nn.LeakyReLU: "leaky_relu", nn.RReLU: "leaky_relu",
    nn.ELU: "elu", nn.SELU: "selu", nn.CELU: "celu", nn.GELU: "gelu", nn.SiLU: "silu",
    nn.Mish: "mish", nn.Hardswish: "hardswish", nn.Softplus: "softplus", nn.PReLU: "prelu",
    nn.Sigmoid: "sigmoid", nn.Hardsigmoid: "hard_sigmoid", nn.Tanh: "tanh",
    nn.Hardtanh: "hard_tanh", nn.Softsign: "softsign", nn.Softmax: "softmax",
    nn.Softmax2d: "softmax", nn.LogSoftmax: "log_softmax", nn.Softmin: "softmin",
    nn.LogSigmoid: "log_sigmoid", nn.GLU: "glu", nn.Tanhshrink: "tanhshrink",
    nn.Softshrink: "softshrink", nn.Hardshrink: "hardshrink", nn.Threshold: "threshold",
}
_POOL_BASES = tuple(
    c for c in (
        getattr(_pool, n, None) for n in (
            "_MaxPoolNd", "_AvgPoolNd", "_AdaptiveAvgPoolNd", "_AdaptiveMaxPoolNd", "_LPPoolNd",
            "_MaxUnpoolNd", "FractionalMaxPool2d", "FractionalMaxPool3d",
        )
    ) if c is not None
)
#: Parameter-free modules that only move data around; the activation search looks through them.
RESHAPING_MODULES = (nn.Flatten, nn.Unflatten, nn.Identity, nn.Upsample, nn.PixelShuffle,
                     nn.PixelUnshuffle, nn.ChannelShuffle)


def is_scripted(module: nn.Module) -> bool:
    """A TorchScript module: no hooks, no tracing inside; handled as one opaque block."""
    return isinstance(module, torch.jit.ScriptModule)


def is_builtin(module: nn.Module) -> bool:
    """The module's class is defined in ``torch.nn`` (its forward is an implementation detail)."""
    return type(module).__module__.startswith("torch.nn.")


def owns_state(module: nn.Module) -> bool:
    """The module owns parameters or floating-point buffers directly."""
    if any(p is not None for p in module._parameters.values()):
        return True
    return any(b is not None and b.is_floating_point() for b in module._buffers.values())


def should_record(module: nn.Module) -> bool:
    """Whether the module becomes a :class:`LayerRecord` (it computes something itself).

    Built-in leaf modules are recorded (except ``nn.Identity``), as are modules that own
    parameters or floating buffers directly. Pure containers (``Sequential``, modules whose
    forward only calls children and functions) are not: the trace looks inside them.
    """
    if isinstance(module, nn.Identity):
        return False
    has_children = next(iter(module._modules.values()), None) is not None
    if is_builtin(module) and not has_children:
        return True
    return owns_state(module)


def is_opaque(module: nn.Module) -> bool:
    """A recorded module whose internals are not traced (built-in modules and leaves)."""
    has_children = next(iter(module._modules.values()), None) is not None
    return is_builtin(module) or not has_children


def module_activation(module: nn.Module) -> str | None:
    """Canonical activation name of an activation module, else ``None``."""
    for klass in type(module).__mro__:
        name = _ACTIVATION_MODULES.get(klass)
        if name is not None:
            return name
    return None


def _is_hf_conv1d(module: nn.Module) -> bool:
    return type(module).__name__ == "Conv1D" and type(module).__module__.startswith("transformers")


def module_kind(module: nn.Module) -> str:
    """The ``KIND_*`` constant for a module."""
    if isinstance(module, (nn.Linear, nn.Bilinear)) or _is_hf_conv1d(module):
        return KIND_LINEAR
    if isinstance(module, _conv._ConvNd):
        return KIND_CONV
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
        return KIND_EMBEDDING
    if isinstance(module, (_rnn.RNNBase, _rnn.RNNCellBase)):
        return KIND_RNN
    if isinstance(module, nn.MultiheadAttention):
        return KIND_ATTENTION
    if isinstance(module, _bn._BatchNorm):
        return KIND_BATCHNORM
    if isinstance(module, (nn.LayerNorm, getattr(nn, "RMSNorm", nn.LayerNorm))):
        return KIND_LAYERNORM
    if isinstance(module, (nn.GroupNorm, _inorm._InstanceNorm)):
        return KIND_GROUPNORM
    if isinstance(module, (_drop._DropoutNd,)):
        return KIND_DROPOUT
    if module_activation(module) is not None:
        return KIND_ACTIVATION
    if _POOL_BASES and isinstance(module, _POOL_BASES):
        return KIND_POOL
    if is_builtin(module):
        return KIND_OTHER
    name = type(module).__name__.lower()
    if "layernorm" in name or "rmsnorm" in name:
        return KIND_LAYERNORM
    if "batchnorm" in name:
        return KIND_BATCHNORM
    if "groupnorm" in name or "instancenorm" in name:
        return KIND_GROUPNORM
    params = [p for p in module._parameters.values() if p is not None]
    has_children = next(iter(module._modules.values()), None) is not None
    if not params and not has_children and owns_state(module):
        return KIND_PREPROCESS  # a leaf with fixed float buffers only: mean/std standardization
    weight = module._parameters.get("weight")
    if weight is not None and not has_children and weight.dim() >= 2:
        return KIND_LINEAR if weight.dim() == 2 else KIND_CONV  # a hand-written Linear/Conv
    if params and all(sum(1 for d in p.shape if d > 1) <= 1 for p in params):
        return KIND_SCALE
    return KIND_OTHER


def looks_through(module: nn.Module | None, kind: str) -> bool:
    """The activation search may pass through records of this kind (norm, dropout, pool, reshape)."""
    if kind in NORM_KINDS or kind in (KIND_DROPOUT, KIND_POOL):
        return True
    return module is not None and isinstance(module, RESHAPING_MODULES)


def param_role(kind: str, module: nn.Module, name: str) -> str:
    """Role of parameter ``name`` of ``module`` (``ROLE_*``)."""
    if kind == KIND_EMBEDDING:
        return ROLE_EMBEDDING if name == "weight" else ROLE_OTHER
    if kind in (KIND_LINEAR, KIND_CONV):
        return {"weight": ROLE_WEIGHT, "bias": ROLE_BIAS}.get(name, ROLE_OTHER)
    if kind == KIND_RNN:
        if name.startswith("weight_hh"):
            return ROLE_RECURRENT
        if name.startswith(("weight_ih", "weight_hr")):
            return ROLE_WEIGHT
        return ROLE_BIAS if name.startswith("bias") else ROLE_OTHER
    if kind == KIND_ATTENTION:
        if name.endswith("proj_weight"):
            return ROLE_WEIGHT
        return ROLE_BIAS if name == "in_proj_bias" else ROLE_OTHER
    if kind in NORM_KINDS:
        return {"weight": ROLE_NORM_SCALE, "bias": ROLE_NORM_SHIFT}.get(name, ROLE_OTHER)
    return ROLE_OTHER


def fans(kind: str, module: nn.Module, role: str, w: torch.Tensor) -> tuple[int | None, int | None, int | None, int]:
    """``(fan_in, fan_out, units, unit_dim)`` of a weight, as He/Xavier define the fans.

    Dense/conv/recurrent weights follow ``torch.nn.init``: ``fan_in = size(1) * receptive
    field`` (conv: ``in_channels / groups * prod(kernel)``), ``fan_out = size(0) * receptive
    field``. Units are output units: rows of a dense weight, filters of a conv (the output
    channels of a transposed conv, axis 1). Embedding tables have no fan (their input is a
    one-hot choice); their units are the embedding dimensions (columns).
    """
    if role not in (ROLE_WEIGHT, ROLE_RECURRENT, ROLE_EMBEDDING) or w.dim() < 2:
        return None, None, None, 0
    if role == ROLE_EMBEDDING:
        return None, None, int(w.shape[1]), 1
    if _is_hf_conv1d(module):  # transformers Conv1D stores (in, out)
        return int(w.shape[0]), int(w.shape[1]), int(w.shape[1]), 1
    rf = 1
    for d in w.shape[2:]:
        rf *= int(d)
    fan_in, fan_out = int(w.shape[1]) * rf, int(w.shape[0]) * rf
    if isinstance(module, _conv._ConvTransposeNd):
        return fan_in, fan_out, int(module.out_channels), 1
    return fan_in, fan_out, int(w.shape[0]), 0


def _plain(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return tuple(_plain(v) for v in value)
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)


def layer_attrs(kind: str, module: nn.Module) -> dict[str, Any]:
    """Kind-specific attributes of a module (``LayerRecord.attrs``)."""
    attrs: dict[str, Any] = {}
    get = module.__dict__.get
    if kind in (KIND_LINEAR, KIND_CONV, KIND_EMBEDDING, KIND_RNN, KIND_ATTENTION):
        bias_names = [n for n in module._parameters if "bias" in n]
        attrs["use_bias"] = any(module._parameters[n] is not None for n in bias_names)
    keys: tuple[str, ...] = ()
    if kind == KIND_LINEAR:
        keys = ("in_features", "in1_features", "in2_features", "out_features", "nx", "nf")
    elif kind == KIND_CONV:
        keys = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                "groups", "transposed", "padding_mode")
    elif kind == KIND_EMBEDDING:
        keys = ("num_embeddings", "embedding_dim", "padding_idx", "max_norm", "mode")
    elif kind == KIND_RNN:
        keys = ("mode", "input_size", "hidden_size", "num_layers", "bidirectional", "batch_first",
                "nonlinearity", "proj_size")
        attrs["dropout"] = get("dropout")
    elif kind == KIND_ATTENTION:
        keys = ("embed_dim", "num_heads", "batch_first", "kdim", "vdim", "dropout")
    elif kind in NORM_KINDS:
        keys = ("num_features", "normalized_shape", "num_groups", "num_channels", "eps", "momentum",
                "affine", "elementwise_affine", "track_running_stats")
        attrs["axis"] = 1 if kind in (KIND_BATCHNORM, KIND_GROUPNORM) else -1
    elif kind == KIND_DROPOUT:
        keys = ("p", "inplace")
    elif kind == KIND_ACTIVATION:
        keys = ("negative_slope", "dim", "inplace", "alpha", "approximate", "beta", "threshold",
                "min_val", "max_val", "num_parameters")
    elif kind == KIND_POOL:
        keys = ("kernel_size", "stride", "padding", "output_size", "dilation", "ceil_mode")
    for k in keys:
        if k in module.__dict__:
            attrs[k] = _plain(module.__dict__[k])
    if kind == KIND_RNN and isinstance(module, _rnn.RNNBase):
        attrs["nonlinearity"] = get("nonlinearity", "tanh")
    return {k: v for k, v in attrs.items() if v is not None or k == "padding_idx"}


def rnn_activation(module: nn.Module) -> str:
    """The activation an RNN applies internally (``tanh``, or ``relu`` for ``RNN(nonlinearity='relu')``)."""
    nonlin = module.__dict__.get("nonlinearity", "tanh")
    return "relu" if nonlin == "relu" else "tanh"


# -- functions seen by the trace ---------------------------------------------------------

_ACT_FUNCTION_NAMES = {
    "relu": "relu", "relu_": "relu", "relu6": "relu6", "leaky_relu": "leaky_relu",
    "leaky_relu_": "leaky_relu", "rrelu": "leaky_relu", "rrelu_": "leaky_relu", "elu": "elu",
    "elu_": "elu", "selu": "selu", "selu_": "selu", "celu": "celu", "celu_": "celu",
    "gelu": "gelu", "silu": "silu", "mish": "mish", "hardswish": "hardswish",
    "softplus": "softplus", "prelu": "prelu", "sigmoid": "sigmoid", "sigmoid_": "sigmoid",
    "expit": "sigmoid", "hardsigmoid": "hard_sigmoid", "tanh": "tanh", "tanh_": "tanh",
    "hardtanh": "hard_tanh", "hardtanh_": "hard_tanh", "softsign": "softsign",
    "softmax": "softmax", "log_softmax": "log_softmax", "softmin": "softmin",
    "logsigmoid": "log_sigmoid", "glu": "glu",
}


def _collect(names: dict[str, Any], namespaces: tuple[Any, ...]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for ns in namespaces:
        for fname, value in names.items():
            fn = getattr(ns, fname, None)
            if fn is not None and callable(fn):
                try:
                    out[fn] = value
                except TypeError:  # unhashable
                    pass
    return out


_NAMESPACES = (torch, F, torch.Tensor, torch._C.TensorBase, torch._C._nn, torch.special)

#: Function object -> canonical activation name.
ACTIVATION_FUNCTIONS: dict[Any, str] = _collect(_ACT_FUNCTION_NAMES, _NAMESPACES)

_ADD_NAMES = ("add", "add_", "__add__", "__radd__", "__iadd__")
_BINARY_NAMES = _ADD_NAMES + (
    "sub", "sub_", "__sub__", "__rsub__", "__isub__", "mul", "mul_", "__mul__", "__rmul__",
    "__imul__", "div", "div_", "true_divide", "__truediv__", "__rtruediv__", "__itruediv__",
    "where", "masked_fill", "masked_fill_", "addcmul", "lerp",
)
#: Additions (a residual connection is an addition of same-shaped tensors from different depths).
ADD_FUNCTIONS = frozenset(_collect({n: True for n in _ADD_NAMES}, (torch, torch.Tensor, torch._C.TensorBase)))
#: Elementwise binary functions: a broadcast operand (mask, gate, scale) is not data flow.
BINARY_FUNCTIONS = frozenset(_collect({n: True for n in _BINARY_NAMES}, (torch, torch.Tensor, torch._C.TensorBase)))
#: Casts: an integer model input cast to float becomes a float feature.
CAST_FUNCTIONS = frozenset(_collect({n: True for n in ("float", "double", "half", "bfloat16", "to", "type")},
                                    (torch.Tensor, torch._C.TensorBase)))
_WEIGHT_OP_NAMES = ("matmul", "mm", "bmm", "linear", "bilinear", "conv1d", "conv2d", "conv3d",
                    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "einsum", "addmm",
                    "baddbmm", "__matmul__", "__rmatmul__", "embedding", "tensordot", "inner")
#: Functions that apply a weight matrix: with a module's own parameter they act as a layer.
WEIGHT_FUNCTIONS = frozenset(_collect({n: True for n in _WEIGHT_OP_NAMES},
                                      (torch, F, torch.Tensor, torch._C.TensorBase, torch._C._nn)))
#: Keyword arguments that carry masks, never data.
MASK_KWARGS = frozenset({"attn_mask", "attention_mask", "key_padding_mask", "mask", "src_mask",
                         "src_key_padding_mask", "tgt_mask", "memory_mask", "encoder_attention_mask"})
#: In-place item assignment (``x[idx] = y``): ``x`` takes ``y``'s provenance too.
SETITEM_FUNCTIONS = frozenset({torch.Tensor.__setitem__, torch._C.TensorBase.__setitem__})
