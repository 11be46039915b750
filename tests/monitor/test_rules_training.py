"""ND601-ND610 on hand-built histories: each rule fires on its symptom, names the step where it
started, needs persistence, and stays silent on healthy curves and on single unlucky batches."""

from __future__ import annotations

import re

import numpy as np
import pytest
from _monitor_helpers import make_history, noisy_decay, run_rule

from netdoctor.findings import Severity
from netdoctor.history import Sample
from netdoctor.rules import registry
from netdoctor.snapshot import Need

HISTORY_RULES = [f"ND6{i:02d}" for i in range(1, 11)]


def samples(every: int, n: int, **fields) -> list[Sample]:
    """``n`` samples every ``every`` steps; each field is a function of the sample index."""
    out = []
    for i in range(n):
        kw = {k: (f(i) if callable(f) else f) for k, f in fields.items()}
        out.append(Sample(step=i * every, **kw))
    return out


# -- documentation -----------------------------------------------------------------

CATALOGUE = {  # RULES.md: fixed names and default severities
    "ND601": ("nonfinite-loss", Severity.ERROR), "ND602": ("diverging-loss", Severity.ERROR),
    "ND603": ("stalled-loss", Severity.WARNING), "ND604": ("gradient-spikes", Severity.WARNING),
    "ND605": ("update-ratio", Severity.WARNING), "ND606": ("oscillating-loss", Severity.WARNING),
}
SECTIONS = ("## What it does", "## Why is this bad?", "## Example", "## Use instead", "## Options", "## References")


@pytest.mark.parametrize("code", HISTORY_RULES)
def test_rule_docs_follow_the_template_and_document_every_option(code):
    spec = registry()[code]
    if code in CATALOGUE:
        assert (spec.name, spec.severity) == CATALOGUE[code]
    assert spec.needs == {Need.HISTORY}
    assert spec.summary.endswith(".") and not spec.summary.startswith("#")
    positions = [spec.doc.find(s) for s in SECTIONS]
    assert all(p > 0 for p in positions) and positions == sorted(positions), code
    for option, default in spec.options.items():
        found = re.search(rf"``{option}`` \(default ([^)]+)\)", spec.doc)
        assert found and float(found.group(1)) == default, f"{code}: option {option} (default {default}) undocumented"


# -- ND601 nonfinite-loss ----------------------------------------------------------

def test_nd601_names_the_first_nonfinite_step():
    losses = noisy_decay(300)
    losses[137:] = np.nan
    (f,) = run_rule("ND601", make_history(losses))
    assert (f.code, f.step, f.severity) == ("ND601", 137, Severity.ERROR)
    assert "step 137" in f.message and "163 of 300" in f.message
    assert f.evidence["recovered"] is False


def test_nd601_rare_recovered_overflow_is_a_warning():
    losses = noisy_decay(1000)
    losses[500] = np.inf
    (f,) = run_rule("ND601", make_history(losses))
    assert f.step == 500 and f.severity == Severity.WARNING


def test_nd601_silent_on_finite_losses():
    assert run_rule("ND601", make_history(noisy_decay(500))) == []


# -- ND602 diverging-loss ----------------------------------------------------------

def test_nd602_steady_growth_names_where_it_began():
    losses = np.concatenate([noisy_decay(200, tau=40), 0.06 * 1.03 ** np.arange(200)])
    (f,) = run_rule("ND602", make_history(losses))
    assert f.severity == Severity.ERROR
    assert 200 <= f.step <= 260
    assert "limit" not in f.message or "2x" in f.message


def test_nd602_jump_of_two_orders_of_magnitude():
    losses = noisy_decay(300)
    losses[150:160] = 500.0
    (f,) = run_rule("ND602", make_history(losses))
    assert f.step == 150
    assert re.search(r"jumped from [\d.]+ to 500", f.message) and "limit 100x" in f.message


def test_nd602_ignores_one_bad_batch_and_noise_near_zero():
    losses = noisy_decay(300)
    losses[150] = 1e4  # one unlucky batch
    assert run_rule("ND602", make_history(losses)) == []
    tiny = np.concatenate([[2.3], np.full(400, 1e-5)])
    tiny[200:230] = 1e-3  # 100x, but still far below the starting loss
    assert run_rule("ND602", make_history(tiny)) == []


def test_nd602_silent_on_healthy_runs():
    for seed in range(5):
        assert run_rule("ND602", make_history(noisy_decay(600, noise=0.3, seed=seed))) == []


# -- ND603 stalled-loss ------------------------------------------------------------

def test_nd603_flat_at_the_initial_level():
    rng = np.random.default_rng(0)
    losses = 2.3 + 0.05 * rng.standard_normal(400)
    (f,) = run_rule("ND603", make_history(losses))
    assert f.severity == Severity.WARNING and f.step is not None and f.step <= 100
    assert "raise the learning rate" in f.recommendation


def test_nd603_converged_runs_are_not_stalls():
    losses = np.concatenate([noisy_decay(100, tau=20, end=0.01), noisy_decay(400, start=0.01, end=0.01)])
    assert run_rule("ND603", make_history(losses)) == []


def test_nd603_blow_up_then_flat_recommends_lowering_the_rate():
    rng = np.random.default_rng(1)
    losses = 2.3 + 0.05 * rng.standard_normal(400)
    losses[1:8] = 5000.0
    (f,) = run_rule("ND603", make_history(losses))
    assert "lower the learning rate" in f.recommendation


def test_nd603_still_improving_is_not_stalled():
    assert run_rule("ND603", make_history(noisy_decay(600, tau=400, end=0.5))) == []


# -- ND604 gradient-spikes ---------------------------------------------------------

def spiky_norms(n: int = 60, spikes: tuple[int, ...] = (20, 35, 50), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    g = np.exp(0.2 * rng.standard_normal(n))
    g[list(spikes)] *= 50.0
    return g


@pytest.mark.parametrize("framework,expected", [("torch", "clip_grad_norm_"), ("keras", "clipnorm=")])
def test_nd604_recommends_a_clip_norm_from_the_healthy_steps(framework, expected):
    g = spiky_norms()
    h = make_history(noisy_decay(600), samples(10, 60, grad_norm=lambda i: float(g[i])), every=10)
    (f,) = run_rule("ND604", h, framework=framework)
    assert f.step == 200 and f.evidence["spikes"] == 3
    healthy = np.delete(g, [20, 35, 50])
    clip = f.evidence["max_norm"]
    assert clip == pytest.approx(np.percentile(healthy, 95), rel=0.05)
    assert expected in f.snippet and f"{clip:g}" in f.snippet


def test_nd604_needs_several_spikes():
    g = spiky_norms(spikes=(20, 35))
    h = make_history(noisy_decay(600), samples(10, 60, grad_norm=lambda i: float(g[i])), every=10)
    assert run_rule("ND604", h) == []


def test_nd604_ignores_norms_back_at_the_early_training_scale():
    rng = np.random.default_rng(3)
    g = np.concatenate([np.full(10, 0.5), np.full(90, 0.002)]) * np.exp(0.2 * rng.standard_normal(100))
    g[[40, 55, 70, 85]] = 0.8  # 400x the converged median, but ordinary early-training gradients
    h = make_history(noisy_decay(1000), samples(10, 100, grad_norm=lambda i: float(g[i])), every=10)
    assert run_rule("ND604", h) == []


# -- ND605 update-ratio ------------------------------------------------------------

def ratio_history(ratio, losses=None, lr=1e-3, n=40, every=10):
    losses = noisy_decay(n * every) if losses is None else losses
    return make_history(losses, samples(every, n, layer_update=lambda i: np.full(2, ratio(i)),
                                        lr=lr if not callable(lr) else lr), every=every)


def test_nd605_too_high():
    (f,) = run_rule("ND605", ratio_history(lambda i: 0.3, lr=1.0))
    assert "above 0.1" in f.message and f.step == 0
    assert "Lower the learning rate about 300x, to 0.0033 (now 1)" in f.recommendation


def test_nd605_too_low_while_the_loss_stays_high():
    rng = np.random.default_rng(0)
    flat = 2.3 + 0.02 * rng.standard_normal(400)
    (f,) = run_rule("ND605", ratio_history(lambda i: 2e-6, losses=flat, lr=1e-4))
    assert "below 1e-4" in f.message and "Raise" in f.recommendation


def test_nd605_silent_when_converged_annealed_or_healthy():
    assert run_rule("ND605", ratio_history(lambda i: 2e-6, losses=noisy_decay(400, tau=30))) == []
    rng = np.random.default_rng(0)
    flat = 2.3 + 0.02 * rng.standard_normal(400)
    annealed = make_history(flat, samples(10, 40, layer_update=lambda i: np.full(2, 1e-3 if i < 10 else 1e-6),
                                          lr=lambda i: 0.1 if i < 10 else 1e-5), every=10)
    assert run_rule("ND605", annealed) == []
    assert run_rule("ND605", ratio_history(lambda i: 1e-3)) == []


def test_nd605_adam_warmup_transient_is_not_a_finding():
    h = make_history(noisy_decay(400), samples(1, 400, layer_update=lambda i: np.full(2, 0.3 if i < 30 else 1e-3),
                                                lr=1e-3), every=1)
    assert run_rule("ND605", h) == []


# -- ND606 oscillating-loss --------------------------------------------------------

def test_nd606_fast_alternation():
    rng = np.random.default_rng(0)
    t = np.arange(400)
    losses = 1.0 + 0.3 * (-1.0) ** t + 0.02 * rng.standard_normal(400)
    (f,) = run_rule("ND606", make_history(losses))
    assert f.evidence["pattern"] == "fast" and f.step == 0


def test_nd606_slow_swings_without_progress():
    rng = np.random.default_rng(0)
    t = np.arange(600)
    losses = 1.0 + 0.5 * np.sin(2 * np.pi * t / 40) * (t >= 200) + 0.02 * rng.standard_normal(600)
    (f,) = run_rule("ND606", make_history(losses))
    assert f.evidence["pattern"] == "slow" and 100 <= f.step <= 260


def test_nd606_silent_on_noise():
    for seed in range(5):
        assert run_rule("ND606", make_history(noisy_decay(800, noise=0.3, seed=seed))) == []
        rng = np.random.default_rng(seed)
        assert run_rule("ND606", make_history(0.01 * np.exp(0.8 * rng.standard_normal(800)))) == []


# -- ND607 dying-units / ND610 saturating-units ------------------------------------

@pytest.mark.parametrize("code,field,act", [("ND607", "act_dead", "relu"), ("ND610", "act_saturated", "tanh")])
def test_unit_trend_rules_fire_when_units_go_bad_and_stay_bad(code, field, act):
    h = make_history(noisy_decay(400), samples(10, 40, **{field: lambda i: np.asarray([0.02, 0.9 if i >= 12 else 0.05])}),
                     every=10, act_layers=("act1", "act2"), act_kinds=(act, act))
    (f,) = run_rule(code, h)
    assert f.layer == "act2" and f.step == 120 and "90%" in f.message and "limit 50%" in f.message


@pytest.mark.parametrize("code,field,act", [("ND607", "act_dead", "relu"), ("ND610", "act_saturated", "tanh")])
def test_unit_trend_rules_ignore_initial_state_and_transients(code, field, act):
    kw = dict(every=10, act_layers=("a",), act_kinds=(act,))
    from_start = make_history(noisy_decay(400), samples(10, 40, **{field: lambda i: np.asarray([0.9])}), **kw)
    transient = make_history(noisy_decay(400), samples(10, 40, **{field: lambda i: np.asarray([0.9 if i in (5, 6) else 0.0])}),
                             **kw)
    assert run_rule(code, from_start) == [] and run_rule(code, transient) == []


def test_nd607_ignores_activations_that_cannot_die():
    h = make_history(noisy_decay(400), samples(10, 40, act_dead=lambda i: np.asarray([0.9 if i > 5 else 0.0])),
                     every=10, act_layers=("a",), act_kinds=("leaky_relu",))
    assert run_rule("ND607", h) == []


# -- ND608 fading-gradients / ND609 growing-gradients ------------------------------

def test_nd608_gradient_vanishes_while_the_loss_is_high():
    rng = np.random.default_rng(0)
    flat = 2.3 + 0.05 * rng.standard_normal(400)
    h = make_history(flat, samples(10, 40, layer_grad=lambda i: np.asarray([0.5 if i < 8 else 0.0, 0.4])), every=10)
    (f,) = run_rule("ND608", h)
    assert f.layer == "fc1" and f.step == 80


def test_nd608_small_gradients_at_convergence_are_fine():
    h = make_history(noisy_decay(400, tau=20, end=1e-4), samples(10, 40, layer_grad=lambda i: np.full(2, 0.5 * 0.7 ** i)),
                     every=10)
    assert run_rule("ND608", h) == []


def test_nd609_sustained_growth_recommends_clipping():
    h = make_history(noisy_decay(400), samples(10, 40, grad_norm=lambda i: 0.5 * (1.4 ** i)), every=10)
    (f,) = run_rule("ND609", h)
    assert f.step == 140  # 0.5 * 1.4**14 = 55.7 >= 100 x 0.5
    assert "max_norm=" in f.snippet and f.evidence["max_norm"] < 50


def test_nd609_silent_on_moderate_growth():
    h = make_history(noisy_decay(400), samples(10, 40, grad_norm=lambda i: 0.5 * (1 + i / 4)), every=10)
    assert run_rule("ND609", h) == []


def test_sample_rules_ignore_samples_after_an_unrecovered_nan():
    losses = noisy_decay(400)
    losses[137:] = np.nan
    h = make_history(losses, samples(10, 40, grad_norm=lambda i: 0.5 if i < 14 else float("nan"),
                                     act_dead=lambda i: np.asarray([0.0 if i < 14 else 1.0])),
                     every=10, act_layers=("a",), act_kinds=("relu",))
    for code in ("ND604", "ND607", "ND609"):
        assert run_rule(code, h) == [], code


def test_options_override_thresholds():
    losses = noisy_decay(300)
    losses[150:160] = 20.0  # ~100-200x the level before the jump
    assert run_rule("ND602", make_history(losses), jump=1e4) == []
    assert run_rule("ND602", make_history(losses), jump=10.0)[0].step == 150
