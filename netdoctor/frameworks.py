"""Framework detection without importing any framework, and the contracts a framework fulfils.

:func:`detect_framework` names the framework of a model; :func:`get_adapter` and
:func:`get_fixer` import its adapter and fixer. :class:`Adapter` and :class:`Fixer` are the
contracts between the core and a framework (typing Protocols, checked by
``tests/core/test_contracts.py``). Importing this module imports no framework.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload, runtime_checkable

from netdoctor.errors import UnsupportedModelError

if TYPE_CHECKING:
    from netdoctor.snapshot import ModelSnapshot, Need, ProbeSettings
    from netdoctor.verify.protocol import FixStep, ProbeResult


def detect_framework(model: Any) -> str:
    """Return ``"torch"`` or ``"keras"`` from the model's class hierarchy.

    Only ``type(model).__mro__`` is inspected, so neither torch nor tensorflow is imported.

    Raises:
        UnsupportedModelError: The object is neither a ``torch.nn.Module`` nor a Keras model.
    """
    for klass in type(model).__mro__:
        mod = getattr(klass, "__module__", "") or ""
        qual = f"{mod}.{klass.__name__}"
        if qual == "torch.nn.modules.module.Module":
            return "torch"
        if mod.startswith(("keras.", "keras")) and klass.__name__ in ("Model", "Layer", "Operation"):
            return "keras"
        if mod.startswith(("tf_keras", "tensorflow.python.keras")):
            raise UnsupportedModelError(
                f"{type(model).__name__} is a tf.keras (Keras 2) model; netdoctor supports Keras 3 "
                "(import keras, keras>=3) and PyTorch"
            )
    raise UnsupportedModelError(
        f"cannot check an object of type {type(model).__module__}.{type(model).__name__}: "
        "expected a torch.nn.Module or a Keras 3 model"
    )


@overload
def get_adapter(framework: Literal["keras"]) -> SavedModelAdapter: ...


@overload
def get_adapter(framework: str) -> Adapter: ...


def get_adapter(framework: str) -> Adapter:
    """Import and return the adapter module for ``framework`` (the Keras one also loads saved models)."""
    if framework == "torch":
        from netdoctor.adapters import torch as adapter
    elif framework == "keras":
        from netdoctor.adapters import keras as adapter
    else:  # pragma: no cover - detect_framework only returns the two
        raise UnsupportedModelError(f"no adapter for framework {framework!r}")
    return adapter


def get_fixer(framework: str) -> type[Fixer]:
    """Import and return the :class:`Fixer` class of ``framework`` (used by :mod:`netdoctor.verify`)."""
    if framework == "torch":
        from netdoctor.adapters.torch.fix import Fixer as fixer
    elif framework == "keras":
        from netdoctor.adapters.keras.fix import Fixer as fixer
    else:  # pragma: no cover - detect_framework only returns the two
        raise UnsupportedModelError(f"no fixer for framework {framework!r}")
    return fixer


@runtime_checkable
class Adapter(Protocol):
    """What a framework adapter provides (:func:`get_adapter`; the modules
    ``netdoctor.adapters.torch`` and ``netdoctor.adapters.keras`` satisfy it).

    The engine and :mod:`netdoctor.verify` call :meth:`collect`; loading a model file calls
    :meth:`load_weights` for ``--weights``.
    """

    def collect(self, model: Any, *, inputs: Any, targets: Any, loss_fn: Any, needs: frozenset[Need],
                settings: ProbeSettings, input_shape: Any) -> ModelSnapshot:
        """Measure ``model`` on one probe batch; only the ``needs`` are measured.

        ``inputs=None`` synthesizes inputs from ``input_shape``; ``ModelSnapshot.missing``
        says why a need was not measured. The model is left bit-for-bit as it was.
        """
        ...

    def load_weights(self, model: Any, path: str, *, unsafe: bool = False) -> None:
        """Load the checkpoint at ``path`` into ``model``; ``unsafe`` allows code in the file (pickles)."""
        ...

    def user_code_seeded(self, seed: int) -> AbstractContextManager[None]:
        """Seed the framework's global RNGs for the user's model and data code; restore them afterwards."""
        ...

    def layer_origins(self, path: str) -> AbstractContextManager[Any]:
        """While the body runs the model file's code, note the line of ``path`` that creates each
        layer; the object it yields maps a model's layers to lines (``.lines(model)``)."""
        ...


@runtime_checkable
class SavedModelAdapter(Adapter, Protocol):
    """An adapter that also loads whole saved models (Keras: ``.keras``, ``.h5``)."""

    def load_saved_model(self, path: str, *, unsafe: bool = False) -> Any:
        """Load the model saved at ``path``; ``unsafe`` allows code in the file (Lambda layers)."""
        ...


@runtime_checkable
class FixedCopy(Protocol):
    """A fixer's fixed copy (:meth:`Fixer.apply`): what the adapter measures and the probe trains."""

    model: Any
    inputs: Any
    targets: Any
    loss_fn: Any
    rename: dict[str, str]  # original layer name -> its name in the copy (a wrapped layer moves)


@runtime_checkable
class Fixer(Protocol):
    """What a framework fixer provides (:func:`get_fixer`), used by :mod:`netdoctor.verify`.

    Built once per verified model with the check's probe data, loss and settings; every edit
    happens on a copy, and :meth:`guard` wraps the whole verification to leave no trace.
    """

    def __init__(self, model: Any, *, inputs: Any, targets: Any, loss_fn: Any, settings: ProbeSettings,
                 input_shape: Any) -> None: ...

    def apply(self, steps: Sequence[FixStep], snap: ModelSnapshot) -> FixedCopy:
        """Apply ``steps`` to a copy of the model; raises ``NotApplicable`` when an edit does not fit."""
        ...

    def probe(self, applied: FixedCopy | None, steps: int, mode: str = "full", minibatch: int = 16,
              stop_below: float | None = None) -> ProbeResult:
        """Train ``applied`` (``None``: a copy of the original) for ``steps`` seeded steps (fewer when
        the training loss falls below ``stop_below``)."""
        ...

    def score(self, base: ProbeResult, fixed: ProbeResult, applied: FixedCopy) -> tuple[float, float]:
        """Final probe losses (original, fixed) in the same terms."""
        ...

    def diff(self, steps: Sequence[FixStep], snap: ModelSnapshot) -> str:
        """The fix as a diff-like code snippet in the user's own layer names."""
        ...

    def guard(self) -> AbstractContextManager[None]:
        """A context that restores every global state the fixes and probes touch (RNGs...)."""
        ...
