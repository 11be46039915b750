"""The training-loop monitor core (framework-free), shared by both frameworks' monitors.

Adapters (``netdoctor.adapters.torch.monitor``, ``netdoctor.adapters.keras.callback``)
measure inside the framework and hand :class:`MonitorCore` two things: the per-step losses of
the steps since the last sampled step, and, on sampled steps, a :class:`~netdoctor.history.Sample`.
The core keeps the bounded history, writes the JSONL log, shows the live status line
(:mod:`netdoctor.monitor.live`), runs the history rules (:mod:`netdoctor.monitor.evaluate`)
and announces each finding once, when it first fires, on the ``"netdoctor.monitor"`` logger.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import replace
from typing import Any, Iterable, Sequence

import numpy as np

from netdoctor.config import Config, make_config
from netdoctor.errors import NetdoctorError
from netdoctor.findings import Finding, Report, Severity
from netdoctor.history import LOG_SCHEMA_VERSION, History, HistoryRecorder, Sample, json_num
from netdoctor.monitor.evaluate import evaluate, history_specs
from netdoctor.monitor.live import start_live, status_line

logger = logging.getLogger("netdoctor.monitor")

ON_ERROR = ("warn", "stop", "raise")
_LOG_LEVEL = {Severity.ERROR: logging.ERROR, Severity.WARNING: logging.WARNING, Severity.INFO: logging.INFO}


class TrainingError(NetdoctorError):
    """Raised by the monitor with ``on_error="raise"`` when a finding at ``fail_on`` fires.

    Attributes:
        findings: The findings that fired.
    """

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = tuple(findings)
        f = self.findings[0]
        super().__init__(f"netdoctor stopped training: {f.code} {f.name} at step {f.step}: {f.message}")


class MonitorCore:
    """Bounded history + log + live status + rule evaluation, shared by the adapters.

    Args:
        framework: ``"torch"`` or ``"keras"``.
        every: Sampling period in steps.
        log_to: Path of the JSONL log, a TensorBoard ``SummaryWriter`` or a ``wandb`` run
            (:mod:`netdoctor.integrations.dashboards`; main process only), or ``None``.
        live: Show the live status line: ``True``, ``False`` or ``"auto"`` (on a terminal).
        print_report: Print the text report at :meth:`close`.
        on_error: ``"warn"`` (log it), ``"stop"`` (set :attr:`should_stop`) or ``"raise"``
            (raise :class:`TrainingError`) when a finding at or above ``fail_on`` fires.
        fail_on: Severity that triggers ``on_error``.
        select: Rule codes/prefixes/names to run (default: all history rules).
        ignore: Rule codes/prefixes/names not to run.
        config: A full :class:`~netdoctor.config.Config`.
        is_main: Whether this process prints and writes (rank 0).
        max_samples: Samples kept in memory.
        recent: Loss points kept at full resolution.
    """

    def __init__(self, framework: str, *, every: int = 50, log_to: str | os.PathLike | None = None,
                 live: bool | str = "auto", print_report: bool = False, on_error: str = "warn",
                 fail_on: str = "error", select: Iterable[str] | None = None, ignore: Iterable[str] | None = None,
                 config: Config | None = None, is_main: bool = True, max_samples: int = 256,
                 recent: int = 2048) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, not {every}")
        if on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}, not {on_error!r}")
        self.framework = framework
        self.every = int(every)
        self.on_error = on_error
        self.fail_on = Severity.parse(fail_on)
        self.config = make_config(select=select, ignore=ignore, base=config)
        self.specs = history_specs(self.config)
        self.is_main = is_main
        self.print_report = print_report
        self.recorder = HistoryRecorder(self.every, recent=recent, max_samples=max_samples)
        self.meta: dict[str, Any] = {"framework": framework}
        self.fired: dict[tuple[str, str | None], Finding] = {}
        self.should_stop = False
        self.closed = False
        self.overhead_s = 0.0
        self.check_s = 0.0  # of which live rule checks (throttled to ~0.25% of the time on their own)
        self._dash_target: Any = None
        self._dash: Any = None
        if log_to is not None and not isinstance(log_to, (str, os.PathLike)):
            self._dash_target, log_to = log_to, None  # a TensorBoard writer or a wandb run
        self._log_path = os.fspath(log_to) if log_to is not None else None
        self._log: Any = None
        self._live_mode = live
        self._live: Any = None
        self._next_eval = 0.0
        self._seen_nonfinite = False
        self._t_start = time.perf_counter()

    # -- lifecycle -----------------------------------------------------------------
    def start(self, meta: dict[str, Any]) -> None:
        """Record the model description (layers, kinds...) and open the log."""
        self.meta.update(meta)
        self.recorder.meta = self.meta
        if self.is_main and self._log_path:
            self._log = open(self._log_path, "w", encoding="utf-8")
            header = {"type": "header", "schema_version": LOG_SCHEMA_VERSION, "every": self.every,
                      **{k: v for k, v in self.meta.items() if k != "suppressions"}}
            self._write(header)
        if self.is_main and self._live_mode:
            self._live = start_live(self._live_mode == "auto")
        if self.is_main and self._dash_target is not None:
            from netdoctor.integrations.dashboards import Dashboard

            self._dash = Dashboard(self._dash_target, self.meta)

    def record(self, loss_start: int, losses: Sequence[float] | np.ndarray, sample: Sample | None = None,
               grads: Sequence[float] | np.ndarray | None = None) -> None:
        """Add the per-step losses (and total gradient norms, when measured) since the last call
        and, on a sampled step, the sample."""
        self.record_many([(loss_start, losses, sample, grads)])

    def record_many(self, items: Sequence[tuple[int, Any, Sample | None, Any]]) -> None:
        """:meth:`record` for several ``(loss_start, losses, sample, grads)`` in step order, with
        one live update and at most one rule check."""
        if not items:
            return
        arrays = [np.asarray(losses, dtype=np.float64).ravel() for _, losses, _, _ in items]
        # the usual case: the items follow one another, one call records the losses of all of them
        batched = len(items) > 1 and all(items[i + 1][0] == items[i][0] + arrays[i].size for i in range(len(items) - 1))
        if batched:
            self.recorder.add_losses(items[0][0], np.concatenate(arrays), np.concatenate(
                [np.full(v.size, np.nan) if g is None else np.asarray(g, dtype=np.float64).ravel()
                 for v, (_, _, _, g) in zip(arrays, items)]))
        self.recorder.add_samples([sample for _, _, sample, _ in items if sample is not None])
        for (loss_start, _, sample, grads), losses in zip(items, arrays):
            if not batched:
                self.recorder.add_losses(loss_start, losses, grads)
            if self._log is not None:
                self._write({"type": "sample" if sample is not None else "losses", "loss_start": int(loss_start),
                             "losses": [json_num(v) for v in losses.tolist()],
                             **({"grad_norms": [json_num(v) for v in np.asarray(grads, dtype=np.float64).tolist()]}
                                if grads is not None else {}),
                             "sample": sample.to_json() if sample is not None else None})
            if self._dash is not None:
                self._dash.record(loss_start, losses, None if grads is None else np.asarray(grads, dtype=np.float64),
                                  sample)
        if self._live is not None and losses.size:
            self._live.update(status_line(self.recorder.last_step, losses, items[-1][2], self.fired.values()))
        nonfinite = self.recorder.first_nonfinite_step is not None and not self._seen_nonfinite
        if nonfinite or time.perf_counter() >= self._next_eval:
            self._seen_nonfinite = self._seen_nonfinite or nonfinite
            self.check()

    def record_validation(self, step: int, value: float) -> None:
        """Record a validation loss measured after ``step`` (drawn on the HTML loss chart, kept in
        the log as a ``validation`` line)."""
        if self.closed:
            return
        self.recorder.add_validation(step, value)
        if self._log is not None:
            self._write({"type": "validation", "step": int(step), "loss": json_num(float(value))})

    def check(self) -> list[Finding]:
        """Run the rules now; announce and return the findings that fired for the first time.

        Live checks are throttled so that they cost at most about 0.25% of the wall time; a
        non-finite loss is checked at once.
        """
        t0 = time.perf_counter()
        report = evaluate(self.recorder.view(), self.meta, self.config, self.specs)
        new = [f for f in report.findings if (f.code, f.layer) not in self.fired]
        for f in new:
            self.fired[(f.code, f.layer)] = f
            if self.is_main:
                where = f" in {f.layer}" if f.layer else ""
                logger.log(_LOG_LEVEL[f.severity], "netdoctor %s %s%s at step %s: %s", f.code, f.name, where,
                           f.step, f.message)
                if self._log is not None:
                    self._write({"type": "finding", **f.to_dict()})
        if new and self._dash is not None:
            self._dash.findings(new)
        cost = time.perf_counter() - t0
        self.check_s += cost
        self._next_eval = time.perf_counter() + 400 * cost  # live checks take at most ~0.25% of the time
        bad = [f for f in new if f.severity >= self.fail_on]
        if bad and self.on_error == "stop":
            self.should_stop = True
        elif bad and self.on_error == "raise":
            raise TrainingError(bad)
        return new

    def report(self) -> Report:
        """The report of the run so far (same type as ``netdoctor.check``)."""
        report = evaluate(self.recorder.view(), self.meta, self.config, self.specs)
        timings = {**report.timings, "monitor_overhead": self.overhead_s,
                   "total": time.perf_counter() - self._t_start}
        return replace(report, timings=timings)

    def close(self, tail_start: int | None = None, tail: Sequence[float] | np.ndarray = (),
              tail_grads: Sequence[float] | np.ndarray | None = None) -> None:
        """Record the last losses, run a final check, close the log and the live line."""
        if self.closed:
            return
        self.closed = True
        try:
            if tail_start is not None and len(tail):
                self.recorder.add_losses(tail_start, np.asarray(tail, dtype=np.float64), tail_grads)
                if self._dash is not None:
                    self._dash.record(tail_start, np.asarray(tail, dtype=np.float64),
                                      None if tail_grads is None else np.asarray(tail_grads, dtype=np.float64), None)
            if self._log is not None:
                extra = ({"grad_norms": [json_num(v) for v in np.asarray(tail_grads, dtype=np.float64).tolist()]}
                         if tail_grads is not None and len(tail) else {})
                self._write({"type": "end", "loss_start": tail_start,
                             "losses": [json_num(v) for v in np.asarray(tail, dtype=np.float64).tolist()], **extra})
            if self.on_error != "raise":
                self.check()
        finally:
            if self._dash is not None:
                self._dash.flush()
            if self._live is not None:
                self._live.stop()
                self._live = None
            if self._log is not None:
                self._log.close()
                self._log = None
        if self.print_report and self.is_main:
            import sys

            from netdoctor.reporters import render

            color = sys.stderr.isatty() and "NO_COLOR" not in os.environ
            sys.stderr.write(render("text", self.report(), color=color))

    def history(self) -> History:
        return self.recorder.view()

    def plot(self, path: str | os.PathLike, **kwargs: Any) -> str:
        """Write the loss curve with the steps where findings fired (see :mod:`netdoctor.monitor.plot`)."""
        from netdoctor.monitor.plot import plot_history

        return plot_history(self.recorder.view(), self.report().findings, path, **kwargs)

    # -- internals -----------------------------------------------------------------
    def _write(self, obj: dict[str, Any]) -> None:
        self._log.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self._log.flush()
