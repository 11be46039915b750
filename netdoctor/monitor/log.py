"""Replay a monitored run's JSONL log (``log_to=``) into its history and report.

The log is written by :class:`~netdoctor.monitor.core.MonitorCore`, one JSON object per line.

Log schema, version 1 (``LOG_SCHEMA_VERSION``; additive fields keep the version):

* line 1, the header: ``{"type": "header", "schema_version": 1, "every": N, ...}``. ``every``
  is a positive integer; the other keys describe the model (framework, layers, kinds...).
* ``{"type": "sample", "loss_start": S, "losses": [...], "grad_norms": [...], "sample": {...}}``
  per sampled step: ``loss_start`` is the first step of ``losses`` (an integer >= 0),
  ``losses`` and the optional ``grad_norms`` are lists of numbers (``"nan"``, ``"inf"`` and
  ``"-inf"`` stand for the non-finite values) of the same length, and ``sample`` holds the
  sampled step's measurements (``step``, ``grad_norm``, ``lr`` and per-layer lists of numbers).
* ``{"type": "losses", ...}`` and, at close, ``{"type": "end", ...}`` carry losses after the last
  sample, with the same fields as a sample line but no ``sample``.
* ``{"type": "validation", "step": S, "loss": X}``: a validation loss measured after step ``S``
  (``monitor.validation(loss)``, the callbacks' ``val_loss``/``eval_loss``).
* ``{"type": "finding", ...}``: a finding as the live run announced it (``Finding.to_dict()``);
  the replay runs the rules again, so these lines are informational.

:func:`read_log` checks every line against this schema. A missing or malformed header is an
error (:class:`~netdoctor.errors.NetdoctorError`); a later line that breaks the schema is
skipped and reported through ``on_problem`` with its file and line number, so a log damaged in
the middle (or cut off by a killed run) still gives the report of what it holds.
:func:`report_from_log` replays it into the same history and runs the same rules.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import replace
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from netdoctor.config import Config, make_config
from netdoctor.errors import NetdoctorError
from netdoctor.findings import Report
from netdoctor.history import LOG_SCHEMA_VERSION, History, HistoryRecorder, Sample
from netdoctor.monitor.evaluate import evaluate

ProblemFn = Callable[[str], None]

#: Longest list of losses one line may carry (a sample line holds the steps since the last one).
MAX_LINE_VALUES = 10_000_000


class LineError(ValueError):
    """A log line that breaks the schema (the message says how)."""


def read_log(path: str | os.PathLike, on_problem: ProblemFn | None = None) -> tuple[History, dict[str, Any]]:
    """Replay a JSONL log into a :class:`History` and the model description.

    Args:
        path: The log file.
        on_problem: Called with ``"PATH:LINE: what is wrong; skipped"`` for each line that breaks
            the schema after the header (default: ignore them).

    Raises:
        NetdoctorError: The file cannot be read, is empty, or its header is missing or malformed.
    """
    rec: HistoryRecorder | None = None
    meta: dict[str, Any] = {}
    try:
        fh = open(path, encoding="utf-8", errors="strict")
    except OSError as exc:
        raise NetdoctorError(f"{path}: cannot read ({exc.strerror or exc}); pass the file given to log_to=") from None
    with fh:
        try:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                where = f"{path}:{lineno}"
                try:
                    obj = _parse(line)
                except LineError as exc:
                    if rec is None:
                        raise NetdoctorError(f"{where}: not a netdoctor log ({exc})") from None
                    if on_problem:
                        on_problem(f"{where}: {exc}; line skipped")
                    continue
                if rec is None:
                    meta, every = _header(obj, where)
                    rec = HistoryRecorder(every)
                    rec.meta = meta
                    continue
                try:
                    _replay(rec, obj)
                except LineError as exc:
                    if on_problem:
                        on_problem(f"{where}: {exc}; line skipped")
        except UnicodeDecodeError as exc:
            raise NetdoctorError(f"{path}: not a text file (byte {exc.start} is not UTF-8); "
                                 "pass the JSONL file given to log_to=") from None
    if rec is None:
        raise NetdoctorError(f"{path}: empty log; pass the file given to log_to=")
    return rec.view(), meta


def _parse(line: str) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LineError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    except RecursionError:
        raise LineError("JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise LineError(f"a JSON {type(obj).__name__}, not an object")
    return obj


def _header(obj: Mapping[str, Any], where: str) -> tuple[dict[str, Any], int]:
    if obj.get("type") != "header":
        raise NetdoctorError(f"{where}: not a netdoctor log (the first line is not a header); pass the file "
                             "given to log_to=")
    version = obj.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise NetdoctorError(f"{where}: the header's schema_version must be a positive integer, not {version!r}")
    if version > LOG_SCHEMA_VERSION:
        raise NetdoctorError(f"{where}: log schema {version} is newer than this netdoctor understands "
                             f"({LOG_SCHEMA_VERSION}); upgrade netdoctor")
    every = obj.get("every", 1)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise NetdoctorError(f"{where}: the header's every must be a positive integer, not {every!r}")
    return {k: v for k, v in obj.items() if k not in ("type", "schema_version")}, every


def _numbers(value: Any, field: str) -> list[float]:
    if not isinstance(value, list):
        raise LineError(f"{field} must be a list of numbers, not {type(value).__name__}")
    if len(value) > MAX_LINE_VALUES:
        raise LineError(f"{field} holds {len(value)} values (at most {MAX_LINE_VALUES})")
    return [_number(v, field) for v in value]


def _number(v: Any, field: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise LineError(f"{field} holds {json.dumps(v)[:40]}, not a number")
    if isinstance(v, str) and v.strip().lower() not in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity"):
        raise LineError(f"{field} holds {v[:40]!r}, not a number")
    try:
        return float(v)
    except OverflowError:  # an integer beyond float range
        return math.inf if v > 0 else -math.inf


def _replay(rec: HistoryRecorder, obj: Mapping[str, Any]) -> None:
    kind = obj.get("type")
    if kind == "finding":
        return
    if kind == "validation":
        step = obj.get("step")
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise LineError(f"validation step must be an integer >= 0, not {json.dumps(step)[:40]}")
        rec.add_validation(step, _number(obj.get("loss"), "loss"))
        return
    if kind not in ("sample", "losses", "end"):
        raise LineError(f"unknown line type {str(kind)[:40]!r} (expected sample, losses, end, validation or finding)")
    losses = obj.get("losses")
    sample = obj.get("sample") if kind == "sample" else None
    if sample is not None and not isinstance(sample, dict):
        raise LineError(f"sample must be an object, not {type(sample).__name__}")
    parsed = None
    if sample:
        try:
            parsed = Sample.from_json(sample)
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise LineError(f"sample does not fit the schema ({type(exc).__name__}: {str(exc)[:80]})") from None
        _check_widths(parsed, rec.meta)
    if losses:
        start = obj.get("loss_start")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise LineError(f"loss_start must be an integer >= 0, not {json.dumps(start)[:40]}")
        values = _numbers(losses, "losses")
        grads = obj.get("grad_norms")
        norms = None if grads is None else _numbers(grads, "grad_norms")
        if norms is not None and len(norms) != len(values):
            raise LineError(f"grad_norms has {len(norms)} values for {len(values)} losses")
        rec.add_losses(start, values, norms)
    if parsed is not None:
        rec.add_sample(parsed)


def _groups(meta: Mapping[str, Any]) -> int:
    """Parameter groups the header names (0: not given, or not a count)."""
    n = meta.get("param_groups")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 0


def _check_widths(sample: Sample, meta: Mapping[str, Any]) -> None:
    """A sample's per-layer arrays must have one value per layer named in the header."""
    for fields, key in ((("layer_grad", "layer_weight", "layer_update"), "layers"),
                        (("act_dead", "act_saturated"), "act_layers"), (("lr_groups",), "param_groups")):
        want = _groups(meta) if key == "param_groups" else len(meta.get(key) or ())
        for name in fields:
            value = getattr(sample, name)
            if value is not None and np.size(value) != want:
                raise LineError(f"sample {name} has {np.size(value)} values for the {want} {key} of the header")


def report_from_log(path: str | os.PathLike, *, select: Iterable[str] | None = None,
                    ignore: Iterable[str] | None = None, config: Config | None = None,
                    on_problem: ProblemFn | None = None) -> Report:
    """Rebuild the report of a monitored run from its ``log_to`` JSONL file.

    Args:
        path: The log written by ``netdoctor.watch(..., log_to=path)`` or ``KerasCallback(log_to=path)``.
        select: Rule codes/prefixes/names to run.
        ignore: Rule codes/prefixes/names not to run.
        config: A full configuration (options and severities of the rules).
        on_problem: Called with a message for each log line that breaks the schema (skipped).

    Raises:
        netdoctor.errors.NetdoctorError: The file is missing, empty or not a netdoctor log.
    """
    if not os.path.exists(path):
        raise NetdoctorError(f"{path}: no such file; pass the file given to log_to=")
    t0 = time.perf_counter()
    history, meta = read_log(path, on_problem)
    report = evaluate(history, meta, make_config(select=select, ignore=ignore, base=config))
    return replace(report, timings={**report.timings, "total": time.perf_counter() - t0})
