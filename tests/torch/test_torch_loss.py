"""Probe loss: user losses, documented defaults, surrogate, output interpretation, needs."""

from __future__ import annotations

import functools

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from torch_helpers import collect  # noqa: E402
from netdoctor.adapters._common import REASON_NO_LOSS, REASON_SURROGATE  # noqa: E402
from netdoctor.errors import LossError  # noqa: E402
from netdoctor.snapshot import Need  # noqa: E402


def _head(final: nn.Module | None = None, out: int = 3) -> nn.Module:
    torch.manual_seed(0)
    layers = [nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, out)]
    return nn.Sequential(*layers, *([final] if final is not None else []))


X = torch.randn(32, 6, generator=torch.Generator().manual_seed(5))
Y = torch.randint(0, 3, (32,), generator=torch.Generator().manual_seed(6))


@pytest.mark.parametrize("loss_fn,name,expects", [
    (nn.CrossEntropyLoss(), "CrossEntropyLoss", "logits"),
    (F.cross_entropy, "cross_entropy", "logits"),
    (functools.partial(F.cross_entropy, label_smoothing=0.1), "cross_entropy", "logits"),
    (lambda out, t: F.cross_entropy(out, t), "custom loss", "any"),
])
def test_user_loss_expectations(loss_fn, name, expects):
    snap = collect(_head(), X, Y, loss_fn=loss_fn)
    assert (snap.loss.name, snap.loss.expects, snap.loss.source) == (name, expects, "user")
    assert snap.loss.value == pytest.approx(loss_fn(_head()(X), Y).item(), rel=1e-5)
    assert Need.LOSS in snap.collected and not snap.notes


@pytest.mark.parametrize("final,loss_fn,expects,looks,final_act", [
    (nn.Softmax(dim=1), nn.NLLLoss(), "log_probabilities", "probabilities", "softmax"),
    (nn.LogSoftmax(dim=1), nn.NLLLoss(), "log_probabilities", "log_probabilities", "log_softmax"),
    (nn.Sigmoid(), nn.BCELoss(), "probabilities", "sigmoid", "sigmoid"),
    (None, nn.BCEWithLogitsLoss(), "logits", "logits", None),
    (None, nn.MSELoss(), "any", "logits", None),
])
def test_output_interpretation(final, loss_fn, expects, looks, final_act):
    target = Y if isinstance(loss_fn, nn.NLLLoss) else torch.rand(32, 3).round()
    snap = collect(_head(final), X, target, loss_fn=loss_fn)
    assert snap.loss.expects == expects
    assert snap.output.looks_like == looks and snap.output.final_activation == final_act
    assert snap.output.final_layer == ("2" if final is None else "3")


def test_default_loss_for_class_targets_follows_the_output():
    logits = collect(_head(), X, Y)
    assert (logits.loss.name, logits.loss.expects, logits.loss.source) == ("cross_entropy", "logits", "default")
    assert logits.loss.value == pytest.approx(F.cross_entropy(_head()(X), Y).item(), rel=1e-5)
    probs = collect(_head(nn.Softmax(dim=1)), X, Y)
    assert probs.loss.name == "nll_loss(log(output))" and probs.loss.expects == "probabilities"
    logp = collect(_head(nn.LogSoftmax(dim=1)), X, Y)
    assert logp.loss.name == "nll_loss"
    binary = collect(_head(nn.Sigmoid(), out=1), X, torch.randint(0, 2, (32, 1)))
    assert binary.loss.name == "binary_cross_entropy"
    binary_logits = collect(_head(out=1), X, torch.randint(0, 2, (32,)))
    assert binary_logits.loss.name == "binary_cross_entropy_with_logits"
    for snap in (logits, probs, binary):
        assert Need.LOSS not in snap.collected and snap.missing[Need.LOSS] == REASON_NO_LOSS
        assert Need.GRADIENTS in snap.collected and snap.notes
    assert logits.data.target_kind == "class_index"


def test_default_loss_sequence_and_float_targets():
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(10, 4)
            self.fc = nn.Linear(4, 5)

        def forward(self, ids):
            return self.fc(self.emb(ids))  # (N, S, C)

    snap = collect(Tagger(), torch.randint(0, 10, (8, 7)), torch.randint(0, 5, (8, 7)))
    assert snap.loss.name == "cross_entropy" and snap.layer("fc").weight.grad.l2 > 0
    reg = collect(_head(out=1), X, torch.randn(32))
    assert reg.loss.name == "mse" and reg.loss.expects == "any"
    with pytest.raises(LossError, match="pass loss_fn"):
        collect(_head(), X, torch.randn(32, 7))


def test_surrogate_without_targets():
    snap = collect(_head(), X)
    assert (snap.loss.source, snap.loss.name, snap.loss.expects) == ("surrogate", "surrogate_mse", "any")
    assert any("surrogate" in n for n in snap.notes)
    assert snap.missing[Need.LOSS] == REASON_SURROGATE
    assert all(p.grad.l2 > 0 for _, p in snap.iter_params("weight"))
    assert collect(_head(), X).loss.value == snap.loss.value  # seeded targets


def test_a_classification_loss_without_targets_runs_on_synthesized_labels():
    # the given loss is knowable: it is used on seeded random class indices, not replaced by a surrogate
    snap = collect(_head(), X, loss_fn=nn.CrossEntropyLoss())
    assert (snap.loss.source, snap.loss.name, snap.loss.expects) == ("user", "CrossEntropyLoss", "logits")
    assert Need.LOSS in snap.collected and any("random labels" in n for n in snap.notes)
    assert collect(_head(), X, loss_fn=nn.CrossEntropyLoss()).loss.value == snap.loss.value
    # a regression loss cannot get made-up targets: surrogate, and the note says the given loss was not used
    mse = collect(_head(), X, loss_fn=nn.MSELoss())
    assert mse.loss.source == "surrogate" and any("MSELoss needs targets" in n for n in mse.notes)


def test_loss_errors_are_one_line():
    with pytest.raises(LossError) as err:
        collect(_head(), X, Y, loss_fn=lambda out, t: out.view(7, -1).sum())
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("loss_fn (custom loss) raised") and "check that loss_fn" in msg
    with pytest.raises(LossError, match=r"shape \(32,\), not a scalar"):
        collect(_head(), X, Y, loss_fn=nn.CrossEntropyLoss(reduction="none"))
    with pytest.raises(LossError, match="not loss.item"):
        collect(_head(), X, Y, loss_fn=lambda out, t: F.cross_entropy(out, t).item())


def test_detached_loss_gives_zero_gradients_and_a_note():
    snap = collect(_head(), X, Y, loss_fn=lambda out, t: F.cross_entropy(out.detach(), t))
    assert Need.GRADIENTS in snap.collected
    assert all(p.grad.l2 == 0 for _, p in snap.iter_params())
    assert any("not connected" in n for n in snap.notes)


def test_model_without_trainable_params():
    model = _head()
    model.requires_grad_(False)
    snap = collect(model, X, Y)
    assert Need.GRADIENTS not in snap.collected and "no trainable" in snap.missing[Need.GRADIENTS]


@pytest.mark.parametrize("loss_fn,ratio", [
    (nn.CrossEntropyLoss(), 2.0), (nn.CrossEntropyLoss(reduction="sum"), 1.0), (nn.NLLLoss(), 2.0),
])
def test_a_stock_loss_has_the_sum_ratio_its_reduction_gives(loss_fn, ratio):
    """torch's own losses: the ratio their reduction fixes, the one the halves measure for the same loss
    written as a function."""
    from netdoctor.adapters.torch.loss import stock_sum_ratio

    assert stock_sum_ratio(loss_fn, Y) == ratio
    measured = collect(_head(), X, Y, loss_fn=lambda out, y: loss_fn(out, y)).loss_probe.sum_ratio
    assert measured == pytest.approx(ratio, rel=1e-5)
    assert collect(_head(), X, Y, loss_fn=loss_fn).loss_probe.sum_ratio == ratio


def test_a_weighted_ignoring_or_subclassed_stock_loss_is_measured():
    from netdoctor.adapters.torch.loss import stock_sum_ratio

    class Halved(nn.MSELoss):
        def forward(self, out, y):
            return super().forward(out, y) / 2

    ignored = Y.clone()
    ignored[:5] = -100  # ignore_index: the mean runs over the other rows, unevenly split between the halves
    assert stock_sum_ratio(nn.CrossEntropyLoss(), ignored) is None
    assert stock_sum_ratio(nn.CrossEntropyLoss(weight=torch.ones(3)), Y) is None
    assert stock_sum_ratio(Halved(), Y.float()) is None
    assert stock_sum_ratio(nn.MSELoss(), torch.randn(32)) == 2.0
    snap = collect(_head(), X, ignored, loss_fn=nn.CrossEntropyLoss())
    assert snap.loss_probe.sum_ratio == pytest.approx(2.0, rel=0.2) and snap.loss_probe.sum_ratio != 2.0
