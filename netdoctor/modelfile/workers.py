"""Check model files, each framework group in its own worker process.

TensorFlow and a CUDA build of torch can crash a process they share, and a model file
can crash natively (a segfault in an extension). So when several files are checked,
files are grouped by framework (guessed from a text scan of their imports, see
:func:`scan_framework`) and each group runs in one ``spawn`` worker.
A worker that dies takes only the file it was checking with it: that file gets a
:class:`~netdoctor.findings.LoadError`, and a fresh worker checks the rest of the group.

Workers send back pickled :class:`FileResult` objects (a ``Report`` plus the traceback
text for ``--debug``).
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from netdoctor.config import Config
from netdoctor.errors import NetdoctorError
from netdoctor.findings import LoadError, Report

ProgressFn = Callable[[str, int], None]  # (event, job index); event is "start" or "done"


@dataclass(frozen=True)
class CheckOptions:
    """Options shared by every file of one ``netdoctor check`` call.

    Attributes:
        config: Resolved rule configuration.
        data: ``--data`` file replacing each file's own data.
        input_shape: ``--input-shape`` for synthetic inputs.
        weights: ``--weights`` checkpoint to load into the built model.
        unsafe: ``--unsafe``: allow code/pickles in saved models and checkpoints.
        max_samples: Cap on the probe batch.
        seed: Seed for synthetic inputs and dropout masks.
        show_warnings: Let Python warnings raised by the model code and the frameworks
            through to stderr (``--debug``); otherwise they are silenced during the check.
        verify: ``--verify``: verify each finding's fix on a copy of the model (``netdoctor.verify``).
        fit_probe: ``--fit-probe``: train a copy on the probe batch and report when it cannot fit it
            (``netdoctor.verify.fit``, rule ND509).
    """

    config: Config = field(default_factory=Config)
    data: str | None = None
    input_shape: tuple[int, ...] | None = None
    weights: str | None = None
    unsafe: bool = False
    max_samples: int | None = None
    seed: int | None = None
    show_warnings: bool = False
    verify: bool = False
    fit_probe: bool = False


@dataclass(frozen=True)
class FileResult:
    """What checking one file produced.

    Attributes:
        report: The file's report (stamped with the file), or one carrying a ``LoadError``.
        traceback: Formatted traceback of the failure, for ``--debug``.
    """

    report: Report
    traceback: str | None = None


def check_file(spec: str, options: CheckOptions) -> FileResult:
    """Load and check one model file in this process; never raises for user errors.

    Args:
        spec: ``path.py``, ``path.py::NAME`` or a saved model path, as the user wrote it.
        options: Shared options.

    Returns:
        A :class:`FileResult`; failures become a report with one ``LoadError``.
    """
    with warnings.catch_warnings():
        if not options.show_warnings:
            warnings.simplefilter("ignore")
        return _check_file(spec, options)


def _check_file(spec: str, options: CheckOptions) -> FileResult:
    from netdoctor.api import check_model
    from netdoctor.modelfile.loader import load_model_file
    from netdoctor.snapshot import ProbeSettings

    t0 = time.perf_counter()
    try:
        loaded = load_model_file(
            spec, data=options.data, input_shape=options.input_shape,
            weights=options.weights, unsafe=options.unsafe,
        )
        loaded_at = time.perf_counter()
        settings = ProbeSettings()
        if options.max_samples is not None:
            settings = replace(settings, max_samples=options.max_samples)
        if options.seed is not None:
            settings = replace(settings, seed=options.seed)
        notes = ((f"data from {loaded.data_source}",) if loaded.data_source else ()) + tuple(loaded.notes)
        report = check_model(
            loaded.model, loaded.inputs, loaded.targets, framework=loaded.framework, config=options.config,
            loss_fn=loaded.loss_fn, input_shape=loaded.input_shape, settings=settings, verify=options.verify,
            fit_probe=options.fit_probe, file=spec, notes=notes, timings={"load": loaded_at - t0}, started=loaded_at,
        )
    except NetdoctorError as exc:
        return _failed(spec, str(exc), exc)
    except Exception as exc:  # a bug, or a framework error an adapter did not translate
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return _failed(
            spec,
            f"checking failed with {type(exc).__name__}{': ' + msg if msg else ''}; "
            "rerun with --debug for the traceback",
            exc,
        )
    return FileResult(report)


def _failed(spec: str, message: str, exc: BaseException) -> FileResult:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return FileResult(Report(errors=(LoadError(spec, message),)), tb)


# -- worker processes -------------------------------------------------------------------
def group_by_framework(specs: Sequence[str]) -> dict[str, list[int]]:
    """Indices of ``specs`` per guessed framework, in first-seen order."""
    groups: dict[str, list[int]] = {}
    for i, spec in enumerate(specs):
        groups.setdefault(scan_framework(spec), []).append(i)
    return groups


def scan_framework(path: str) -> str:
    """Guess a file's framework without importing it: ``"torch"``, ``"keras"``, ``"mixed"`` or ``"unknown"``.

    Saved models (``.keras``/``.h5``) are Keras. Python files are scanned for imports of
    torch (or torch-based libraries) and keras/tensorflow.
    """
    from netdoctor.modelfile.loader import SAVED_MODEL_SUFFIXES

    p = Path(path.partition("::")[0])
    if p.suffix.lower() in SAVED_MODEL_SUFFIXES:
        return "keras"
    try:
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "unknown"
    mods = set(re.findall(r"^\s*(?:from|import)\s+([A-Za-z_][\w]*)", text, flags=re.MULTILINE))
    torchy = bool(mods & {"torch", "torchvision", "timm", "lightning", "pytorch_lightning", "transformers"})
    kerasy = bool(mods & {"keras", "tensorflow", "tf_keras", "keras_hub", "keras_nlp", "keras_cv"})
    if torchy and kerasy:
        return "mixed"
    return "torch" if torchy else "keras" if kerasy else "unknown"


def check_files(
    specs: Sequence[str],
    options: CheckOptions,
    progress: ProgressFn | None = None,
    isolate: bool | None = None,
) -> list[FileResult]:
    """Check several files; results come back in the order of ``specs``.

    Args:
        specs: Model files (``path``, ``path::NAME``).
        options: Shared options.
        progress: Called with ``("start" | "done", index)`` (from helper threads).
        isolate: Run in worker processes. Default: only when there is more than one file.

    Returns:
        One :class:`FileResult` per spec.
    """
    if isolate is None:
        isolate = len(specs) > 1
    if not isolate:
        out = []
        for i, spec in enumerate(specs):
            if progress:
                progress("start", i)
            out.append(check_file(spec, options))
            if progress:
                progress("done", i)
        return out

    results: dict[int, FileResult] = {}
    lock = threading.Lock()
    present: list[int] = []
    for i, spec in enumerate(specs):
        if os.path.exists(spec.partition("::")[0]):
            present.append(i)
        else:  # the loader says so without importing anything: no worker needed
            results[i] = check_file(spec, options)
            if progress:
                progress("done", i)

    def run(indices: list[int]) -> None:
        got = run_group([(i, specs[i]) for i in indices], options, progress)
        with lock:
            results.update(got)

    groups = group_by_framework([specs[i] for i in present]).values()
    threads = [threading.Thread(target=run, args=([present[j] for j in idx],), daemon=True) for idx in groups]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():  # join in slices so Ctrl-C reaches the main thread
            t.join(0.2)
    return [results[i] for i in range(len(specs))]


def run_group(
    jobs: Sequence[tuple[int, str]], options: CheckOptions, progress: ProgressFn | None = None
) -> dict[int, FileResult]:
    """Check ``jobs`` (``(index, spec)``) in one spawn worker, restarting it after a crash."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    remaining = list(jobs)
    results: dict[int, FileResult] = {}
    while remaining:
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker_main, args=(sender, remaining, options), daemon=True,
                           name="netdoctor-worker")
        proc.start()
        sender.close()
        current: int | None = None
        try:
            while True:
                msg = receiver.recv()
                if msg[0] == "start":
                    current = msg[1]
                    if progress:
                        progress("start", current)
                else:
                    results[msg[1]] = msg[2]
                    current = None
                    if progress:
                        progress("done", msg[1])
        except (EOFError, OSError):
            pass
        finally:
            receiver.close()
        proc.join()
        remaining = [job for job in remaining if job[0] not in results]
        if remaining:
            crashed = current if current is not None else remaining[0][0]
            spec = dict(remaining)[crashed]
            results[crashed] = FileResult(Report(errors=(LoadError(spec, _crash_message(spec, proc.exitcode)),)))
            if progress:
                progress("done", crashed)
            remaining = [job for job in remaining if job[0] != crashed]
    return results


def _crash_message(spec: str, exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
    else:
        how = f"exited with code {exitcode}"
    path = spec.partition("::")[0]
    return (
        f"the process checking this file {how} (a native crash in the model code or its "
        f"framework); run `python -X faulthandler {path}` to locate it"
    )


def _worker_main(conn: Any, jobs: list[tuple[int, str]], options: CheckOptions) -> None:
    """Worker process body: check ``jobs`` one after the other, reporting each."""
    # The parent owns stdout (reports may be JSON there): model code output goes to stderr.
    try:
        os.dup2(2, 1)
    except OSError:  # pragma: no cover - no fd 2
        pass
    sys.stdout = sys.stderr
    for index, spec in jobs:
        conn.send(("start", index))
        result = check_file(spec, options)
        try:
            conn.send(("done", index, result))
        except Exception as exc:  # an unpicklable value in the report
            conn.send(("done", index, FileResult(
                Report(errors=(LoadError(spec, f"could not send the report back ({type(exc).__name__}: {exc})"),)),
            )))
    conn.close()
