"""Keras 3 adapter: :func:`collect` measures a model on one probe batch -> ``ModelSnapshot``;
:func:`load_weights` and :func:`load_saved_model` load files.

One concept per module, named as in the torch adapter where the concept is the same:
``collect`` (the probe pass and the snapshot), ``graph`` (the flattened functional graph),
``run`` (running it with per-layer measurements), ``grad`` (the backend's gradient tape),
``records``, ``kinds``, ``stats``, ``io`` (inputs, targets, files), ``loss``, ``state`` (leave
no trace), ``origins`` (the line of the model file that created each layer), ``callback`` (the training-loop monitor) and ``fix`` (the fixer of
:mod:`netdoctor.verify`).
"""

from __future__ import annotations

from netdoctor.adapters.keras.collect import collect
from netdoctor.adapters.keras.io import load_saved_model, load_weights
from netdoctor.adapters.keras.origins import layer_origins
from netdoctor.adapters.keras.state import user_code_seeded

__all__ = ["collect", "layer_origins", "load_saved_model", "load_weights", "user_code_seeded"]
