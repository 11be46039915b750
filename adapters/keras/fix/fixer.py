"""Apply netdoctor's recommended fixes to a clone of a Keras 3 model, and run training probes.

Used by :mod:`netdoctor.verify`. The user's model is only read: Sequential models are rebuilt
from their layers' configs, Functional models cloned with ``keras.models.clone_model`` (a
``clone_function`` replaces layers, a ``call_function`` inserts new ones after a layer), and
the weights are copied over by layer name. The probe trains the clone with the model's
compiled optimizer (a fresh one from its config; Adam 1e-3 when not compiled) through the
adapter's gradient tape and loss resolution. :meth:`Fixer.guard` restores Python's and
numpy's RNGs, Keras' global seed generator and Keras' automatic-name counters afterwards.

:class:`Fixer` joins three parts: the edits (``_keras_fix_edits``: ``apply``, the clone and the
optimizer), the training probe (``_keras_fix_probe``: ``probe``, ``score``) and the diff snippet
(``_keras_fix_diff``: ``diff``); this module adds the state guard.
"""

from __future__ import annotations

import contextlib
import copy
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
from netdoctor.adapters.keras.fix.diff import DiffMixin
from netdoctor.adapters.keras.fix.edits import INITIALIZERS, Applied, EditMixin
from netdoctor.adapters.keras.fix.probe import ProbeMixin
from netdoctor.verify.protocol import ProbeResult

from netdoctor.snapshot import ProbeSettings

__all__ = ["INITIALIZERS", "Applied", "Fixer", "ProbeResult"]


class Fixer(EditMixin, ProbeMixin, DiffMixin):
    """Fixes and probes for one Keras model (see the module docstring)."""

    def __init__(self, model: Any, *, inputs: Any, targets: Any, loss_fn: Any, settings: ProbeSettings,
                 input_shape: Any) -> None:
        self.model, self.inputs, self.targets, self.loss_fn = model, inputs, targets, loss_fn
        self.settings, self.input_shape, self.seed = settings, input_shape, int(settings.seed)
        compiled = getattr(model, "_compile_loss", None) is not None
        self.compiled_loss = getattr(model, "loss", None) if compiled else None
        self.optimizer = getattr(model, "optimizer", None) if compiled else None

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Restore Python's and numpy's RNGs, Keras' global seed generator and name counters afterwards."""
        from keras.src.backend.common import global_state

        py, npy = random.getstate(), np.random.get_state()
        gen = global_state.get_global_attribute("global_seed_generator")
        gen_state = np.array(gen.state.numpy(), copy=True) if gen is not None else None
        uids = global_state.get_global_attribute("object_name_uids")
        saved_uids = copy.copy(uids) if uids is not None else None
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)
            global_state.set_global_attribute("global_seed_generator", gen)
            if gen is not None:
                gen.state.assign(gen_state)
            if uids is not None:
                uids.clear()
                uids.update(saved_uids)
            global_state.set_global_attribute("object_name_uids", uids)
