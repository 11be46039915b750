"""The probe forward pass: module hooks plus a ``TorchFunctionMode`` that follows the data.

Module pre/post hooks give execution order, per-layer statistics and the layer stack (for
error messages and for naming functional activations). The function mode sees every torch
function called outside the built-in modules: it records functional activations
(``F.relu``, ``torch.tanh``, ``x.softmax(-1)``...) and propagates *provenance*, the set of
recorded layers (or model inputs) each tensor derives from, through every op. Provenance
fills ``inputs_from`` / ``consumes_model_input`` and spots residual additions: ``a + b`` of
same-shaped tensors whose weight-layer depths differ (``out + identity``, ``x + attn(x)``).

Provenance itself lives in ``flow``; the records, frames and their statistics in
``records``. Inside built-in modules (``nn.Linear``, ``nn.LSTM``...) the mode steps
aside at once, which keeps its overhead to a few microseconds per user-level op. A model
made only of exact ``nn.Sequential`` containers, ``nn.Identity`` and recorded built-in
layers, with no hooks, runs without the mode (:attr:`Probe.traced`): it would see no op
there, and the hooks alone give the data flow (about 0.04 ms less per check of a
three-layer MLP, paired).

Records: a module that owns parameters (or float buffers) gets one record however often
it runs (``calls`` counts); a parameter-free module (``nn.ReLU``, ``nn.Dropout``) and a
functional activation get one record per call (``relu``, ``relu#2``...), since each call
sits at a different place in the network; a call site repeated in a loop stops adding
records after ``MAX_RECORDS_PER_SITE``. Statistics are taken on the first call only.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Iterable, Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from netdoctor.adapters.torch import kinds as K
from netdoctor.adapters.torch.flow import INPUT_FLOAT, INPUT_INT, Flow, Found, iter_tensors, op_outputs
from netdoctor.adapters.torch.records import MAX_RECORDS_PER_SITE, Frame, Rec, RecordStats
from netdoctor.adapters.torch.state import global_forward_hooks
from netdoctor.snapshot import (
    KIND_ACTIVATION, KIND_BATCHNORM, KIND_CONV, KIND_GROUPNORM, KIND_RNN, NORM_KINDS, WEIGHT_KINDS, ProbeSettings,
)


class ProbeError(Exception):
    """A bug in the probe itself (never a user error: it is not translated into a DataError)."""


def _guarded(method):
    """Re-raise any exception of a probe callback as :class:`ProbeError`."""

    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except ProbeError:
            raise
        except Exception as exc:
            raise ProbeError(f"netdoctor probe failed in {method.__name__}: {type(exc).__name__}: {exc}") from exc

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


class _Mode(TorchFunctionMode):
    """Routes every torch function call of the probe forward to :meth:`Probe.on_op`."""

    def __init__(self, probe: Probe) -> None:
        super().__init__()
        self.probe = probe

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: D105
        if kwargs is None:
            kwargs = {}
        probe = self.probe
        if probe.opaque_depth or probe.busy:
            return func(*args, **kwargs)
        out = func(*args, **kwargs)
        probe.on_op(func, args, kwargs, out)
        return out


class Probe:
    """Hooks, provenance and records of one probe forward pass.

    Use as a context manager around the model call; after it, :attr:`records` holds the
    executed layers in execution order. :attr:`stack` keeps the frames of the module calls
    that had not finished when an exception escaped (for error messages).
    """

    def __init__(self, model: nn.Module, settings: ProbeSettings, *, activations: bool, sparsity: bool = True,
                 named: Sequence[tuple[str, nn.Module]] | None = None, hooked: bool = True) -> None:
        self.model = model
        #: ``list(model.named_modules())``: the hooks go on these, and :func:`all_records` walks them
        self.named = list(model.named_modules()) if named is None else list(named)
        self.settings = settings
        self.activations = activations
        self.names: dict[int, str] = {}
        self.records: dict[str, Rec] = {}
        self.order: list[Rec] = []
        self.stack: list[Frame] = []
        self.module_calls: dict[str, int] = {}
        self.flow = Flow()  # owners are filled below
        self.opaque_depth = 0
        self.busy = False
        self._handles: list[Any] = []
        self._mode: _Mode | None = None
        self._recorded: dict[int, tuple[bool, bool]] = {}
        self.stats = RecordStats(settings, activations, sparsity)
        owners: dict[int, str] = {}
        #: whether the function mode runs: not for a tree of exact ``nn.Sequential`` containers, ``nn.Identity``
        #: and recorded built-in layers, with no hook (``hooked``: a module carries hooks of its own, see
        #: :func:`~netdoctor.adapters.torch.state.model_hooks`; nor a global one), where it would see no op
        #: (the layers are opaque; a Sequential only calls them, in order) and the hooks alone give the data flow
        self.traced = hooked or global_forward_hooks()
        for name, module in self.named:
            if K.is_scripted(module):
                self.traced = True
                continue
            self.names[id(module)] = name
            builtin = K.is_builtin(module)
            if not builtin:
                for p in module._parameters.values():
                    if p is not None:
                        owners.setdefault(id(p), name)
            # a custom root is always traced inside, even when it owns its parameters directly
            opaque = K.is_opaque(module) if name or builtin else False
            recorded = K.should_record(module)
            self._recorded[id(module)] = (recorded, opaque)
            if not (self.traced or type(module) in (nn.Sequential, nn.Identity) or builtin and recorded and opaque):
                self.traced = True
        self.flow.owners = owners

    # -- lifecycle --------------------------------------------------------------------
    def __enter__(self) -> Probe:
        try:
            for name, module in self.named:
                if K.is_scripted(module):
                    continue  # TorchScript modules take no hooks
                self._handles.append(module.register_forward_pre_hook(partial(self._pre, name), with_kwargs=True))
                self._handles.append(module.register_forward_hook(partial(self._post, name)))
            if self.traced:
                self._mode = _Mode(self)
                self._mode.__enter__()
        except BaseException:
            self._remove_hooks()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self._mode is not None:
                self._mode.__exit__(*exc)
                self._mode = None
        finally:
            self._remove_hooks()
            self.opaque_depth = 0

    def _remove_hooks(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    # -- data flow --------------------------------------------------------------------
    def mark_input(self, t: torch.Tensor) -> None:
        """Register a model input tensor."""
        self.flow.mark_input(t)

    @property
    def residual(self) -> bool:
        """Whether a residual addition was seen."""
        return self.flow.residual

    @_guarded
    def on_op(self, func: Any, args: tuple, kwargs: dict[str, Any], out: Any) -> None:
        """One torch function call: record it if it is an activation, else propagate provenance."""
        outs = op_outputs(func, args, out)
        if not outs:
            return
        act = K.ACTIVATION_FUNCTIONS.get(func)
        if act is None:
            self.flow.propagate(func, args, kwargs, outs)
            return
        self.busy = True
        try:
            self._functional_activation(act, args, kwargs, outs[0])
        finally:
            self.busy = False

    # -- records ----------------------------------------------------------------------
    def _new_rec(self, name: str, module: nn.Module | None, type_name: str, kind: str,
                 activation: str | None) -> Rec:
        rec = Rec(name=name, module=module, type_name=type_name, kind=kind, activation=activation,
                  order=len(self.order))
        if module is not None:
            rec.attrs = K.layer_attrs(kind, module)
            if kind == KIND_RNN:
                rec.activation = K.rnn_activation(module)
        self.records[name] = rec
        self.order.append(rec)
        return rec

    def _module_rec(self, name: str, module: nn.Module) -> Rec:
        stateful = K.owns_state(module)
        if stateful:
            rec = self.records.get(name)
            if rec is None:
                rec = self._new_rec(name, module, type(module).__name__, K.module_kind(module),
                                    K.module_activation(module))
            return rec
        k = self.module_calls.get(name, 0) + 1
        self.module_calls[name] = k
        key = name if k == 1 else f"{name}#{min(k, MAX_RECORDS_PER_SITE)}"
        rec = self.records.get(key)
        if rec is None:
            rec = self._new_rec(key, module, type(module).__name__, K.module_kind(module),
                                K.module_activation(module))
        return rec

    def _absorb_inputs(self, rec: Rec, found: Found) -> int:
        depth = 0
        sources: set[str] = set()
        for _, (_, origins, d) in found:
            depth = max(depth, d)
            for o in origins:
                if o == INPUT_FLOAT:
                    rec.consumes_input = rec.consumes_float_input = True
                elif o == INPUT_INT:
                    rec.consumes_input = True
                elif o != rec.name:
                    sources.add(o)
        if sources:  # in execution order (set iteration order is not deterministic)
            records = self.records
            for o in sorted(sources, key=lambda n: records[n].order if n in records else -1):
                rec.inputs_from.setdefault(o, None)
        return depth

    def _channels_first(self, found: Found) -> bool:
        for _, (_, origins, _) in found:
            for o in origins:
                r = self.records.get(o)
                if r is not None and r.channels_first:
                    return True
        return False

    @_guarded
    def _pre(self, name: str, module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        self.busy = True
        try:
            with torch._C.DisableTorchFunction():
                recorded, opaque = self._recorded.get(id(module), (False, False))
                first = next(iter_tensors(args), None)
                if first is None:
                    first = next(iter_tensors(kwargs), None)
                frame = Frame(name=name, rec=None, opaque=recorded and opaque, module=module)
                if first is not None:
                    frame.first_shape, frame.first_dtype = tuple(first.shape), first.dtype
                if recorded:
                    rec = self._module_rec(name, module)
                    frame.rec = rec
                    rec.calls += 1
                    found = self.flow.gather(args, kwargs)
                    frame.depth = self._absorb_inputs(rec, found)
                    kind = rec.kind
                    if kind == KIND_CONV or (kind in (KIND_BATCHNORM, KIND_GROUPNORM) and first is not None and first.dim() >= 3):
                        rec.channels_first = True
                    elif kind in WEIGHT_KINDS or kind in NORM_KINDS:
                        rec.channels_first = False
                    else:
                        rec.channels_first = self._channels_first(found)
                    if rec.calls == 1 and self.activations and first is not None:
                        self.stats.input_stats(rec, first, frame.depth)
                self.stack.append(frame)
                if frame.opaque:
                    self.opaque_depth += 1
        finally:
            self.busy = False

    @_guarded
    def _post(self, name: str, module: nn.Module, args: tuple, output: Any) -> None:
        self.busy = True
        try:
            with torch._C.DisableTorchFunction():
                if not self.stack:
                    return
                frame = self.stack.pop()
                if frame.opaque:
                    self.opaque_depth = max(0, self.opaque_depth - 1)
                rec = frame.rec
                if rec is None:
                    return
                outs = list(iter_tensors(output))
                if rec.calls == 1 and rec.output is None and outs:
                    self.stats.output_stats(rec, outs[0])
                depth = frame.depth + (1 if rec.kind in WEIGHT_KINDS else 0)
                if frame.opaque or not any(self.flow.info(o) is not None for o in outs):
                    origins = frozenset((rec.name,))
                    for o in outs:
                        self.flow.set(o, origins, depth)
        finally:
            self.busy = False

    def _functional_activation(self, act: str, args: tuple, kwargs: dict[str, Any], out: torch.Tensor) -> None:
        with torch._C.DisableTorchFunction():
            frame = self.stack[-1] if self.stack else None
            prefix = frame.name if frame is not None else ""
            counters = frame.counters if frame is not None else {}
            k = counters.get(act, 0) + 1
            counters[act] = k
            name = f"{prefix}/{act}" if prefix else act
            if k > 1:
                name += f"#{min(k, MAX_RECORDS_PER_SITE)}"
            rec = self.records.get(name)
            if rec is None:
                rec = self._new_rec(name, None, act, KIND_ACTIVATION, act)
            rec.calls += 1
            first = args[0] if args and isinstance(args[0], torch.Tensor) else kwargs.get("input")
            found = self.flow.gather((first,), {}) if isinstance(first, torch.Tensor) else []
            depth = self._absorb_inputs(rec, found)
            rec.channels_first = self._channels_first(found)
            if rec.calls == 1:
                # an in-place call (F.relu(x, inplace=True), x.relu_()) has overwritten its input by now
                if self.activations and isinstance(first, torch.Tensor) and first is not out \
                        and first.data_ptr() != out.data_ptr():
                    self.stats.input_stats(rec, first, frame.depth)
                self.stats.output_stats(rec, out)
            self.flow.set(out, frozenset((name,)), depth)

    # -- results ----------------------------------------------------------------------
    def output_origins(self, outputs: Iterable[torch.Tensor]) -> list[str]:
        """Recorded layers the given output tensors derive from, in execution order."""
        names = self.flow.origins_of(outputs)
        return [r.name for r in self.order if r.name in names]

    def failing_frame(self) -> Frame | None:
        """The innermost module call that had not finished when an exception escaped."""
        return self.stack[-1] if self.stack else None
