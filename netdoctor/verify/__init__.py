"""Verified fixes: apply each finding's recommended fix to a copy of the model and measure again.

``netdoctor check --verify`` (``check(..., verify=True)``) fills every finding's
``verification``: ``"verified"``, ``"not verified"`` or ``"no automatic fix"``, with the reason,
the before/after numbers and the fix as code. Framework-free:

* :mod:`netdoctor.verify.run` runs it for each finding (:func:`verify_report`,
  :func:`verify_findings`);
* :mod:`netdoctor.verify.plan` finds the rule's declared fix (:func:`plan_for`) and says what it
  changes (:func:`describe`);
* :mod:`netdoctor.verify.verdict` measures before and after (:func:`metrics`, the rule's declared
  metric) and decides the verdict;
* :mod:`netdoctor.verify.protocol` is the contract with the framework fixers (:class:`FixStep`,
  :class:`NotApplicable`, :class:`ProbeResult`, :func:`join_blocks`).

Fixes (the framework's snippet is in ``diff``, in the user's layer names):

* ND201, ND202, ND203, ND304 (zero weights downstream), ND403: re-initialize with He/Glorot/LeCun
  matched to the activation (ND403 falls back to normalization layers);
* ND301: re-initialize the too-small layers, or insert BatchNorm before each saturating
  activation, as the finding recommends; ND502: insert BatchNorm/LayerNorm after each hidden layer;
* ND302: standardize the inputs (when ND101 fired) and re-initialize over-scaled layers, then clip
  at the recommended norm in the probe; ND604: clip, judged on a minibatch probe;
* ND101, ND402 (entry layer): standardize the inputs; ND102, ND303 (NaN inputs): drop those rows;
* ND204, ND303 (NaN weights): re-initialize the layer; ND401: zero the negative biases;
* ND501: move the Dropout after the BatchNorm (else remove it); ND504: remove the bias;
* ND503: remove the final Softmax/Sigmoid module, or switch the loss to its logits/probability form.
"""

from __future__ import annotations

from netdoctor.verify.plan import FixPlan, describe, plan_for
from netdoctor.verify.protocol import FixStep, NotApplicable, join_blocks, step
from netdoctor.verify.run import VerifyOptions, verify_findings, verify_report
from netdoctor.verify.verdict import MODEL_WIDE, NO_FIX, NOT_VERIFIED, VERIFIED, metrics, original_name, scope_of

__all__ = ["MODEL_WIDE", "NOT_VERIFIED", "NO_FIX", "VERIFIED", "FixPlan", "FixStep", "NotApplicable", "VerifyOptions",
           "describe", "join_blocks", "metrics", "original_name", "plan_for", "scope_of", "step", "verify_findings",
           "verify_report"]
