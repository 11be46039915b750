"""Check model files in worker processes, so that nothing a model file does can end netdoctor.

Every file, one or many, is checked in a ``spawn`` worker process: a model file that calls
``sys.exit``, ``os._exit``, aborts, segfaults, hangs, writes to file descriptor 1 or is killed
(the OOM killer sends SIGKILL) costs only its own report, which becomes a
:class:`~netdoctor.findings.LoadError` naming the cause; stdout stays netdoctor's (JSON there
stays valid). Files are grouped by framework (guessed from a text scan of their imports, see
:func:`scan_framework`), since TensorFlow and a CUDA build of torch can crash a process they
share; each group runs in one worker, and a fresh worker takes over the rest of the group after
a crash or a timeout.

Each worker leads its own process group and dies with its parent (``PR_SET_PDEATHSIG`` on
Linux); :func:`check_files` kills the groups on SIGINT/SIGTERM and on timeouts, so no worker
(or a DataLoader process it started) survives netdoctor. Interrupted, it raises
:class:`Interrupted` with the files that did finish.

Workers send back pickled :class:`FileResult` objects (a ``Report`` plus the traceback
text for ``--debug``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Sequence

from netdoctor.config import Config
from netdoctor.errors import NetdoctorError, NoModelError
from netdoctor.findings import LoadError, Report
from netdoctor.modelfile.usercode import scan_framework

ProgressFn = Callable[[str, int], None]  # (event, job index); event is "start" or "done"

#: Default seconds per file. A check is one forward and backward pass on a capped batch:
#: seconds for an ImageNet-size model on a CPU, TensorFlow's import included. Five minutes
#: leaves a slow shared CI runner ample room and still ends a hung file long before a CI
#: job's own limit (often 60 minutes or more) would, with every other file reported.
DEFAULT_TIMEOUT = 300.0


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
        seed: Seed of the user's model and data code, synthetic inputs and dropout masks.
        show_warnings: Let Python warnings raised by the model code and the frameworks
            through to stderr (``--debug``); otherwise they are silenced during the check.
        verify: ``--verify``: verify each finding's fix on a copy of the model (``netdoctor.verify``).
        timeout: Seconds one file may take (loading and checking) before its worker is killed;
            ``None``: no limit.
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
    timeout: float | None = DEFAULT_TIMEOUT
    fit_probe: bool = False


@dataclass(frozen=True)
class FileResult:
    """What checking one file produced.

    Attributes:
        report: The file's report (stamped with the file), or one carrying a ``LoadError``.
        traceback: Formatted traceback of the failure, for ``--debug``.
        no_model: The file defines no model (a :class:`~netdoctor.errors.NoModelError`); the caller
            decides whether that is an error (a file the user named) or "no model: skipped".
    """

    report: Report
    traceback: str | None = None
    no_model: bool = False


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
            weights=options.weights, unsafe=options.unsafe, seed=options.seed or 0,
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
            layer_lines=loaded.layer_lines,
        )
    except NoModelError as exc:
        return replace(_failed(spec, str(exc), exc), no_model=True)
    except NetdoctorError as exc:
        return _failed(spec, str(exc), exc)
    except OSError as exc:  # a path the file system refuses (too long, a directory, no permission)
        if isinstance(exc.filename, str):
            name = exc.filename if len(exc.filename) <= 80 else f"{exc.filename[:60]}...{exc.filename[-12:]}"
            return _failed(spec, f"cannot open {name}: {exc.strerror or exc}; check the path", exc)
        return _failed(spec, f"checking failed with OSError: {exc}; rerun with --debug for the traceback", exc)
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


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped :func:`check_files`; the workers are gone.

    Attributes:
        signum: The signal (``signal.SIGINT`` or ``signal.SIGTERM``).
        finished: ``{index: FileResult}`` of the files that finished before it.
    """

    def __init__(self, signum: int, finished: dict[int, FileResult]) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.finished = finished


def check_files(
    specs: Sequence[str],
    options: CheckOptions,
    progress: ProgressFn | None = None,
    isolate: bool = True,
) -> list[FileResult]:
    """Check several files; results come back in the order of ``specs``.

    Args:
        specs: Model files (``path``, ``path::NAME``).
        options: Shared options (``options.timeout`` bounds each file).
        progress: Called with ``("start" | "done", index)`` (from helper threads).
        isolate: Run in worker processes (the default). ``False`` checks in this process,
            without timeouts or crash isolation (for callers that already are a sandbox).

    Returns:
        One :class:`FileResult` per spec.

    Raises:
        Interrupted: SIGINT or SIGTERM arrived (only when called from the main thread).
    """
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
    present: list[int] = []
    for i, spec in enumerate(specs):
        if os.path.exists(spec.partition("::")[0]):
            present.append(i)
        else:  # the loader says so without importing anything: no worker needed
            results[i] = check_file(spec, options)
            if progress:
                progress("done", i)

    pool = _Pool(options, progress)
    groups = [[present[j] for j in idx] for idx in group_by_framework([specs[i] for i in present]).values()]
    with _signals_raise() as caught:
        threads = [threading.Thread(target=pool.run, args=([(i, specs[i]) for i in idx],), daemon=True)
                   for idx in groups]
        try:
            for t in threads:
                t.start()
            for t in threads:
                while t.is_alive():  # join in slices so a signal reaches the main thread
                    t.join(0.2)
        except _Signal as sig:
            pool.stop()
            for t in threads:
                t.join(5)
            results.update(pool.results)
            raise Interrupted(sig.signum, results) from None
    if caught:  # a signal that came while the threads were finishing
        results.update(pool.results)
        raise Interrupted(caught[0], results)
    results.update(pool.results)
    return [results[i] for i in range(len(specs))]


class _Signal(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _signals_raise() -> Iterator[list[int]]:
    """Turn SIGINT and SIGTERM into :class:`_Signal` in the main thread while checking."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handler(signum: int, _frame: Any) -> None:
        caught.append(signum)
        raise _Signal(signum)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class _Pool:
    """The live workers of one :func:`check_files` call and the results they sent."""

    def __init__(self, options: CheckOptions, progress: ProgressFn | None) -> None:
        self.options = options
        self.progress = progress
        self.results: dict[int, FileResult] = {}
        self._lock = threading.Lock()
        self._procs: set[Any] = set()
        self._stopped = False

    def stop(self) -> None:
        """Kill every worker (and its process group) now; running groups end without results."""
        with self._lock:
            self._stopped = True
            procs = list(self._procs)
        for proc in procs:
            _kill_group(proc)

    def run(self, jobs: Sequence[tuple[int, str]]) -> None:
        """Check ``jobs`` (``(index, spec)``) in one spawn worker, restarting it after a crash or timeout."""
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        remaining = list(jobs)
        while remaining:
            receiver, sender = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_worker_main, args=(sender, remaining, self.options), daemon=True,
                               name="netdoctor-worker")
            with self._lock:
                if self._stopped:
                    return
                proc.start()
                self._procs.add(proc)
            sender.close()
            current, started, timed_out = None, 0.0, False
            try:
                while True:
                    wait = None
                    if current is not None and self.options.timeout:
                        wait = max(0.0, started + self.options.timeout - time.monotonic())
                    if not receiver.poll(wait):
                        timed_out = True  # the current file ran past the timeout
                        break
                    msg = receiver.recv()
                    if msg[0] == "start":
                        current, started = msg[1], time.monotonic()
                        if self.progress:
                            self.progress("start", current)
                    else:
                        with self._lock:
                            self.results[msg[1]] = msg[2]
                        current = None
                        if self.progress:
                            self.progress("done", msg[1])
            except (EOFError, OSError):
                pass
            finally:
                receiver.close()
            if timed_out:
                _kill_group(proc)
            proc.join()
            with self._lock:
                self._procs.discard(proc)
                if self._stopped:
                    return
                remaining = [job for job in remaining if job[0] not in self.results]
                if not remaining:
                    return
                failed = current if current is not None else remaining[0][0]
                spec = dict(remaining)[failed]
                why = _timeout_message(self.options.timeout) if timed_out else _exit_message(spec, proc.exitcode)
                self.results[failed] = FileResult(Report(errors=(LoadError(spec, why),)))
            if self.progress:
                self.progress("done", failed)
            remaining = [job for job in remaining if job[0] != failed]


def _kill_group(proc: Any) -> None:
    """SIGKILL a worker's process group (it leads one: children it started die too)."""
    pid = proc.pid
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        try:
            proc.kill()
        except (OSError, ValueError):
            pass


def _timeout_message(timeout: float | None) -> str:
    return (f"checking this file took longer than {timeout:g} s and was stopped (a hang, or a model too big "
            "for the probe); raise the limit with --timeout SECONDS or `timeout` in [tool.netdoctor], "
            "or cap the batch with --max-samples")


def _exit_message(spec: str, exitcode: int | None) -> str:
    """Why a worker ended before reporting the file, in words."""
    path = spec.partition("::")[0]
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        if -exitcode == signal.SIGKILL:
            return (f"the process checking this file was killed by SIGKILL, likely out of memory (the kernel's "
                    f"OOM killer sends SIGKILL) or killed externally; try a smaller --max-samples")
        if -exitcode in (signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT):
            return (f"the process checking this file was killed by {name} (a native crash in the model code or its "
                    f"framework); run `python -X faulthandler {path}` to locate it")
        return f"the process checking this file was killed by {name}"
    if exitcode == 0:
        return ("the model code ended the process (exit status 0, e.g. os._exit(0)) before the check finished; "
                f"keep script code in {path} under `if __name__ == \"__main__\":`")
    return (f"the model code ended the process with exit status {exitcode} before the check finished; "
            f"keep script code in {path} under `if __name__ == \"__main__\":`")


def _worker_setup() -> None:
    """Make the worker its own process group, dying with its parent, with no stdin and no stdout."""
    try:
        os.setpgid(0, 0)  # netdoctor kills the group: DataLoader processes go with it
    except OSError:  # pragma: no cover - already a group leader
        pass
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: die with the parent, even if it is SIGKILLed
            if os.getppid() == 1:  # the parent died before prctl took effect
                os._exit(1)
        except (OSError, AttributeError):  # pragma: no cover - no libc
            pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides what an interrupt stops
    # The parent owns stdout (reports may be JSON there): model code output goes to stderr,
    # and a prompt (input()) gets end-of-file instead of waiting.
    try:
        os.dup2(2, 1)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
    except OSError:  # pragma: no cover - no fd 2
        pass
    sys.stdout = _LineEnding(sys.stderr)
    sys.stdin = open(os.devnull)  # noqa: SIM115 - lives as long as the worker


class _LineEnding:
    """The worker's ``sys.stdout`` (writing to stderr) that can end a line left open.

    A prompt (``input("name? ")``) or a ``print(..., end="")`` in the model code must not
    run into netdoctor's ``error:`` line.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._open = False

    def write(self, text: str) -> int:
        if text:
            self._open = not text.endswith("\n")
        return self._stream.write(text)

    def end_line(self) -> None:
        if self._open:
            self._stream.write("\n")
            self._stream.flush()
            self._open = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _worker_main(conn: Any, jobs: list[tuple[int, str]], options: CheckOptions) -> None:
    """Worker process body: check ``jobs`` one after the other, reporting each."""
    _worker_setup()
    for index, spec in jobs:
        conn.send(("start", index))
        try:
            result = check_file(spec, options)
        except SystemExit as exc:  # sys.exit()/exit() in the model code
            code = exc.code if exc.code is not None else 0
            result = _failed(spec, f"the model code called sys.exit({code!r}) before the check finished; keep "
                             f"script code under `if __name__ == \"__main__\":`", exc)
        except BaseException as exc:  # KeyboardInterrupt, GeneratorExit... raised by the model code
            result = _failed(spec, f"the model code raised {type(exc).__name__}"
                             f"{': ' + str(exc).splitlines()[0] if str(exc).strip() else ''}; "
                             "rerun with --debug for the traceback", exc)
        if isinstance(sys.stdout, _LineEnding):
            sys.stdout.end_line()
        try:
            conn.send(("done", index, result))
        except Exception as exc:  # an unpicklable value in the report
            conn.send(("done", index, FileResult(
                Report(errors=(LoadError(spec, f"could not send the report back ({type(exc).__name__}: {exc})"),)),
            )))
    conn.close()
