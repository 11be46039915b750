"""Built-in rules, one module per category (the hundreds digit of the code).

    data.py         ND1xx  inputs and targets
    weights.py      ND2xx  parameters and initialization
    gradients.py    ND3xx  gradients of one probe backward pass
    activations.py  ND4xx  forward activations
    structure.py    ND5xx  architecture and loss pairing
    output.py       ND5xx  what the loss asks of the output (the adapters' loss probe)
    training/       ND6xx  training dynamics (monitor history)

Importing this package registers every rule; :mod:`netdoctor.rules.spec` holds the ``@rule``
decorator, the specs and the registry. Messages are written with :mod:`netdoctor.rules.format`
and snippets with :mod:`netdoctor.rules.snippets`; ``_targets.py`` (ND503's checks against the
targets) and ``_zero_grad.py`` (ND304's causes) serve one rule each.
"""

from __future__ import annotations

from netdoctor.rules import activations, data, gradients, output, structure, training, weights  # noqa: F401
from netdoctor.rules.spec import RuleContext, RuleSpec, registry, resolve, rule

__all__ = ["RuleContext", "RuleSpec", "registry", "resolve", "rule"]
