"""The training-loop monitor core (framework-free).

Adapters (``netdoctor.adapters.torch.monitor``, ``netdoctor.adapters.keras.callback``)
measure inside the framework and hand this core two things: the per-step losses of the
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
from netdoctor.findings import Finding, Report, Severity, SkippedRule
from netdoctor.history import LOG_SCHEMA_VERSION, History, HistoryRecorder, Sample, json_num
from netdoctor.snapshot import ROLE_WEIGHT, LayerRecord, LossInfo, ModelSnapshot, Need, ParamRecord, TensorStats

logger = logging.getLogger("netdoctor.monitor")

ON_ERROR = ("warn", "stop", "raise")
#: Rules that read gradient norms; skipped (with the reason) when none were measured.
GRADIENT_RULES = ("ND604", "ND608", "ND609")
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


def history_specs(config: Config) -> list:
    """Selected rules that can run on a history alone (the ND6xx family)."""
    from netdoctor.engine import selected_rules

    return [s for s in selected_rules(config) if s.needs <= {Need.HISTORY}]


def snapshot_of(history: History, meta: dict[str, Any]) -> ModelSnapshot:
    """A :class:`ModelSnapshot` carrying ``history``; weight layers come from the last sample."""
    layers: list[LayerRecord] = []
    last = next((s for s in reversed(history.usable_samples) if s.layer_weight is not None), None)
    if last is not None:
        for i, (name, kind) in enumerate(zip(history.layers, history.layer_kinds)):
            grad = None
            if last.layer_grad is not None:
                grad = TensorStats(shape=(), l2=float(last.layer_grad[i]))
            w = ParamRecord("weight", ROLE_WEIGHT, TensorStats(shape=(), l2=float(last.layer_weight[i])), grad=grad)
            layers.append(LayerRecord(name=name, type_name=kind, kind=kind, params=(w,)))
    return ModelSnapshot(
        framework=meta.get("framework", history.framework),
        framework_version=str(meta.get("framework_version", "")),
        model_class=str(meta.get("model_class", "")),
        layers=tuple(layers),
        collected=frozenset({Need.HISTORY}),
        param_count=int(meta.get("param_count", 0)),
        trainable_param_count=int(meta.get("trainable_param_count", 0)),
        suppressions=meta.get("suppressions", {}),
        loss=LossInfo(name="training loss (every step)", expects="any", value=float(history.loss_values[-1])
                      if history.loss_values.size else float("nan")),
        history=history,
        notes=tuple(history.notes)
        + (f"monitored {history.steps} steps, sampled every {history.every} ({len(history.samples)} samples kept)",),
    )


def evaluate(history: History, meta: dict[str, Any], config: Config, specs: list | None = None) -> Report:
    """Run the history rules on ``history`` and return the report."""
    from netdoctor.engine import run_rules

    t0 = time.perf_counter()
    specs = history_specs(config) if specs is None else specs
    unmet: list[SkippedRule] = []
    if history.grad_source is None:  # no gradients measured: say so instead of passing silently
        why = next((n for n in history.notes if "gradient" in n), "gradient norms were not measured")
        unmet = [SkippedRule(s.code, s.name, why) for s in specs if s.code in GRADIENT_RULES]
        specs = [s for s in specs if s.code not in GRADIENT_RULES]
    report = run_rules(snapshot_of(history, meta), specs, config)
    if unmet and report.targets:
        target = report.targets[0]
        report = replace(report, targets=(replace(target, skipped=tuple(target.skipped) + tuple(unmet)),))
    return replace(report, timings={"rules": time.perf_counter() - t0}, history=history)


class MonitorCore:
    """Bounded history + log + live status + rule evaluation, shared by the adapters.

    Args:
        framework: ``"torch"`` or ``"keras"``.
        every: Sampling period in steps.
        log_to: Path of the JSONL log (main process only), or ``None``.
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
            self._live = _start_live(self._live_mode == "auto")

    def record(self, loss_start: int, losses: Sequence[float] | np.ndarray, sample: Sample | None = None) -> None:
        """Add the per-step losses since the last call and, on a sampled step, the sample."""
        losses = np.asarray(losses, dtype=np.float64).ravel()
        self.recorder.add_losses(loss_start, losses)
        if sample is not None:
            self.recorder.add_sample(sample)
        if self._log is not None:
            self._write({"type": "sample" if sample is not None else "losses", "loss_start": int(loss_start),
                         "losses": [json_num(v) for v in losses.tolist()],
                         "sample": sample.to_json() if sample is not None else None})
        if self._live is not None and losses.size:
            self._live.update(self._status_line(losses, sample))
        nonfinite = self.recorder.first_nonfinite_step is not None and not self._seen_nonfinite
        if nonfinite or time.perf_counter() >= self._next_eval:
            self._seen_nonfinite = self._seen_nonfinite or nonfinite
            self.check()

    def check(self) -> list[Finding]:
        """Run the rules now; announce and return the findings that fired for the first time.

        Live checks are throttled so that they cost at most about 1% of the wall time; a
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
        cost = time.perf_counter() - t0
        self._next_eval = time.perf_counter() + 100 * cost  # live checks take at most ~1% of the time
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

    def close(self, tail_start: int | None = None, tail: Sequence[float] | np.ndarray = ()) -> None:
        """Record the last losses, run a final check, close the log and the live line."""
        if self.closed:
            return
        self.closed = True
        try:
            if tail_start is not None and len(tail):
                self.recorder.add_losses(tail_start, np.asarray(tail, dtype=np.float64))
            if self._log is not None:
                self._write({"type": "end", "loss_start": tail_start,
                             "losses": [json_num(v) for v in np.asarray(tail, dtype=np.float64).tolist()]})
            if self.on_error != "raise":
                self.check()
        finally:
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

    def _status_line(self, losses: np.ndarray, sample: Sample | None) -> str:
        """One short line: step, loss, gradient norm, update/weight, dead units, findings so far."""
        finite = losses[np.isfinite(losses)]
        parts = [f"[bold]netdoctor[/] step {self.recorder.last_step}",
                 f"loss {float(np.mean(finite)):.4g}" if finite.size else "loss [bold red]nan[/]"]
        if sample is not None and sample.grad_norm is not None:
            parts.append(f"|g| {sample.grad_norm:.3g}")
        if sample is not None and sample.layer_update is not None and np.isfinite(sample.layer_update).any():
            parts.append(f"upd/w {float(np.nanmedian(sample.layer_update)):.1e}")
        if sample is not None and sample.act_dead is not None and np.isfinite(sample.act_dead).any():
            parts.append(f"dead {float(np.nanmax(sample.act_dead)):.0%}")
        counts = {sev: sum(1 for f in self.fired.values() if f.severity == sev) for sev in (Severity.ERROR, Severity.WARNING)}
        if counts[Severity.ERROR]:
            parts.append(f"[bold red]{counts[Severity.ERROR]} error{'s' * (counts[Severity.ERROR] > 1)}[/]")
        if counts[Severity.WARNING]:
            parts.append(f"[yellow]{counts[Severity.WARNING]} warning{'s' * (counts[Severity.WARNING] > 1)}[/]")
        return " · ".join(parts)


def _start_live(auto: bool) -> Any:
    """A one-line ``rich.live.Live`` on stderr, or ``None`` when stderr is not a terminal."""
    from rich.console import Console
    from rich.live import Live

    console = Console(stderr=True)
    if auto and not console.is_terminal:
        return None
    live = Live("", console=console, auto_refresh=False, transient=False)
    live.start()

    class _Line:
        def update(self, markup: str) -> None:
            from rich.text import Text

            text = Text.from_markup(markup, overflow="ellipsis")
            text.no_wrap = True  # one line, cut to the terminal width
            live.update(text, refresh=True)

        def stop(self) -> None:
            live.stop()

    return _Line()


def read_log(path: str | os.PathLike) -> tuple[History, dict[str, Any]]:
    """Replay a JSONL log into a :class:`History` and the model description."""
    rec: HistoryRecorder | None = None
    meta: dict[str, Any] = {}
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                if rec is not None:
                    break  # a run killed mid-write: keep what was complete
                raise NetdoctorError(f"{path}:{lineno}: not a netdoctor log ({exc.msg})") from None
            kind = obj.get("type")
            if rec is None:
                if kind != "header":
                    raise NetdoctorError(f"{path}: not a netdoctor log (the first line is not a header)")
                if int(obj.get("schema_version", 0)) > LOG_SCHEMA_VERSION:
                    raise NetdoctorError(f"{path}: log schema {obj['schema_version']} is newer than this "
                                         f"netdoctor understands ({LOG_SCHEMA_VERSION}); upgrade netdoctor")
                meta = {k: v for k, v in obj.items() if k not in ("type", "schema_version")}
                rec = HistoryRecorder(int(obj.get("every", 1)))
                rec.meta = meta
                continue
            if kind in ("sample", "losses", "end") and obj.get("losses"):
                rec.add_losses(int(obj["loss_start"]), [float(v) for v in obj["losses"]])
            if kind == "sample" and obj.get("sample"):
                rec.add_sample(Sample.from_json(obj["sample"]))
    if rec is None:
        raise NetdoctorError(f"{path}: empty log")
    return rec.view(), meta


def report_from_log(path: str | os.PathLike, *, select: Iterable[str] | None = None,
                    ignore: Iterable[str] | None = None, config: Config | None = None) -> Report:
    """Rebuild the report of a monitored run from its ``log_to`` JSONL file.

    Args:
        path: The log written by ``netdoctor.watch(..., log_to=path)`` or ``KerasCallback(log_to=path)``.
        select: Rule codes/prefixes/names to run.
        ignore: Rule codes/prefixes/names not to run.
        config: A full configuration (options and severities of the rules).

    Raises:
        netdoctor.errors.NetdoctorError: The file is missing, empty or not a netdoctor log.
    """
    if not os.path.exists(path):
        raise NetdoctorError(f"{path}: no such file; pass the file given to log_to=")
    t0 = time.perf_counter()
    history, meta = read_log(path)
    report = evaluate(history, meta, make_config(select=select, ignore=ignore, base=config))
    return replace(report, timings={**report.timings, "total": time.perf_counter() - t0})


def watch(model: Any, optimizer: Any = None, **kwargs: Any) -> Any:
    """Monitor a PyTorch training loop (``netdoctor.watch``).

    Returns a :class:`netdoctor.adapters.torch.monitor.TorchMonitor`; call ``monitor.step(loss)``
    after each ``optimizer.step()``. Keras models use ``netdoctor.KerasCallback`` instead.

    Raises:
        netdoctor.errors.UnsupportedModelError: ``model`` is not a ``torch.nn.Module``.
    """
    from netdoctor.frameworks import detect_framework
    from netdoctor.errors import UnsupportedModelError

    if detect_framework(model) == "keras":
        raise UnsupportedModelError(
            "netdoctor.watch() is for PyTorch loops; for Keras use "
            "model.fit(..., callbacks=[netdoctor.KerasCallback()])"
        )
    from netdoctor.adapters.torch.monitor import TorchMonitor

    return TorchMonitor(model, optimizer, **kwargs)
