"""PyTorch adapter: :func:`collect` measures a model on one probe batch -> ``ModelSnapshot``;
:func:`load_weights` loads a checkpoint into it.

One concept per module: ``collect`` (the probe pass and the snapshot), ``stats``
(reductions), ``kinds`` (what a module/function is), ``trace`` (hooks, functional
activations), ``records`` (layer records and their statistics), ``flow`` (provenance through
torch functions, residual detection), ``graph`` (final records: order, entry/activation
inference, parameters), ``io`` (inputs, targets, outputs, checkpoints), ``loss``, ``step`` (a
model's own training step as the probe), ``state`` (leave no trace, seeded user code), ``errors`` (one-line user errors), ``monitor`` (the training-loop monitor),
``origins`` (the line of the model file that created each module) and ``fix`` (the fixer of
:mod:`netdoctor.verify`).
"""

from __future__ import annotations

from netdoctor.adapters.torch.collect import collect
from netdoctor.adapters.torch.io import load_weights
from netdoctor.adapters.torch.origins import layer_origins
from netdoctor.adapters.torch.state import user_code_seeded

__all__ = ["collect", "layer_origins", "load_weights", "user_code_seeded"]
