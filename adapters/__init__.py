"""Framework adapters (installed as ``netdoctor.adapters``).

One subpackage per framework, with the same module names where the concept is the same:
``torch`` and ``keras`` each provide ``collect(model, *, inputs, targets, loss_fn, needs,
settings, input_shape) -> ModelSnapshot`` and ``load_weights`` (the
:class:`netdoctor.frameworks.Adapter` contract) and a ``fix`` package whose ``Fixer`` is the
:class:`netdoctor.frameworks.Fixer` of :mod:`netdoctor.verify`. Every statistic is reduced inside
the framework; ``_common`` holds the framework-free pieces both share. Importing this package
imports no framework; importing ``netdoctor.adapters.torch`` imports torch,
``netdoctor.adapters.keras`` imports keras.
"""
