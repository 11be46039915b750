"""ND6xx: training dynamics, read from the monitor's history (``netdoctor.watch``, ``KerasCallback``).

Every rule here needs :attr:`Need.HISTORY`: it runs on ``ModelSnapshot.history`` (a
:class:`netdoctor.history.History`) and never on a one-shot probe. A finding names the step
where the problem started (``Finding.step``) and fires only when the symptom persisted
(a window of steps or several samples), never on one unlucky batch.

    loss.py     ND601, ND602, ND603, ND606  the loss curve
    samples.py  ND604, ND605, ND608, ND609  sampled gradient norms and update ratios
    units.py    ND607, ND610                dead and saturated units that appear while training
    series.py   the series readings they share

Importing this package registers them.
"""

from __future__ import annotations

from netdoctor.rules.training import loss, samples, units  # noqa: F401
