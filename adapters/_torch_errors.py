"""Turn an exception raised inside the probe forward pass into a one-line ``DataError``."""

from __future__ import annotations

from torch import nn
from torch.nn.modules import conv as _conv
from torch.nn.modules import rnn as _rnn

from netdoctor.adapters._common import first_line, format_shape
from netdoctor.adapters._torch_trace import Frame
from netdoctor.errors import DataError

_HINT = "check sample_batch() or --input-shape"

#: Exceptions that mean "the data does not fit the model"; others propagate unchanged.
DATA_EXCEPTIONS = (RuntimeError, ValueError, IndexError, TypeError, AssertionError)


def forward_error(exc: BaseException, frame: Frame | None, model: nn.Module) -> DataError:
    """A :class:`DataError` naming the layer that failed, what it expects and what it got."""
    text = first_line(exc)
    if frame is None:
        return DataError(f"{type(model).__name__} failed on the probe inputs ({type(exc).__name__}: {text}); {_HINT}")
    module = frame.rec.module if frame.rec is not None else None
    name = frame.name or "<model>"
    type_name = type(module).__name__ if module is not None else "forward"
    got = f"input of shape {format_shape(frame.first_shape)}" if frame.first_shape is not None else "its input"
    expects = _expectation(module, frame) if module is not None else None
    if expects:
        return DataError(f"layer `{name}` ({type_name}) {expects} but got {got}; {_HINT}")
    return DataError(f"layer `{name}` ({type_name}) failed on {got} ({type(exc).__name__}: {text}); {_HINT}")


def _expectation(m: nn.Module, frame: Frame) -> str | None:
    shape = frame.first_shape or ()
    dtype = frame.first_dtype
    if isinstance(m, nn.Linear):
        if dtype is not None and not dtype.is_floating_point:
            return f"expects floating-point input with {m.in_features} features (got dtype {str(dtype).replace('torch.', '')})"
        if shape and shape[-1] != m.in_features:
            return f"expects {m.in_features} input features"
    if isinstance(m, _conv._ConvNd):
        nd = len(m.kernel_size)
        if shape and (len(shape) not in (nd + 1, nd + 2) or shape[-nd - 1] != m.in_channels):
            return (f"expects {m.in_channels} input channels, i.e. input of shape (N, {m.in_channels}, "
                    f"{', '.join('...' for _ in range(nd))})")
    if isinstance(m, (nn.Embedding, nn.EmbeddingBag)):
        if dtype is not None and dtype.is_floating_point:
            return "expects integer token ids"
        return f"expects integer ids in [0, {m.num_embeddings})"
    if isinstance(m, _rnn.RNNBase):
        if shape and shape[-1] != m.input_size:
            return f"expects {m.input_size} input features per time step"
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        if len(shape) >= 2 and shape[1] != m.num_features:
            return f"expects {m.num_features} channels on axis 1"
    if isinstance(m, nn.LayerNorm):
        want = tuple(m.normalized_shape)
        if tuple(shape[-len(want):]) != want:
            return f"expects trailing dimensions {format_shape(want)}"
    if isinstance(m, nn.MultiheadAttention):
        if shape and shape[-1] != m.embed_dim:
            return f"expects {m.embed_dim} features (embed_dim)"
    return None
