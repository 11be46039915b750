"""Turn an exception raised inside the probe forward pass into a one-line ``DataError``."""

from __future__ import annotations

from torch import nn
from torch.nn.modules import conv as _conv
from torch.nn.modules import rnn as _rnn

from netdoctor.adapters._common import first_line, format_shape
from netdoctor.adapters.torch.records import Frame
from netdoctor.errors import DataError

_HINT = "check sample_batch() or --input-shape"
_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}

#: Exceptions that mean "the data does not fit the model"; others propagate unchanged.
DATA_EXCEPTIONS = (RuntimeError, ValueError, IndexError, TypeError, AssertionError)


def forward_error(exc: BaseException, frame: Frame | None, model: nn.Module) -> DataError:
    """A :class:`DataError` naming the layer that failed, what it expects and what it got.

    ``frame`` is the innermost unfinished module call (see ``Probe.failing_frame``).
    """
    text = f"{type(exc).__name__}: {first_line(exc)}"
    if frame is None:
        return DataError(f"the model ({type(model).__name__}) failed on the probe inputs ({text}); {_HINT}")
    module = frame.module
    type_name = type(module).__name__ if module is not None else "module"
    who = f"layer `{frame.name}` ({type_name})" if frame.name else f"the model ({type_name})"
    got = f"input of shape {format_shape(frame.first_shape)}" if frame.first_shape is not None else "its input"
    found = _expectation(module, frame) if module is not None else None
    if found is not None:
        expects, got_override = found
        return DataError(f"{who} expects {expects} but got {got_override or got}; {_HINT}")
    return DataError(f"{who} failed on {got} ({text}); {_HINT}")


def _dtype(frame: Frame) -> str:
    return str(frame.first_dtype).replace("torch.", "")


def _expectation(m: nn.Module, frame: Frame) -> tuple[str, str | None] | None:
    """``(what the layer expects, what it got or None)`` for layers whose contract is known."""
    shape = frame.first_shape or ()
    dtype = frame.first_dtype
    is_float = dtype is not None and dtype.is_floating_point
    if isinstance(m, nn.Linear):
        if dtype is not None and not is_float:
            return "floating-point input", f"{_dtype(frame)} input of shape {format_shape(shape)}"
        if shape and shape[-1] != m.in_features:
            return f"{m.in_features} input features", None
    if isinstance(m, _conv._ConvNd):
        nd = len(m.kernel_size)
        if dtype is not None and not is_float:
            return "floating-point input", f"{_dtype(frame)} input of shape {format_shape(shape)}"
        if shape and (len(shape) not in (nd + 1, nd + 2) or shape[-nd - 1] != m.in_channels):
            return (f"{m.in_channels} input channels, i.e. input of shape "
                    f"(N, {m.in_channels}, {_SPATIAL.get(nd, '...')})"), None
    if isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
        if is_float:
            return "integer token ids", f"{_dtype(frame)} input of shape {format_shape(shape)}"
        return f"integer ids in [0, {m.num_embeddings})", None
    if isinstance(m, _rnn.RNNBase) and shape and shape[-1] != m.input_size:
        return f"{m.input_size} input features per time step", None
    if isinstance(m, nn.modules.batchnorm._BatchNorm) and len(shape) >= 2 and shape[1] != m.num_features:
        return f"{m.num_features} channels on axis 1", None
    if isinstance(m, nn.LayerNorm):
        want = tuple(m.normalized_shape)
        if tuple(shape[-len(want):]) != want:
            return f"trailing dimensions {format_shape(want)}", None
    if isinstance(m, nn.MultiheadAttention) and shape and shape[-1] != m.embed_dim:
        return f"{m.embed_dim} features (embed_dim)", None
    return None
