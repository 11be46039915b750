"""Both adapters and both fixers fulfil the contracts in ``netdoctor.frameworks``.

``isinstance`` against the runtime-checkable Protocols checks that every method is there; the
signature comparison checks each method's parameters (names, kinds, defaults), so renaming a
method or one of its parameters on either side fails here.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from typing import Any

import pytest

from netdoctor.frameworks import Adapter, Fixer, SavedModelAdapter, get_adapter, get_fixer
from netdoctor.snapshot import ProbeSettings


def _methods(protocol: type) -> list[str]:
    """The methods a Protocol declares (``__init__`` included where it declares one)."""
    own = [n for n, v in vars(protocol).items()
           if inspect.isfunction(v) and v.__qualname__ == f"{protocol.__name__}.{n}"]  # not typing's own
    return sorted(n for n in own if not n.startswith("_") or n == "__init__")


def _params(fn: Any, drop_self: bool = False) -> list[tuple[str, Any, Any]]:
    params = list(inspect.signature(fn).parameters.values())
    if drop_self:
        params = params[1:]
    return [(p.name, p.kind, p.default) for p in params]


def _build(framework: str) -> Any:
    if framework == "torch":
        torch = pytest.importorskip("torch")
        return torch.nn.Sequential(torch.nn.Linear(4, 3))
    keras = pytest.importorskip("keras")
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])


def test_protocols_declare_what_the_core_calls() -> None:
    assert _methods(Adapter) == ["collect", "layer_origins", "load_weights", "user_code_seeded"]
    assert _methods(SavedModelAdapter) == ["load_saved_model"]
    assert _methods(Fixer) == ["__init__", "apply", "diff", "guard", "probe", "score"]


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_adapter_satisfies_the_protocol(framework: str) -> None:
    pytest.importorskip(framework)
    adapter = get_adapter(framework)
    assert isinstance(adapter, Adapter)
    for name in _methods(Adapter):
        want = _params(getattr(Adapter, name), drop_self=True)  # the adapter is a module: no self
        assert _params(getattr(adapter, name)) == want, f"{framework} adapter: {name}"


def test_the_keras_adapter_loads_saved_models() -> None:
    pytest.importorskip("keras")
    adapter = get_adapter("keras")
    assert isinstance(adapter, SavedModelAdapter)
    for name in _methods(SavedModelAdapter):
        want = _params(getattr(SavedModelAdapter, name), drop_self=True)
        assert _params(getattr(adapter, name)) == want, name


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_fixer_satisfies_the_protocol(framework: str) -> None:
    model = _build(framework)
    cls = get_fixer(framework)
    fixer = cls(model, inputs=None, targets=None, loss_fn=None, settings=ProbeSettings(), input_shape=(4,))
    assert isinstance(fixer, Fixer)
    for name in _methods(Fixer):
        assert _params(getattr(cls, name)) == _params(getattr(Fixer, name)), f"{framework} Fixer.{name}"
    with fixer.guard():
        pass


def test_the_checks_catch_a_renamed_method_or_parameter() -> None:
    class Renamed:
        def apply(self, steps: Any, snap: Any) -> Any: ...
        def probe(self, applied: Any, steps: int, mode: str = "full", minibatch: int = 16) -> Any: ...
        def rescore(self, base: Any, fixed: Any, applied: Any) -> Any: ...
        def diff(self, steps: Any, snapshot: Any) -> str: ...
        def guard(self) -> Any: ...

    assert not isinstance(Renamed(), Fixer)
    assert _params(Renamed.diff) != _params(Fixer.diff)


def test_frameworks_imports_no_framework() -> None:
    code = ("import sys, netdoctor.frameworks; "
            "print(sorted(m for m in ('torch', 'keras', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
