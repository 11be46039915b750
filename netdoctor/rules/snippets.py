"""Code snippets in the user's framework: layer references, constructors, the shared fix snippets.

``torch_ref``/``keras_ref`` reach a layer by name (the torch fixer's diff uses ``torch_ref``
too) and ``torch_assign`` replaces one; ``torch_ctor``/``keras_ctor`` write a layer's constructor with extra arguments; the rest
are snippets several rules recommend (a BatchNorm before the activation, input scaling, a new
learning rate).
"""

from __future__ import annotations

import keyword
import re
from typing import TYPE_CHECKING

import numpy as np

from netdoctor.analysis.graph import base_name
from netdoctor.snapshot import KIND_ACTIVATION, KIND_CONV, KIND_LINEAR, LayerRecord, TensorStats

if TYPE_CHECKING:
    from netdoctor.rules.spec import RuleContext
    from netdoctor.snapshot import ModelSnapshot

def module_path(name: str) -> list[str]:
    """The submodule path of a layer record's name: ``"net.2#3/relu"`` -> ``["net", "2"]``.

    A record name can carry an activation suffix (``/relu``, a functional call after the layer)
    and a call count (``#3``, the third call of a reused module); neither is part of the module's
    name in the model.
    """
    return [p for p in re.sub(r"#\d+$", "", base_name(name)).split(".") if p]


def quote(text: str) -> str:
    """A Python string literal for ``text``, double-quoted when that needs no escapes."""
    if '"' in text or "\\" in text or not text.isprintable():
        return repr(text)
    return f'"{text}"'


def _attr_ok(part: str) -> bool:
    return part.isidentifier() and not keyword.iskeyword(part)


def torch_ref(name: str, root: str = "model") -> str:
    """Python expression reaching a submodule: ``"encoder.layers.0.linear1"`` ->
    ``model.encoder.layers[0].linear1``; a part that is no attribute name (a ``ModuleDict``
    key such as ``"block-1"``) is reached with ``get_submodule``."""
    out = root
    for part in module_path(name):
        if part.isdigit():
            out += f"[{part}]"
        elif _attr_ok(part):
            out += f".{part}"
        else:
            out = f"{out}.get_submodule({part!r})"
    return out


def torch_assign(name: str, value: str, root: str = "model") -> str:
    """A statement that replaces a submodule: ``model.net[2] = nn.LeakyReLU(0.01)``, or
    ``setattr(model.blocks, 'block-1', ...)`` when the last part is no attribute name
    (never an assignment to a call)."""
    path = module_path(name)
    if not path:
        return f"{root} = {value}"
    parent = torch_ref(".".join(path[:-1]), root) if len(path) > 1 else root
    last = path[-1]
    if last.isdigit():
        return f"{parent}[{last}] = {value}"
    if _attr_ok(last):
        return f"{parent}.{last} = {value}"
    return f"setattr({parent}, {last!r}, {value})"


def keras_ref(name: str, root: str = "model") -> str:
    return f"{root}.get_layer({quote(base_name(name))})"


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
    args.append(f"name={quote(base_name(rec.name))}")
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


def standardize_snippet(ctx: "RuleContext", rec: LayerRecord, st: TensorStats, pixels: bool = False) -> str | None:
    """Input scaling code: divide pixels by their maximum, or standardize with training statistics."""
    if pixels:
        div = "255.0" if st.max > 16 else f"{st.max:g}"
        return ctx.snippet(
            torch=f"x = x.float() / {div}  # same scaling at training and inference time",
            keras=("inputs = keras.Input(shape=x.shape[1:])\n"
                   f"h = layers.Rescaling(1.0 / {div})(inputs)  # in-model, so inference gets it too"),
        )
    dims = "(0, 2, 3)" if rec.kind == KIND_CONV and len(st.shape) == 4 else "0"
    return ctx.snippet(
        torch=(f"mean = x_train.mean(dim={dims}, keepdim=True)\n"
               f"std = x_train.std(dim={dims}, keepdim=True).clamp_min(1e-8)\n"
               "x = (x - mean) / std  # reuse the training mean/std at inference"),
        keras=("norm = layers.Normalization(axis=-1)\n"
               "norm.adapt(x_train)  # learns per-feature mean and variance\n"
               "inputs = keras.Input(shape=x_train.shape[1:])\n"
               "h = norm(inputs)  # then the first Dense/Conv layer"),
    )


def lr_snippet(ctx: RuleContext, lr: float | None, factor: float) -> str | None:
    """Snippet that multiplies the learning rate by ``factor`` (concrete when the lr is known)."""
    if lr is not None and lr > 0:
        new = float(f"{lr * factor:.2g}")
        return ctx.snippet(
            torch=f"optimizer = torch.optim.Adam(model.parameters(), lr={new:g})  # was {lr:g}",
            keras=f"model.compile(optimizer=keras.optimizers.Adam(learning_rate={new:g}), loss=model.loss)  # was {lr:g}",
        )
    f = float(f"{factor:.2g}")
    return ctx.snippet(
        torch=f"for group in optimizer.param_groups:\n    group['lr'] *= {f:g}",
        keras=f"model.optimizer.learning_rate.assign(model.optimizer.learning_rate * {f:g})",
    )


# -- activations in torch: a module (nn.ReLU()) or a call in forward() (torch.relu, F.softmax) --
def torch_is_call(rec: LayerRecord) -> bool:
    """Whether a torch activation record is a function called in ``forward()`` (``torch.softmax``,
    ``F.relu``), not a module: the tracer names those by the function (``"relu"``, ``"fc/softmax"``)
    where a module keeps its class name (``"ReLU"``)."""
    return rec.kind == KIND_ACTIVATION and rec.type_name[:1].islower()


def torch_forward_owner(rec: LayerRecord) -> str:
    """Where a functional activation is called: ``"model.block.forward()"`` or ``"the model's forward()"``."""
    owner = rec.name.rpartition("/")[0] if "/" in rec.name else ""
    return f"{torch_ref(owner)}.forward()" if module_path(owner) else "the model's forward()"


def torch_swap_activation(rec: LayerRecord, module: str, call: str) -> str:
    """Code that puts another activation in place of ``rec``: ``model.act2 = nn.LeakyReLU(0.01)``
    for a module, ``x = F.leaky_relu(x, 0.01)  # in ...forward(), in place of the relu call`` for
    a call in ``forward()``."""
    if torch_is_call(rec):
        return f"x = {call}  # in {torch_forward_owner(rec)}, in place of the {rec.type_name}(...) call"
    shared = " (shared: every call of it changes)" if re.search(r"#\d+$", base_name(rec.name)) else ""
    return f"{torch_assign(rec.name, module)}  # was nn.{rec.type_name}{shared}"


def torch_drop_activation(rec: LayerRecord) -> str:
    """Code that removes the activation ``rec``: ``model.net[3] = nn.Identity()`` for a module, a
    comment naming the call to delete in ``forward()`` for a function."""
    if torch_is_call(rec):
        return f"# in {torch_forward_owner(rec)}: delete the {rec.type_name}(...) call (return its input)"
    return f"{torch_assign(rec.name, 'nn.Identity()')}  # was nn.{rec.type_name}"


def torch_drop_final(snap: "ModelSnapshot", activation: str) -> str:
    """Code that removes the model's final ``activation`` as the model has it: the module
    replaced by ``nn.Identity()``, or the call in ``forward()`` named for deletion."""
    out = snap.output
    final = snap.layer(out.final_layer) if out is not None and out.final_layer else None
    if final is not None and final.kind == KIND_ACTIVATION and final.activation == activation:
        return torch_drop_activation(final)
    return f"# remove the final {activation} from the model's forward(): return the logits"
