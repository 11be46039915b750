"""``netdoctor check``: resolve options, check the files, write the reports, pick the exit code."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

from netdoctor.cli._output import (UsageFailure, error_line, is_tty, note_line, terminal_width, wants_color,
                                   write_stdout)
from netdoctor.sanitize import escape_controls

STDOUT = "-"
TERMINAL_FORMATS = ("text", "concise")  # the formats that may go to stdout without an --output


@dataclass
class CheckArgs:
    """The command-line options of ``netdoctor check`` (``None``: not given)."""

    paths: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    html: str | None = None
    fail_on: str | None = None
    select: list[str] | None = None
    ignore: list[str] | None = None
    config: str | None = None
    baseline: str | None = None
    write_baseline: str | None = None
    data: str | None = None
    input_shape: str | None = None
    weights: str | None = None
    unsafe: bool = False
    max_samples: int | None = None
    seed: int | None = None
    timeout: float | None = None
    no_progress: bool = False
    debug: bool = False
    verify: bool = False
    fit_probe: bool = False
    show_layers: bool = False
    skip_no_model: bool = False


def run_check(args: CheckArgs) -> int:
    """Run ``netdoctor check``; returns the exit code (0, 1 or 2)."""
    try:
        return _run(args)
    except UsageFailure as exc:
        error_line(str(exc))
        return 2
    except KeyboardInterrupt:
        error_line("interrupted")
        return 130
    except Exception as exc:
        from netdoctor.errors import NetdoctorError

        if args.debug:
            import traceback

            traceback.print_exc()
        if isinstance(exc, NetdoctorError):
            error_line(str(exc))
        else:
            error_line(f"internal error ({type(exc).__name__}: {exc}); rerun with --debug and report it")
        return 2


def _run(args: CheckArgs) -> int:
    from netdoctor import baseline
    from netdoctor.config import make_config
    from netdoctor.config_file import load_project_config
    from netdoctor.findings import Report, SkippedFile
    from netdoctor.modelfile.selection import select_files
    from netdoctor.modelfile.workers import CheckOptions, FileResult, Interrupted, check_files

    t0 = time.perf_counter()
    destinations = plan_outputs(args.formats or ["text"], args.outputs)
    if args.html:  # --html FILE is shorthand for one more "--format html --output FILE"
        if any(fmt == "html" for fmt, _ in destinations):
            raise UsageFailure("give the HTML report either with --html FILE or with --format html, not both")
        destinations.append(("html", args.html))
    if args.config is not None and not Path(args.config).is_file():
        raise UsageFailure(f"no such config file: {args.config}; pass the path of a pyproject.toml")
    project = load_project_config(start=Path.cwd(), explicit=args.config)
    fail_on = resolve_fail_on(args.fail_on, project.config.fail_on)
    select = split_refs(args.select)
    # like ruff: --select replaces the configured selection (its ignores too); --ignore adds
    base = replace(project.config, ignore=()) if select is not None else project.config
    cfg = make_config(select=select, ignore=split_refs(args.ignore), base=base, fail_on=fail_on)

    selection = select_files(args.paths, project, from_pattern=args.skip_no_model)
    candidates = selection.check
    specs = [c.spec for c in candidates]
    skipped = [FileResult(Report(skipped_files=(SkippedFile(f),))) for f in selection.no_model]
    if not specs and not skipped:
        if args.skip_no_model:  # the hook passed no model file: nothing to do
            return 0
        raise UsageFailure("no model files given; run `netdoctor check MODEL.py` or `netdoctor check models/` "
                           "(or set paths in [tool.netdoctor] of pyproject.toml)")
    if args.weights and len(specs) > 1:
        raise UsageFailure("--weights needs exactly one model file; check the files one at a time")
    input_shape = parse_shape(args.input_shape) if args.input_shape else project.input_shape
    if args.write_baseline and Path(args.write_baseline).is_dir():
        raise UsageFailure(f"--write-baseline {args.write_baseline} is a directory; give a file name such as "
                           f"{Path(args.write_baseline) / 'netdoctor-baseline.json'}")
    if args.baseline and not Path(args.baseline).is_file():
        raise UsageFailure(f"no such baseline file: {args.baseline}; create one with --write-baseline")

    options = CheckOptions(
        config=cfg, data=args.data or project.data, input_shape=input_shape, weights=args.weights,
        unsafe=args.unsafe, max_samples=args.max_samples, seed=args.seed, show_warnings=args.debug,
        verify=args.verify, timeout=resolve_timeout(args.timeout, project.timeout),
        fit_probe=args.fit_probe,
    )
    # keep TensorFlow's start-up chatter off stderr (users can still set these themselves)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    show_progress = not args.no_progress and is_tty(sys.stdout) and is_tty(sys.stderr)
    interrupted = None
    with _progress(specs, show_progress) as on_progress, contextlib.redirect_stdout(sys.stderr):
        try:
            done = list(zip(candidates, check_files(specs, options, progress=on_progress) if specs else []))
        except Interrupted as exc:  # report what finished, then exit 128 + the signal
            interrupted = exc
            done = [(candidates[i], exc.finished[i]) for i in sorted(exc.finished)]
    # a file a walk or a pattern reached that has no model is skipped; one the user named is an error
    results = [FileResult(Report(skipped_files=(SkippedFile(cand.spec),))) if res.no_model and not cand.explicit
               else res for cand, res in done] + skipped

    report = Report.merge((r.report for r in results), total=time.perf_counter() - t0)
    for res in results:
        for item in res.report.skipped_files:
            note_line(escape_controls(f"{item.file}: no model: skipped", one_line=True))
        for err in res.report.errors:
            if args.debug and res.traceback:
                sys.stderr.write(res.traceback)
            error_line(_error_text(err.file, err.message))

    if args.write_baseline:  # all current findings, also when --baseline names the old file
        baseline.write_baseline(report, args.write_baseline)
        note_line(f"wrote a baseline of {len(report.findings)} finding(s) to {args.write_baseline}")
    if args.baseline:
        report = baseline.apply_baseline(report, args.baseline)
        fixed = baseline.fixed_since(report, args.baseline)
        if fixed:
            note_line(f"fixed since the baseline: {len(fixed)} finding(s)")
            for entry in fixed:
                where = f" in `{entry.layer}`" if entry.layer else ""
                note_line(f"  fixed: {entry.file or '-'}: {entry.rule} {entry.name}{where}")

    checked_any = bool(report.targets or report.skipped_files)
    # SARIF URIs are relative to the project root: the folder of the config file found, else the cwd
    root = Path(project.source).resolve().parent if project.source is not None else Path.cwd()
    for fmt, dest in destinations:
        if dest == STDOUT:
            if fmt in TERMINAL_FORMATS and not checked_any:
                continue  # the error lines on stderr say it all
            write_stdout(render_report(fmt, report, sys.stdout, fail_on, show_layers=args.show_layers, root=root))
        else:
            _write_file(dest, render_report(fmt, report, None, fail_on, show_layers=args.show_layers, root=root))
    if interrupted is not None:
        error_line(f"interrupted by {signal.Signals(interrupted.signum).name}: {len(done)} of {len(specs)} "
                   "file(s) checked; the reports above are theirs, the other files were not checked")
        return 128 + interrupted.signum
    if args.write_baseline:
        return 2 if report.errors else 0
    return report.exit_code(fail_on)


# -- option handling --------------------------------------------------------------------
def resolve_fail_on(flag: str | None, configured: str | None) -> str:
    """The effective fail-on level: the flag, else the project's, else ``"error"`` (``DEFAULT_FAIL_ON``)."""
    from netdoctor.config import DEFAULT_FAIL_ON, FAIL_ON_VALUES

    level = (flag or configured or DEFAULT_FAIL_ON).strip().lower()
    if level not in FAIL_ON_VALUES:
        raise UsageFailure(f"--fail-on must be one of {', '.join(FAIL_ON_VALUES)}, not {level!r}")
    return level


def resolve_timeout(flag: float | None, configured: float | None) -> float | None:
    """Seconds per file: the flag, else the project's, else the default; ``0`` means no limit."""
    from netdoctor.modelfile.workers import DEFAULT_TIMEOUT

    value = flag if flag is not None else configured if configured is not None else DEFAULT_TIMEOUT
    if value < 0:
        raise UsageFailure(f"--timeout must be a number of seconds >= 0 (0: no limit), not {value:g}")
    return value or None


def plan_outputs(formats: Sequence[str], outputs: Sequence[str]) -> list[tuple[str, str]]:
    """Pair each format with a destination (a path, or ``"-"`` for stdout).

    One ``--output`` per format pairs them in order. With one output fewer than formats
    and a ``text`` (or ``concise``) format among them, that one goes to stdout and the others take the
    outputs in order. A single format without ``--output`` goes to stdout.

    Raises:
        UsageFailure: Unknown format, or formats and outputs that do not pair up.
    """
    from netdoctor.reporters import available

    known = available()
    fmts = [f.strip().lower() for item in formats for f in item.split(",") if f.strip()]
    for f in fmts:
        if f not in known:
            raise UsageFailure(f"unknown format {f!r}; available: {', '.join(known)}")
    if len(set(fmts)) != len(fmts):
        raise UsageFailure("each --format may be given once")
    outs = list(outputs)
    if len(outs) == len(fmts):
        pairs = list(zip(fmts, outs))
    elif len(outs) == len(fmts) - 1 and any(f in TERMINAL_FORMATS for f in fmts):
        it = iter(outs)
        pairs = [(f, STDOUT if f in TERMINAL_FORMATS else next(it)) for f in fmts]
    elif not outs and len(fmts) == 1:
        pairs = [(fmts[0], STDOUT)]
    else:
        raise UsageFailure(
            f"{len(fmts)} formats but {len(outs)} --output given; give one --output per format, "
            "in the same order (text or concise may go to stdout without one)"
        )
    if sum(dest == STDOUT for _, dest in pairs) > 1:
        raise UsageFailure("only one format can go to stdout; give the others an --output FILE")
    return pairs


def split_refs(values: list[str] | None) -> list[str] | None:
    """``["ND1,ND2", "dead-units"]`` -> ``["ND1", "ND2", "dead-units"]``; ``None`` stays ``None``."""
    if values is None:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def parse_shape(text: str) -> tuple[int, ...]:
    """``"3,32,32"`` (or ``"(3, 32, 32)"``) -> ``(3, 32, 32)``."""
    parts = [p for p in text.strip().strip("()[]").replace(" ", ",").split(",") if p]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not shape or any(d <= 0 for d in shape):
        raise UsageFailure(f"--input-shape {text!r} is not a shape; give positive integers like 3,32,32 "
                           "(one sample, without the batch axis)")
    return shape


def _error_text(file: str, message: str) -> str:
    base = Path(file.partition("::")[0]).name
    return message if (file in message or (base and base in message)) else f"{file}: {message}"


# -- rendering --------------------------------------------------------------------------
def render_report(fmt: str, report: Any, stream: Any, fail_on: str, show_layers: bool = False,
                  root: Path | None = None) -> str:
    """Render ``report`` in ``fmt``; text gets colour and width from ``stream`` (``None``: a file);
    SARIF's artifact URIs are relative to ``root`` (the project root).

    The width is the terminal's, or ``COLUMNS`` when set (also when piped); a file gets 100.
    """
    from netdoctor.reporters import render

    opts: dict[str, Any] = {"fail_on": fail_on}
    if fmt == "sarif" and root is not None:
        opts["root"] = root
    if fmt in TERMINAL_FORMATS:
        color = stream is not None and wants_color(stream)
        opts.update(color=color, width=terminal_width(stream) if stream is not None else None)
        if fmt == "text":
            opts.update(show_layers=True if show_layers else None)
    return render(fmt, report, **opts)


def _write_file(dest: str, text: str) -> None:
    path = Path(dest)
    try:
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageFailure(f"cannot write {dest}: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def _progress(specs: Sequence[str], enabled: bool) -> Iterator[Any]:
    """Yield a progress callback; a rich display on stderr when ``enabled``."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    running: dict[int, str] = {}
    with Progress(SpinnerColumn(), TextColumn("[bold]checking"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.description}"), console=console,
                  transient=True) as progress:
        task = progress.add_task("", total=len(specs))

        def on_progress(event: str, index: int) -> None:
            if event == "start":
                running[index] = specs[index]
            else:
                running.pop(index, None)
                progress.advance(task)
            progress.update(task, description=", ".join(running.values()))

        yield on_progress
