"""Replay a monitored run's JSONL log (``log_to=``) into its history and report.

The log is written by :class:`~netdoctor.monitor.core.MonitorCore`: a header line
``{"type": "header", "schema_version": 1, ...}``, then one line per sampled step
``{"type": "sample", "loss_start": first step, "losses": [...per step...], "sample": {...}}``
and at close a ``{"type": "end"}`` line with the losses after the last sample.
:func:`report_from_log` replays it into the same history and runs the same rules.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from typing import Any, Iterable

from netdoctor.config import Config, make_config
from netdoctor.errors import NetdoctorError
from netdoctor.findings import Report
from netdoctor.history import LOG_SCHEMA_VERSION, History, HistoryRecorder, Sample
from netdoctor.monitor.evaluate import evaluate


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
                grads = obj.get("grad_norms")
                rec.add_losses(int(obj["loss_start"]), [float(v) for v in obj["losses"]],
                               None if grads is None else [float(v) for v in grads])
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
