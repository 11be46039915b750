"""The monitor's live status: one line redrawn in place on stderr, only on a terminal."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from netdoctor.findings import Finding, Severity
from netdoctor.history import Sample


def start_live(auto: bool) -> Any:
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


def status_line(step: int | None, losses: np.ndarray, sample: Sample | None, fired: Iterable[Finding]) -> str:
    """One short line: step, loss, gradient norm, update/weight, dead units, findings so far."""
    finite = losses[np.isfinite(losses)]
    parts = [f"[bold]netdoctor[/] step {step}",
             f"loss {float(np.mean(finite)):.4g}" if finite.size else "loss [bold red]nan[/]"]
    if sample is not None and sample.grad_norm is not None:
        parts.append(f"|g| {sample.grad_norm:.3g}")
    if sample is not None and sample.layer_update is not None and np.isfinite(sample.layer_update).any():
        parts.append(f"upd/w {float(np.nanmedian(sample.layer_update)):.1e}")
    if sample is not None and sample.act_dead is not None and np.isfinite(sample.act_dead).any():
        parts.append(f"dead {float(np.nanmax(sample.act_dead)):.0%}")
    fired = list(fired)
    counts = {sev: sum(1 for f in fired if f.severity == sev) for sev in (Severity.ERROR, Severity.WARNING)}
    if counts[Severity.ERROR]:
        parts.append(f"[bold red]{counts[Severity.ERROR]} error{'s' * (counts[Severity.ERROR] > 1)}[/]")
    if counts[Severity.WARNING]:
        parts.append(f"[yellow]{counts[Severity.WARNING]} warning{'s' * (counts[Severity.WARNING] > 1)}[/]")
    return " · ".join(parts)
