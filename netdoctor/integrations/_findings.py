"""What the integrations do with findings once they fire: trainer loggers and ``on_error``.

The monitor core already announces each finding once on the ``"netdoctor.monitor"`` logger
(rank zero only). :class:`FindingSink` adds what a trainer integration needs: the new findings
since the last call, written to the trainer's own loggers as ``netdoctor/<code>`` metrics, and
the ``on_error`` decision (stop or raise) taken in one place for Lightning and Hugging Face.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from netdoctor.findings import Finding, Severity

logger = logging.getLogger("netdoctor.monitor")


class FindingSink:
    """Turns the monitor's newly fired findings into logger metrics and ``on_error`` actions.

    Args:
        core: The :class:`~netdoctor.monitor.core.MonitorCore` (created with ``on_error="warn"``).
        on_error: ``"warn"``, ``"stop"`` or ``"raise"``.
        fail_on: Severity that triggers ``on_error``.
    """

    def __init__(self, core: Any, on_error: str, fail_on: str) -> None:
        self.core = core
        self.on_error = on_error
        self.fail_on = Severity.parse(fail_on)
        self._seen: set[tuple[str, str | None]] = set()
        self.stopped = False

    def new_findings(self) -> list[Finding]:
        new = [f for key, f in self.core.fired.items() if key not in self._seen]
        self._seen.update((f.code, f.layer) for f in new)
        return new

    def announce(self, findings: Iterable[Finding], trainer: Any = None, label: str = "") -> None:
        """Log findings that the core did not (the pre-flight check's) and send them to the loggers."""
        findings = list(findings)
        if not findings or not self.core.is_main:
            return
        for f in findings:
            where = f" in {f.layer}" if f.layer else ""
            level = logging.ERROR if f.severity >= Severity.ERROR else logging.WARNING \
                if f.severity >= Severity.WARNING else logging.INFO
            logger.log(level, "netdoctor %s %s %s%s: %s", label, f.code, f.name, where, f.message)
        _to_loggers(trainer, findings, 0)

    def react(self, trainer: Any, step: int, final: bool = False) -> bool:
        """Send new findings to the trainer's loggers; apply ``on_error``. True when training must stop.

        Raises:
            netdoctor.monitor.TrainingError: ``on_error="raise"`` and a finding at ``fail_on`` fired.
        """
        new = self.new_findings()
        if not new:
            return False
        if self.core.is_main:
            _to_loggers(trainer, new, step)
        bad = [f for f in new if f.severity >= self.fail_on]
        if not bad or final:
            return False
        if self.on_error == "raise":
            from netdoctor.monitor.core import TrainingError

            raise TrainingError(bad)
        if self.on_error == "stop":
            self.stopped = True
            return True
        return False


def _to_loggers(trainer: Any, findings: list[Finding], step: int) -> None:
    """``netdoctor/<code>`` = 1 on each of the trainer's loggers (Lightning ``trainer.loggers``)."""
    for lg in getattr(trainer, "loggers", None) or []:
        try:
            lg.log_metrics({f"netdoctor/{f.code}": 1.0 for f in findings}, step=step)
        except Exception:  # noqa: BLE001 - a logger's failure must not end training
            logger.debug("netdoctor: logger %r refused the findings", lg, exc_info=True)
