"""Framework adapters (installed as ``netdoctor.adapters``).

Each adapter module exposes ``collect(model, *, inputs, targets, loss_fn, needs, settings,
input_shape) -> ModelSnapshot`` and reduces every statistic inside its framework.
Importing this package imports no framework; importing ``netdoctor.adapters.torch``
imports torch, ``netdoctor.adapters.keras`` imports keras.
"""
