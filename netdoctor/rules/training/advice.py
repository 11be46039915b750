"""Learning-rate advice of the history rules, aware of schedules and of the user's optimizer.

A finding that says "change the learning rate" must name a value the user can type. With a
schedule (OneCycleLR, cosine decay, warmup) the last recorded rate is the annealed tail and
says nothing about the rate that caused the problem; the advice is therefore based on the rate
in force when the finding started and on the run's peak rate, names the scheduler, and keeps
the user's optimizer class (an SGD run is not told to switch to Adam).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from netdoctor.history import History
from netdoctor.rules.format import fmt

if TYPE_CHECKING:  # the rule context is only passed through; importing it would join the rules' import cycle
    from netdoctor.rules.spec import RuleContext

#: torch schedulers whose peak is a constructor argument other than the optimizer's lr.
_PEAK_ARG = {"OneCycleLR": "max_lr", "CyclicLR": "max_lr"}


@dataclass(frozen=True, slots=True)
class LrAdvice:
    """What the recommendation says about the learning rate.

    Attributes:
        at_step: Rate in force at the finding's step (None when no rate was recorded).
        peak: Highest rate of the run.
        scheduled: Whether the rate changed during the run (a schedule).
        scheduler: The schedule's class name, when known.
        new: The suggested rate (the peak of the schedule when scheduled), or None.
        text: One sentence for the recommendation.
        snippet: Code in the user's framework, keeping the optimizer class.
    """

    at_step: float | None
    peak: float | None
    scheduled: bool
    scheduler: str | None
    new: float | None
    text: str
    snippet: str | None

    def evidence(self) -> dict:
        return {"lr": self.at_step, "peak_lr": self.peak, "scheduler": self.scheduler, "suggested_lr": self.new}


def lr_at(h: History, step: int | None) -> float | None:
    """The learning rate in force at ``step``: the last sampled rate at or before it (else the first)."""
    steps, lr = h.series("lr")
    if not lr.size:
        return None
    if step is None:
        return float(lr[-1])
    i = int(np.searchsorted(steps, step, side="right")) - 1
    return float(lr[max(i, 0)])


def lr_advice(ctx: RuleContext, h: History, step: int | None, factor: float) -> LrAdvice:
    """Advice to multiply the learning rate by ``factor``, based on the rate at ``step`` and the peak."""
    _, lrs = h.series("lr")
    lrs = lrs[np.isfinite(lrs) & (lrs > 0)]
    verb = "Lower" if factor < 1 else "Raise"
    how = f"about {fmt(1 / factor) if factor < 1 else fmt(factor)}x"
    if not lrs.size:
        f = float(f"{factor:.2g}")
        return LrAdvice(None, None, False, h.scheduler, None, f"{verb} the learning rate {how}.", ctx.snippet(
            torch=f"for group in optimizer.param_groups:\n    group['lr'] *= {f:g}",
            keras=f"model.optimizer.learning_rate.assign(model.optimizer.learning_rate * {f:g})"))
    at, peak = lr_at(h, step), float(lrs.max())
    scheduled = h.scheduler is not None or float(lrs.min()) < 0.99 * peak
    opt = h.optimizer if h.optimizer and h.optimizer.isidentifier() else "Adam"  # code, from a logged name
    if not scheduled:
        new = _round(at * factor)
        return LrAdvice(at, peak, False, None, new, f"{verb} the learning rate {how}, to {new:g} (now {at:g}).",
                        ctx.snippet(torch=f"optimizer = torch.optim.{opt}(model.parameters(), lr={new:g})  # was {at:g}",
                                    keras=f"model.compile(optimizer=keras.optimizers.{opt}(learning_rate={new:g}), loss=model.loss)"
                                          f"  # was {at:g}"))
    # a schedule: scale the whole schedule, i.e. its peak; say what the rate was when it went wrong
    name = h.scheduler or "learning-rate schedule"
    where = f" at step {step}" if step is not None else ""
    if factor > 1 and at < 0.1 * peak:  # the problem began in the annealed tail: a low peak is not the cause
        return LrAdvice(at, peak, True, h.scheduler, None,
                        f"Do not raise the learning rate: it was {at:.3g}{where} only because the {name} schedule had "
                        f"annealed it from its peak of {peak:.3g}; the peak was not too low.", None)
    base = peak if factor < 1 else max(peak, at)
    new = _round(base * factor)
    text = (f"{verb} the learning rate {how}: it was {at:.3g}{where} under the {name} schedule, whose peak was "
            f"{peak:.3g}; scale the schedule to a peak of about {new:g}.")
    arg = _PEAK_ARG.get(name or "", "lr")
    if arg == "lr" or not name.isidentifier():
        torch_code = (f"optimizer = torch.optim.{opt}(model.parameters(), lr={new:g})  # peak was {peak:.3g}\n"
                      f"scheduler = ...  # the same {name}, rebuilt on this optimizer")
    else:
        torch_code = (f"scheduler = torch.optim.lr_scheduler.{name}(optimizer, {arg}={new:g})  "
                      f"# and its other arguments as before; {arg} was {peak:.3g}; optimizer stays torch.optim.{opt}")
    schedule = (f"keras.optimizers.schedules.{name}({new:g}, ...)  # initial/peak rate was {peak:.3g}"
                if name.isidentifier() else f"...  # the same {name}, with an initial/peak rate of {new:g} (was {peak:.3g})")
    keras_code = (f"schedule = {schedule}\n"
                  f"model.compile(optimizer=keras.optimizers.{opt}(learning_rate=schedule), loss=model.loss)")
    return LrAdvice(at, peak, True, h.scheduler, new, text, ctx.snippet(torch=torch_code, keras=keras_code))


def _round(x: float) -> float:
    return float(f"{x:.2g}")
