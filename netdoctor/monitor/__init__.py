"""The training-loop monitor: ``netdoctor.watch`` (PyTorch), ``netdoctor.KerasCallback`` (Keras).

Adapters (``netdoctor.adapters.torch.monitor``, ``netdoctor.adapters.keras.callback``)
measure inside the framework and hand the core (:class:`MonitorCore`) two things: the per-step losses of the
steps since the last sampled step, and, on sampled steps, a :class:`~netdoctor.history.Sample`.
The core keeps the bounded history, writes the JSONL log, shows the live status line,
runs the history rules (ND6xx) through the same engine as ``netdoctor.check`` and
announces each finding once, when it first fires.

Output, decided once for both frameworks:

* **Findings as they fire** go to the standard ``logging`` logger ``"netdoctor.monitor"``
  (ERROR/WARNING/INFO by severity). With no logging configured, Python prints WARNING and
  above to stderr; an application that configures logging routes or silences them like any
  other library's messages. Only the main process (rank 0) logs.
* **The live status** is one line redrawn in place with ``rich.live.Live`` on stderr,
  only when stderr is a terminal (never in CI logs, files or pytest captures).
* **The full report** is :meth:`MonitorCore.report` (a :class:`~netdoctor.findings.Report`,
  rendered by any reporter); ``print_report=True`` prints it with the text reporter at close.

Log format (``log_to="run.jsonl"``): a header line ``{"type": "header", "schema_version": 1,
...}``, then one line per sampled step ``{"type": "sample", "loss_start": first step,
"losses": [...per step...], "sample": {...}}`` and at close a ``{"type": "end"}`` line with
the losses after the last sample. :func:`report_from_log` replays it into the same history
and runs the same rules.

The parts: :mod:`~netdoctor.monitor.core` (:class:`MonitorCore`, :class:`TrainingError`),
:mod:`~netdoctor.monitor.evaluate` (the history rules on a history),
:mod:`~netdoctor.monitor.live` (the status line), :mod:`~netdoctor.monitor.log` (replaying a
log), :mod:`~netdoctor.monitor.watch` and :mod:`~netdoctor.monitor.plot`.
"""

from __future__ import annotations

from netdoctor.monitor.core import MonitorCore, TrainingError
from netdoctor.monitor.log import read_log, report_from_log
from netdoctor.monitor.watch import watch

__all__ = ["MonitorCore", "TrainingError", "read_log", "report_from_log", "watch"]
