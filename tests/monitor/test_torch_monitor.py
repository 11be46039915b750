"""netdoctor.watch on real short PyTorch runs: detection with the right step, silence on a healthy
run, no trace left on the model, hooks only around sampled steps."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import netdoctor  # noqa: E402
from netdoctor.findings import Report  # noqa: E402
from netdoctor.monitor import TrainingError, report_from_log  # noqa: E402

torch.set_num_threads(1)


def mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def train(model, opt, data, steps: int, monitor=None, nan_at: int | None = None, seed: int = 0, probe=None):
    """Minibatch training on digits; ``probe(t)`` runs after each step (for hook checks)."""
    x, y = (torch.from_numpy(a) for a in data)
    g = torch.Generator().manual_seed(seed)
    for t in range(steps):
        idx = torch.randint(0, len(x), (64,), generator=g)
        xb = x[idx].clone()
        if t == nan_at:
            xb[3, 5] = float("nan")
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), y[idx])
        loss.backward()
        opt.step()
        if monitor is not None:
            monitor.step(loss)
        if probe is not None:
            probe(t)


def train_with_exact_weight_norms(model, opt, x, y, mon, steps: int) -> dict[int, tuple[list[float], list[float]]]:
    """Adam steps on 64-row slices of ``x``; per step the exact weight norm and update ratio of
    each Linear layer, from full copies of the weights around the optimizer step. Closes ``mon``."""
    weights = [m.weight for m in model if isinstance(m, nn.Linear)]
    exact = {}
    for t in range(steps):
        before = [w.detach().clone() for w in weights]
        opt.zero_grad()
        rows = slice((t % 4) * 64, (t % 4 + 1) * 64)
        nn.functional.cross_entropy(model(x[rows]), y[rows]).backward()
        opt.step()
        exact[t] = ([float(w.detach().norm()) for w in weights],
                    [float((w.detach() - b).norm() / b.norm()) for w, b in zip(weights, before)])
        mon.step(torch.tensor(1.0))
    mon.close()
    return exact


class FixedScaler:
    """What the monitor reads from a ``torch.amp.GradScaler``: enabled, scale 1024."""

    def is_enabled(self) -> bool:
        return True

    def get_scale(self) -> float:
        return 1024.0


def hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


@pytest.mark.parametrize("every", [5, 50])
def test_healthy_digits_run_ends_clean(digits, every):
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with netdoctor.watch(model, opt, every=every) as mon:
        train(model, opt, digits, 400, mon)
    report = mon.report()
    assert isinstance(report, Report)
    assert report.findings == (), [f.message for f in report.findings]
    assert set(report.rules_run) >= {f"ND6{i:02d}" for i in range(1, 11)}
    target = report.targets[0]
    assert target.framework == "torch" and target.model_class == "Sequential"
    assert {row["layer"] for row in target.layers} == {"0", "2", "4"}
    h = mon.history()
    assert h.steps == 400 and len(h.samples) == len(range(0, 400, every))
    assert h.samples[0].act_dead is not None and h.samples[0].layer_update is not None


def test_nan_injected_at_a_known_step_is_flagged_at_that_step(digits, tmp_path):
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    log = tmp_path / "run.jsonl"
    with netdoctor.watch(model, opt, log_to=log) as mon:  # default every=50: the step is still exact
        train(model, opt, digits, 300, mon, nan_at=137)
    report = mon.report()
    (f,) = report.by_code("ND601")
    assert f.step == 137 and f.severity == netdoctor.Severity.ERROR
    assert [x.code for x in report.findings] == ["ND601"]  # NaN weights do not spawn follow-up findings
    assert [(x.code, x.step) for x in report_from_log(log).findings] == [("ND601", 137)]


def test_diverging_learning_rate_is_flagged_within_bounded_steps(digits):
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1.0)
    with netdoctor.watch(model, opt, every=10) as mon:
        train(model, opt, digits, 300, mon)
    report = mon.report()
    (f,) = report.by_code("ND602")
    assert f.step is not None and f.step <= 20 and f.severity == netdoctor.Severity.ERROR
    assert "lr=0.1" in f.snippet  # 10x lower than the measured learning rate
    assert report.by_code("ND607")  # the blow-up killed the second ReLU layer


def test_a_run_that_overflows_to_inf_gives_findings_not_numpy_warnings():
    """A learning rate of 1e3 on unscaled inputs takes the loss and the weights to Inf and NaN within
    a few steps: the monitor reports ND601, and numpy's RuntimeWarnings stay off the console."""
    import warnings

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    opt = torch.optim.SGD(model.parameters(), lr=1e3)
    x, y = torch.randn(64, 4) * 1e3, torch.randint(0, 3, (64,))
    before = np.geterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with netdoctor.watch(model, opt, every=2) as mon:
            for _ in range(12):
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                mon.step(loss)
    assert mon.report().by_code("ND601")
    assert np.geterr() == before


def test_on_error_raise_stops_a_diverging_regression_early():
    torch.manual_seed(0)
    x = torch.randn(256, 8) * 3
    y = x @ torch.randn(8, 1)
    model = nn.Linear(8, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)  # far above 2 / curvature
    mon = netdoctor.watch(model, opt, every=10, on_error="raise")
    first_nan = None
    with pytest.raises(TrainingError) as info:
        for t in range(500):
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
            if first_nan is None and not torch.isfinite(loss):
                first_nan = t
            mon.step(loss)
    mon.close()
    assert info.value.findings[0].code in ("ND601", "ND602")
    # raised at the first sampled step with a non-finite loss: the host half, batched on a model
    # this cheap, does not wait for its time budget then
    assert first_nan is not None and mon.history().steps <= first_nan + 10 + 1


def test_monitor_leaves_the_model_bit_for_bit_as_training_alone_would(digits):
    plain, watched = mlp(), mlp()
    opt_a = torch.optim.Adam(plain.parameters(), lr=1e-3)
    opt_b = torch.optim.Adam(watched.parameters(), lr=1e-3)
    train(plain, opt_a, digits, 60)
    seen = {}

    def probe(t):  # hooks exist only between the step before a sampled step and that step
        seen[t] = hooks(watched)

    mon = netdoctor.watch(watched, opt_b, every=10)
    train(watched, opt_b, digits, 60, mon, probe=probe)
    mon.close()
    for (na, a), (nb, b) in zip(plain.state_dict().items(), watched.state_dict().items()):
        assert na == nb and torch.equal(a, b), na
    assert hooks(watched) == 0 and mon._prev is None
    assert seen[3] == 0 and seen[9] == 2  # armed after step 9 for the sampled step 10
    assert all(p.grad is not None for p in watched.parameters())
    assert watched.training


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad_before_step_skips_gradient_rules_with_a_warning_instead_of_passing(digits, set_to_none):
    x, y = (torch.from_numpy(a) for a in digits)
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=3.0)  # the fading-gradient fault of the issue
    with pytest.warns(UserWarning, match=r"after loss.backward\(\) and before optimizer.zero_grad\(\)") as rec:
        with netdoctor.watch(model, opt, every=10) as mon:
            for t in range(60):
                loss = nn.functional.cross_entropy(model(x[t:t + 64]), y[t:t + 64])
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=set_to_none)
                mon.step(loss)  # too late: the gradients are gone
    assert len([w for w in rec if "zero_grad" in str(w.message)]) == 1  # said once
    report = mon.report()
    skipped = {s.code: s.reason for s in report.skipped}
    assert {"ND604", "ND608", "ND609"} <= set(skipped) and "zero_grad" in skipped["ND608"]
    assert not {"ND604", "ND608", "ND609"} & set(report.rules_run)
    assert all(s.grad_norm is None for s in mon.history().samples)


def test_step_accepts_floats_and_close_is_idempotent(digits):
    model = nn.Linear(4, 1)
    mon = netdoctor.watch(model, every=3)
    with pytest.warns(UserWarning, match="no gradient"):
        for t in range(10):
            mon.step(1.0 / (t + 1))
    mon.close()
    mon.close()
    h = mon.history()
    np.testing.assert_allclose(h.loss_values, [1.0 / (t + 1) for t in range(10)])
    assert h.samples[0].grad_norm is None and h.samples[0].lr is None
    with pytest.raises(RuntimeError, match="after monitor.close"):
        mon.step(0.1)


def test_plot_of_a_torch_run(digits, tmp_path):
    pytest.importorskip("matplotlib")
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with netdoctor.watch(model, opt, every=10) as mon:
        train(model, opt, digits, 100, mon, nan_at=70)
    path = mon.plot(tmp_path / "loss.png")
    assert open(path, "rb").read(4) == b"\x89PNG"


def test_grad_scaler_gradients_are_unscaled():
    norms = []
    for scaler in (None, FixedScaler()):
        model = mlp()
        mon = netdoctor.watch(model, every=1, grad_scaler=scaler)
        x, y = torch.randn(32, 64, generator=torch.Generator().manual_seed(0)), torch.arange(32) % 10
        loss = nn.functional.cross_entropy(model(x), y)
        (loss * (1024.0 if scaler else 1.0)).backward()
        mon.step(loss)
        mon.close()
        s = mon.history().samples[0]
        norms.append((s.grad_norm, s.layer_grad))
    assert norms[1][0] == pytest.approx(norms[0][0], rel=1e-5)
    np.testing.assert_allclose(norms[1][1], norms[0][1], rtol=1e-5)


def test_small_every_keeps_hooks_armed_once_and_still_measures_every_sample(digits):
    """At every <= 8 the activation hooks are registered once (a disarmed call is cheaper than
    registering around each sample); every sample still gets the dead fractions, the hooks only
    count armed calls, and close() removes them."""
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    counts = []
    mon = netdoctor.watch(model, opt, every=2)
    train(model, opt, digits, 20, mon, probe=lambda t: counts.append(hooks(model)))
    mon.close()
    assert set(counts) == {2} and hooks(model) == 0
    samples = mon.history().samples
    assert len(samples) == 10
    assert all(s.act_dead is not None and np.isfinite(s.act_dead).all() for s in samples)


def test_subsampled_weight_norms_and_update_ratios_are_within_one_percent_of_exact():
    """Tensors above 32768 entries are measured on a fixed strided subsample for the layer weight
    norm and the update ratio (a 1024x1024 copy per sample otherwise): compare with exact values
    computed from full copies of the weights around the same optimizer step."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(256, 64), torch.randint(0, 10, (256,))
    mon = netdoctor.watch(model, opt, every=5, activations=False)
    exact = train_with_exact_weight_norms(model, opt, x, y, mon, 11)
    s = mon.history().samples[-1]
    assert s.step == 10 and mon._wpicks[1] is not None  # the 1024x1024 weight is subsampled
    norms, ratios = exact[10]
    np.testing.assert_allclose(s.layer_weight, norms, rtol=0.01)
    np.testing.assert_allclose(s.layer_update, ratios, rtol=0.02)
    assert not np.allclose(s.layer_update, ratios, rtol=1e-7)  # really an estimate for the big layer


def test_validation_losses_reach_the_history_the_log_and_the_html_loss_chart(digits, tmp_path):
    from netdoctor.monitor.log import read_log

    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = (torch.from_numpy(a) for a in digits)
    log = tmp_path / "run.jsonl"
    with netdoctor.watch(model, opt, every=10, log_to=str(log)) as mon:
        for epoch in range(3):
            train(model, opt, digits, 20, mon, seed=epoch)
            with torch.no_grad():
                mon.validation(nn.functional.cross_entropy(model(x[:200]), y[:200]))
    h = mon.history()
    assert h.val_steps.tolist() == [19, 39, 59]
    assert h.val_values[0] > h.val_values[-1] and np.isfinite(h.val_values).all()
    replayed, _ = read_log(log)
    assert replayed.val_steps.tolist() == [19, 39, 59]
    np.testing.assert_allclose(replayed.val_values, h.val_values)
    html = mon.report().to_html()
    assert html.count('class="val-point"') == 3


def test_every_parameter_group_learning_rate_is_recorded_and_logged(digits, tmp_path):
    """Two parameter groups on different schedules: each group's rate is kept per sample and in
    the log; ``lr`` is the largest (the one that sets the step size)."""
    from netdoctor.monitor.log import read_log

    model = mlp()
    opt = torch.optim.SGD([{"params": model[0].parameters(), "lr": 0.01},
                           {"params": list(model[2].parameters()) + list(model[4].parameters()), "lr": 0.1}])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, [lambda t: 1.0, lambda t: 0.5 ** (t // 10)])
    log = tmp_path / "run.jsonl"
    with netdoctor.watch(model, opt, every=10, log_to=str(log), scheduler=sched) as mon:
        x, y = (torch.from_numpy(a) for a in digits)
        for t in range(40):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[:64]), y[:64]).backward()
            opt.step()
            mon.step(torch.tensor(1.0))
            sched.step()
    samples = mon.history().samples
    groups = np.vstack([s.lr_groups for s in samples])
    np.testing.assert_allclose(groups[:, 0], 0.01)
    np.testing.assert_allclose(groups[:, 1], [0.1, 0.05, 0.025, 0.0125])
    assert [s.lr for s in samples] == pytest.approx([0.1, 0.05, 0.025, 0.0125])
    replayed, meta = read_log(log)
    assert meta["param_groups"] == 2
    np.testing.assert_allclose(np.vstack([s.lr_groups for s in replayed.samples]), groups)


@pytest.mark.parametrize("every", [1, 4])
def test_a_clipping_loop_passes_the_norm_before_clipping(digits, every):
    """Gradients read after clip_grad_norm_ never exceed its limit; with grad_norm= the monitor
    records the norm before clipping and scales the per-layer norms back to it."""
    x, y = torch.from_numpy(digits[0]), torch.from_numpy(digits[1])
    for given in (False, True):
        model = mlp()
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        pre_total, pre_layers = [], []
        with netdoctor.watch(model, opt, every=every) as mon:
            for t in range(12):
                opt.zero_grad()
                nn.functional.cross_entropy(model(x[t * 32:(t + 1) * 32]), y[t * 32:(t + 1) * 32]).backward()
                pre_layers.append([m.weight.grad.norm().item() for m in model if isinstance(m, nn.Linear)])
                norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05)
                pre_total.append(norm.item())
                opt.step()
                mon.step(torch.tensor(1.0), grad_norm=norm if given else None)
        h = mon.history()
        if not given:  # what the old code recorded: the clipped norms, at the limit
            assert np.nanmax(h.grad_values) <= 0.05 * 1.001 < min(pre_total)
            continue
        np.testing.assert_allclose(h.grad_values, pre_total, rtol=1e-5)
        assert [s.step for s in h.samples] == list(range(0, 12, every))
        for s in h.samples:
            assert s.grad_norm == pytest.approx(pre_total[s.step], rel=1e-5)
            np.testing.assert_allclose(s.layer_grad, pre_layers[s.step], rtol=1e-4)


@pytest.mark.parametrize("every, steps", [(7, 60), (300, 700), (2200, 2300)])
def test_per_step_gradient_norms_match_the_exact_norm_and_skip_parameters_without_a_gradient(digits, every, steps):
    """Every step's loss and total gradient norm (the rows between sampled steps, several row
    buffers for a long window, one longer than 2048 steps recorded before its sample, and the
    sampled step itself) are the step's own; a parameter left out of the forward pass (no
    gradient) adds nothing, and the run does not fail on it."""
    class WithUnused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = mlp()
            self.unused = nn.Linear(64, 64)  # never called: its gradients stay None

        def forward(self, x):
            return self.net(x)

    model = WithUnused()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    exact: list[float] = []
    losses: list[float] = []

    def probe(t: int) -> None:
        exact.append(float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in model.parameters()
                                          if p.grad is not None))))

    # the probe runs after monitor.step(), before the next zero_grad(): the same gradients
    with netdoctor.watch(model, opt, every=every, live=False, max_samples=1024) as mon:
        real_step = mon.step
        mon.step = lambda loss: (losses.append(float(loss.detach())), real_step(loss))[1]
        train(model, opt, digits, steps, mon, probe=probe)
    h = mon.history()
    at, norms = h.step_grad_norms()
    assert at.tolist() == list(range(steps))
    np.testing.assert_allclose(norms, exact, rtol=1e-5)
    assert h.loss_steps.tolist() == list(range(steps))
    np.testing.assert_allclose(h.loss_values, losses, rtol=1e-6)


def test_the_host_half_reads_several_samples_per_transfer_and_report_sees_them_all(digits):
    """At every=1 on a cheap model the transfers are far fewer than one per 16 steps (the host
    half waits until its cost is a small share of the run), and report()/history() read what is
    still queued."""
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    mon = netdoctor.watch(model, opt, every=1, live=False, max_samples=1024)
    flushes = []
    real = mon._flush
    mon._flush = lambda: (flushes.append(len(mon._queue)), real())[1]
    train(model, opt, digits, 400, mon)
    assert 1 <= len(flushes) <= 400 // 32, flushes
    h = mon.history()  # reads the queue
    assert h.loss_steps.tolist() == list(range(400)) and [s.step for s in h.samples] == list(range(400))
    mon.close()


@pytest.mark.parametrize("every", [1, 3])
def test_update_ratios_of_every_sample_match_the_exact_ones(every):
    """At every=1 the weights copied after a sample are the ones that sample measured, so their
    norm is reused as the norm before the next update; the ratios stay those of full copies."""
    torch.manual_seed(0)
    model = mlp()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(256, 64), torch.randint(0, 10, (256,))
    mon = netdoctor.watch(model, opt, every=every, activations=False, live=False)
    exact = train_with_exact_weight_norms(model, opt, x, y, mon, 9)
    samples = mon.history().samples
    assert [s.step for s in samples] == list(range(0, 9, every))
    for s in samples[1:]:  # the first sample has no copy from before its update
        np.testing.assert_allclose(s.layer_weight, exact[s.step][0], rtol=1e-5)
        np.testing.assert_allclose(s.layer_update, exact[s.step][1], rtol=1e-4)


def test_the_fixed_subsample_reads_the_same_entries_of_contiguous_and_strided_tensors():
    from netdoctor.adapters.torch.monitor import _pick

    t = torch.randn(300, 200)
    s = _pick(t, above=1000, keep=2048, block=16)
    assert s.kept == 2048 and torch.equal(s.runs, s.runs.sort().values)
    flat = (s.runs[:, None] * 16 + torch.arange(16)).reshape(-1)
    assert torch.equal(s.of(t).reshape(-1), t.reshape(-1)[flat])
    tt = t.t()  # not contiguous: read in its logical (row-major) order
    assert torch.equal(s.of(tt).reshape(-1), tt.reshape(-1)[flat])
    out = torch.empty(len(s.runs), 16)
    assert s.of(t, out=out) is out and torch.equal(out.reshape(-1), t.reshape(-1)[flat])
    assert _pick(t, above=60000) is None  # small tensors are measured whole


def test_grad_scaler_scale_is_taken_out_of_the_per_step_norms_read_at_close():
    """The steps after the last sample (read at close()) are unscaled like the sampled ones."""
    runs = []
    for scaler in (None, FixedScaler()):
        model = mlp()
        mon = netdoctor.watch(model, every=5, grad_scaler=scaler, live=False)
        x, y = torch.randn(32, 64, generator=torch.Generator().manual_seed(0)), torch.arange(32) % 10
        for _ in range(3):  # step 0 is sampled, steps 1 and 2 are read at close()
            model.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            (loss * (1024.0 if scaler else 1.0)).backward()
            mon.step(loss)
        mon.close()
        runs.append(mon.history().step_grad_norms())
    assert runs[1][0].tolist() == runs[0][0].tolist() == [0, 1, 2]
    np.testing.assert_allclose(runs[1][1], runs[0][1], rtol=1e-5)


def test_per_step_norms_of_a_sparse_gradient_beside_a_missing_one_are_exact():
    """The one-call norm fails on a sparse gradient (nn.Embedding(sparse=True)) next to a parameter
    without a gradient: the fallback measures each, the sparse one with its repeated rows summed."""
    class Bag(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(50, 8, sparse=True)
            self.head = nn.Linear(8, 3)
            self.unused = nn.Linear(8, 8)  # never called: no gradient

        def forward(self, i):
            return self.head(self.emb(i).mean(1))

    torch.manual_seed(0)
    model = Bag()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    exact = []
    with netdoctor.watch(model, opt, every=3, live=False) as mon:
        for _ in range(8):
            opt.zero_grad()
            ids = torch.randint(0, 50, (4, 5))  # repeated ids: the sparse gradient has duplicate rows
            loss = nn.functional.cross_entropy(model(ids), torch.randint(0, 3, (4,)))
            loss.backward()
            exact.append(float(torch.sqrt(sum((p.grad.to_dense() if p.grad.is_sparse else p.grad).double().pow(2).sum()
                                              for p in model.parameters() if p.grad is not None))))
            mon.step(loss)
            opt.step()
    at, norms = mon.history().step_grad_norms()
    assert at.tolist() == list(range(8)) and model.emb.weight.grad.is_sparse
    np.testing.assert_allclose(norms, exact, rtol=1e-5)
