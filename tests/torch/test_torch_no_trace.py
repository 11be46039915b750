"""The probe leaves the model and torch's global state exactly as it found them."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import netdoctor  # noqa: E402
from torch_helpers import collect  # noqa: E402
from netdoctor.errors import DataError, LossError  # noqa: E402


def _state(model: nn.Module) -> dict:
    return {
        "tensors": {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()},
        "training": {n: m.training for n, m in model.named_modules()},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "grad": {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()},
        "hooks": {n: (dict(m._forward_hooks), dict(m._forward_pre_hooks), dict(m._backward_hooks),
                      dict(m._forward_hooks_with_kwargs), dict(m._forward_pre_hooks_with_kwargs))
                  for n, m in model.named_modules()},
        "param_hooks": {n: getattr(p, "_backward_hooks", None) for n, p in model.named_parameters()},
        "rng": torch.get_rng_state(),
        "grad_enabled": torch.is_grad_enabled(),
        "threads": torch.get_num_threads(),
    }


def _assert_same(before: dict, after: dict) -> None:
    assert before["tensors"].keys() == after["tensors"].keys()
    for k, v in before["tensors"].items():
        w = after["tensors"][k]
        assert v.dtype == w.dtype and torch.equal(v, w), k
    assert before["training"] == after["training"]
    assert before["requires_grad"] == after["requires_grad"]
    for k, g in before["grad"].items():
        h = after["grad"][k]
        assert (g is None) == (h is None), k
        if g is not None:
            assert torch.equal(g, h), k
    assert before["hooks"] == after["hooks"]
    assert before["param_hooks"] == after["param_hooks"]
    assert torch.equal(before["rng"], after["rng"])
    assert before["grad_enabled"] == after["grad_enabled"]
    assert before["threads"] == after["threads"]


def _bn_dropout_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    model.eval()  # the probe switches to train mode and must switch back
    model[0].weight.requires_grad_(False)  # a frozen parameter
    return model


def test_bn_dropout_model_untouched():
    model = _bn_dropout_model()
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    nn.CrossEntropyLoss()(model(x), y).backward()  # pre-existing .grad on some params, None on the frozen one
    model[4].bias.grad = None
    before = _state(model)
    snap = collect(model, x, y, loss_fn=nn.CrossEntropyLoss())
    _assert_same(before, _state(model))
    assert snap.layer("0").weight.grad is None  # frozen stays frozen, gets no gradient
    assert snap.layer("4").param("bias").grad.l2 > 0
    # training mode was used: dropout zeroed about half of the activations
    assert 0.3 < snap.layer("3").output.frac_zero < 0.8
    # BN normalized with batch statistics (train mode), not the running ones
    assert abs(snap.layer("1").output.mean) < 0.2


def test_probe_is_seeded_and_repeatable():
    model = _bn_dropout_model()
    x = torch.randn(32, 8)
    a = collect(model, x, seed=3).layer("3").output
    b = collect(model, x, seed=3).layer("3").output
    c = collect(model, x, seed=4).layer("3").output
    assert a.mean == b.mean and a.mean != c.mean


def test_lstm_model_untouched():
    torch.manual_seed(0)
    model = nn.Sequential()
    lstm = nn.LSTM(4, 6, batch_first=True, dropout=0.2, num_layers=2)

    class Head(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = lstm
            self.fc = nn.Linear(6, 1)

        def forward(self, x):
            return self.fc(self.lstm(x)[0][:, -1])

    model = Head()
    x, y = torch.randn(16, 10, 4), torch.randn(16, 1)
    before = _state(model)
    collect(model, x, y, loss_fn=nn.MSELoss())
    _assert_same(before, _state(model))


def test_user_hooks_survive():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    calls = []
    handle = model[0].register_forward_hook(lambda m, i, o: calls.append(1))
    x = torch.randn(8, 4)
    before = _state(model)
    collect(model, x)
    _assert_same(before, _state(model))
    assert calls == [1]  # the user's hook ran once, in the probe forward
    handle.remove()


@pytest.mark.parametrize("case", ["bad_shape", "loss_raises", "loss_not_scalar"])
def test_restored_after_errors(case):
    model = _bn_dropout_model()
    x, y, bad = torch.randn(32, 8), torch.randint(0, 3, (32,)), torch.randn(32, 5)
    before = _state(model)
    if case == "bad_shape":
        with pytest.raises(DataError):
            collect(model, bad, y)
    elif case == "loss_raises":
        with pytest.raises(LossError):
            collect(model, x, y, loss_fn=lambda out, t: out.view(7, -1).sum())
    else:
        with pytest.raises(LossError):
            collect(model, x, y, loss_fn=nn.CrossEntropyLoss(reduction="none"))
    _assert_same(before, _state(model))
    assert not torch.overrides._is_torch_function_mode_enabled()


def test_check_leaves_no_trace_and_finds_nothing_odd():
    model = _bn_dropout_model()
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    before = _state(model)
    report = netdoctor.check(model, x, y, loss_fn=nn.CrossEntropyLoss())
    _assert_same(before, _state(model))
    assert report.targets[0].framework == "torch" and report.targets[0].batch_size == 32


@pytest.mark.parametrize("context", ["no_grad", "inference_mode"])
def test_gradients_even_inside_no_grad_or_inference_mode(context):
    model = _bn_dropout_model()
    ctx = torch.no_grad() if context == "no_grad" else torch.inference_mode()
    with ctx:
        x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
        snap = collect(model, x, y, loss_fn=nn.CrossEntropyLoss())
        assert not torch.is_grad_enabled()
    assert snap.layer("4").weight.grad.l2 > 0


def test_lightning_training_step_untouched():
    """A LightningModule probed through its own training_step (self.log, self.trainer) leaves no trace either."""
    L = pytest.importorskip("lightning")
    import torch.nn.functional as F

    class Lit(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _bn_dropout_model()

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = F.cross_entropy(self(x), y)
            self.log("train_loss", loss, prog_bar=True)
            self.log("epoch", float(self.trainer.current_epoch))
            return {"loss": loss}

    model = Lit()
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    before = _state(model)
    report = netdoctor.check(model, x, y)
    assert report.targets[0].loss == "training_step() -> cross_entropy"
    _assert_same(before, _state(model))
    assert model._trainer is None and "log" not in vars(model) and "log_dict" not in vars(model)


def test_lazy_modules_stay_lazy_and_the_report_says_a_copy_was_measured():
    torch.manual_seed(0)
    lazy = nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.Linear(8, 3))
    x, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    report = netdoctor.check(lazy, x, y)
    assert isinstance(lazy[0], nn.LazyLinear) and lazy[0].has_uninitialized_params()
    assert any("lazy modules (`0`)" in n and "left lazy" in n for n in report.targets[0].notes)
    assert report.targets[0].layers, "the copy was measured"


def test_user_hooks_are_kept_and_the_report_says_they_ran():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    calls: list[str] = []
    model[0].register_forward_hook(lambda *a: calls.append("fwd"))
    model[2].register_full_backward_hook(lambda *a: calls.append("bwd"))
    report = netdoctor.check(model, torch.randn(16, 4), torch.randint(0, 3, (16,)))
    assert any("own hooks on `0`, `2` ran" in n for n in report.targets[0].notes), report.targets[0].notes
    before = len(calls)
    model(torch.randn(2, 4)).sum().backward()
    assert len(calls) == before + 2, "the user's hooks are still registered and fire once each"
    plain = netdoctor.check(nn.Sequential(nn.Linear(4, 3)), torch.randn(8, 4), torch.randint(0, 3, (8,)))
    assert not any("hooks" in n for n in plain.targets[0].notes)
