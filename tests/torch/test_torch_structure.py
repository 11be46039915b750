"""Layer records of MLPs and CNNs: names, order, kinds, data flow, activations, params."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from torch_helpers import ALL_NEEDS, FunctionalNet, TinyResNet, collect, names  # noqa: E402
from netdoctor.snapshot import Need  # noqa: E402
from netdoctor.adapters.torch.stats import HOST_LIMIT  # noqa: E402


def test_mlp_records(mlp, xy):
    x, y = xy
    snap = collect(mlp, x, y, loss_fn=nn.CrossEntropyLoss())
    assert names(snap) == ["0", "1", "2", "3", "4"]
    assert [r.kind for r in snap.layers] == ["linear", "activation", "linear", "activation", "linear"]
    assert [r.activation for r in snap.layers] == ["relu", "relu", "tanh", "tanh", "linear"]
    assert [r.depth for r in snap.layers] == [0, None, 1, None, 2]
    assert [r.inputs_from for r in snap.layers] == [(), ("0",), ("1",), ("2",), ("3",)]
    assert [r.entry for r in snap.layers] == [True, False, False, False, False]
    assert snap.layers[0].consumes_model_input and not snap.layers[2].consumes_model_input
    assert snap.residual is False
    assert snap.collected == ALL_NEEDS
    assert snap.framework == "torch" and snap.model_class == "Sequential"
    assert snap.param_count == sum(p.numel() for p in mlp.parameters()) == snap.trainable_param_count
    assert snap.batch_size == 64 and not snap.synthetic_inputs


def test_weight_layer_params_fans_and_input_vectors(mlp, xy):
    x, y = xy
    snap = collect(mlp, x, y, loss_fn=nn.CrossEntropyLoss())
    fc1 = snap.layer("0")
    w, b = fc1.params
    assert (w.name, w.role, b.name, b.role) == ("weight", "weight", "bias", "bias")
    assert (w.fan_in, w.fan_out, w.units) == (10, 32, 32)
    assert w.duplicate_unit_frac == 0.0 and w.trainable
    assert w.stats.shape == (32, 10)
    assert w.stats.std == pytest.approx(mlp[0].weight.detach().std(unbiased=False).item(), rel=1e-4)
    assert w.grad is not None and w.grad.l2 > 0
    expected = torch.autograd.grad(nn.CrossEntropyLoss()(mlp(x), y), mlp[0].weight)[0]
    # the probe runs in train mode with the same batch: same gradient (no dropout here)
    assert w.grad.l2 == pytest.approx(expected.norm().item(), rel=1e-4)
    # ND101 reads per-feature vectors of what the entry layer sees (last axis of a Linear input)
    np.testing.assert_allclose(fc1.input.unit_mean, x.mean(0).numpy(), atol=1e-5)
    np.testing.assert_allclose(fc1.input.unit_std, x.std(0, unbiased=False).numpy(), atol=1e-4)
    assert fc1.attrs["in_features"] == 10 and fc1.attrs["out_features"] == 32 and fc1.attrs["use_bias"]


def test_unit_active_and_saturation(mlp, xy):
    x, y = xy
    snap = collect(mlp, x, y, loss_fn=nn.CrossEntropyLoss())
    relu, tanh = snap.layer("1"), snap.layer("3")
    h = torch.relu(mlp[0](x))
    np.testing.assert_allclose(relu.unit_active, (h > 0).float().mean(0).numpy(), atol=1e-6)
    assert relu.unit_saturated is None and tanh.unit_active is None
    assert tanh.unit_saturated.shape == (16,) and np.all(tanh.unit_saturated == 0)  # small init: no saturation
    with torch.no_grad():
        mlp[2].weight.mul_(100.0)
    hot = collect(mlp, x, y, loss_fn=nn.CrossEntropyLoss()).layer("3")
    assert hot.unit_saturated.mean() > 0.5


def test_dead_unit_is_measured(xy):
    x, y = xy
    model = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))
    with torch.no_grad():
        model[0].bias[:3] = -100.0  # units 0-2 never fire
    act = collect(model, x, y, loss_fn=nn.CrossEntropyLoss()).layer("1").unit_active
    assert np.all(act[:3] == 0.0) and np.all(act[3:] > 0.0)


class _ZeroFedReLUs(nn.Module):
    """fc1 and fc2 all zeros: the ReLU module and the functional relu after them get all-zero inputs."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.fc1, self.act1, self.fc2, self.fc3 = nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 8), nn.Linear(8, 3)
        self.inplace = inplace
        for fc in (self.fc1, self.fc2):
            nn.init.zeros_(fc.weight)
            nn.init.zeros_(fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc2(self.act1(self.fc1(x)))
        return self.fc3(torch.relu_(h) if self.inplace else torch.relu(h))


def test_activation_records_carry_input_stats(xy):
    import netdoctor
    from netdoctor.findings import Severity

    x, y = xy
    snap = collect(_ZeroFedReLUs(), x, y, loss_fn=nn.CrossEntropyLoss())
    module_relu, functional_relu = snap.layer("act1"), snap.layer("relu")
    assert module_relu.input.abs_max == 0.0 and functional_relu.input.abs_max == 0.0
    assert np.all(module_relu.unit_active == 0.0)  # never fired, but because its input is all zeros
    report = netdoctor.check(_ZeroFedReLUs(), x, y, loss_fn=nn.CrossEntropyLoss())
    assert not report.by_code("ND401")  # the zero weights are ND201's finding, not dead units
    assert {f.layer for f in report.by_code("ND201")} == {"fc1", "fc2"}
    assert [f.severity for f in report.by_code("ND304")] == [Severity.INFO] * len(report.by_code("ND304"))
    # a ReLU with a live input still gets it measured
    live = collect(nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3)), x, y).layer("1")
    assert live.input.abs_max > 0 and live.input.min < 0 <= live.output.min


def test_inplace_functional_activation_has_no_input_stats(xy):
    # relu_ overwrote its input before the probe saw it: no stale "input" taken from the output
    x, y = xy
    assert collect(_ZeroFedReLUs(inplace=True), x, y).layer("relu").input is None


def test_cnn_with_batchnorm_and_dropout():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1, groups=2, bias=False), nn.ReLU(), nn.Flatten(), nn.Dropout(0.3),
        nn.Linear(8 * 4 * 4, 5))
    x = torch.rand(16, 3, 8, 8) * 255  # raw pixel range: the entry conv sees it per channel
    snap = collect(model, x, torch.randint(0, 5, (16,)))
    kinds = [r.kind for r in snap.layers]
    assert kinds == ["conv", "batchnorm", "activation", "pool", "conv", "activation", "other", "dropout", "linear"]
    conv1, bn, _, _, conv2 = snap.layers[:5]
    assert conv1.activation == "relu" and conv1.attrs["norm_after"] is True and conv1.attrs["kernel_size"] == (3, 3)
    assert conv1.input.unit_mean.shape == (3,) and 100 < conv1.input.unit_mean[0] < 155
    assert conv1.entry and not conv2.entry
    w = conv2.weight
    assert (w.fan_in, w.fan_out, w.units) == (4 * 9, 8 * 9, 8) and conv2.attrs["groups"] == 2
    assert conv2.activation == "relu" and "norm_after" not in conv2.attrs
    assert snap.layer("2").unit_active.shape == (8,)  # channel axis of a 4-D activation
    assert [p.role for p in bn.params] == ["norm_scale", "norm_shift", "buffer", "buffer", "buffer"]
    assert bn.params[2].grad is None and not bn.params[2].trainable
    assert snap.layer("7").attrs["p"] == pytest.approx(0.3)
    assert snap.layer("8").activation == "linear" and snap.layer("8").inputs_from == ("7",)
    assert snap.loss.source == "default" and snap.loss.name == "cross_entropy"


def test_resnet_blocks_residual_and_inplace_relu():
    torch.manual_seed(0)
    snap = collect(TinyResNet(), torch.randn(8, 3, 8, 8), torch.randint(0, 10, (8,)), loss_fn=nn.CrossEntropyLoss())
    assert snap.residual is True
    # one nn.ReLU module used twice in a block: one record per call
    assert snap.layer("layer1.0.relu#2").inputs_from == ("relu", "layer1.0.bn2")
    assert snap.layer("layer1.1.relu#2").inputs_from == ("layer1.1.bn2", "layer1.1.downsample.1")
    assert snap.layer("layer1.0.conv2").activation == "relu"  # conv -> bn -> (+identity) -> relu
    assert snap.layer("layer1.1.downsample.0").inputs_from == ("layer1.0.relu#2",)
    assert [r.name for r in snap.layers if r.entry] == ["conv1"]
    assert snap.layer("fc").inputs_from == ("avgpool",)
    assert snap.output.final_layer == "fc" and snap.output.final_activation is None
    assert all(p.grad.l2 > 0 for _, p in snap.iter_params("weight"))


def test_functional_activations_and_residual_add():
    torch.manual_seed(0)
    snap = collect(FunctionalNet(), torch.randn(32, 6), torch.rand(32, 4).round(), loss_fn=nn.BCELoss())
    assert names(snap) == ["fc1", "relu", "fc2", "tanh", "relu#2", "fc3", "sigmoid"]
    assert snap.layer("relu").type_name == "relu" and snap.layer("relu").kind == "activation"
    assert snap.layer("relu#2").inputs_from == ("relu", "tanh")
    assert [snap.layer(n).activation for n in ("fc1", "fc2", "fc3")] == ["relu", "tanh", "sigmoid"]
    assert snap.layer("tanh").unit_saturated is not None and snap.layer("relu#2").unit_active is not None
    assert snap.residual is True
    assert snap.output.final_activation == "sigmoid" and snap.output.looks_like == "sigmoid"
    assert snap.loss.expects == "probabilities"


def test_functional_names_inside_submodules():
    class Inner(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            return torch.nn.functional.gelu(self.lin(x)).softmax(-1)

    model = nn.Sequential(Inner(), Inner())
    snap = collect(model, torch.randn(8, 4))
    assert names(snap) == ["0.lin", "0/gelu", "0/softmax", "1.lin", "1/gelu", "1/softmax"]
    assert snap.layer("1.lin").inputs_from == ("0/softmax",)
    assert snap.output.final_activation == "softmax" and snap.output.looks_like == "probabilities"


def test_layernorm_model_and_disconnected_layer():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(5, 8)
            self.norm = nn.LayerNorm(8)
            self.head = nn.Linear(8, 2)
            self.aux = nn.Linear(8, 2)  # runs, but its output is thrown away
            self.unused = nn.Linear(8, 8)  # never runs

        def forward(self, x):
            h = self.norm(self.fc(x))
            self.aux(h)
            return self.head(h)

    snap = collect(Net(), torch.randn(16, 5), torch.randn(16, 2), loss_fn=nn.MSELoss())
    assert names(snap) == ["fc", "norm", "aux", "unused", "head"]  # never-run: after its predecessor
    assert snap.layer("norm").kind == "layernorm" and snap.layer("fc").attrs["norm_after_kind"] == "layernorm"
    assert snap.layer("head").entry is False  # behind a LayerNorm: sees standardized data
    aux, unused = snap.layer("aux"), snap.layer("unused")
    assert aux.executed and not unused.executed and unused.depth is None and unused.calls == 0
    for rec in (aux, unused):
        for p in rec.params:
            assert p.grad is not None and p.grad.l2 == 0.0 and p.grad.frac_zero == 1.0
    assert snap.layer("head").weight.grad.l2 > 0
    assert snap.loss.name == "MSELoss" and snap.loss.expects == "any"


def test_frozen_params_get_no_gradient(mlp, xy):
    x, y = xy
    for p in mlp[0].parameters():
        p.requires_grad_(False)
    snap = collect(mlp, x, y, loss_fn=nn.CrossEntropyLoss())
    w = snap.layer("0").weight
    assert not w.trainable and w.grad is None
    assert snap.layer("2").weight.grad.l2 > 0
    assert snap.trainable_param_count == snap.param_count - 10 * 32 - 32


def test_duplicate_units_and_constant_init(xy):
    x, y = xy
    model = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))
    nn.init.constant_(model[0].weight, 0.5)
    snap = collect(model, x, y, loss_fn=nn.CrossEntropyLoss())
    assert snap.layer("0").weight.duplicate_unit_frac == pytest.approx(7 / 8)
    assert snap.layer("2").weight.duplicate_unit_frac == 0.0


@pytest.mark.parametrize("case", ["two equal rows", "rows with equal sums", "random"])
def test_duplicate_units_of_a_large_weight(case):
    """A weight beyond numpy's small-tensor path: its row sums come with its statistics and settle
    "all units differ" when they all differ; equal sums of different rows (a permutation) must still
    be told apart from equal rows."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(100, 64), nn.ReLU(), nn.Linear(64, 3))
    w = model[0].weight
    assert w.numel() > HOST_LIMIT
    with torch.no_grad():
        if case == "two equal rows":
            w[1] = w[0]
        elif case == "rows with equal sums":
            w[1] = w[0]
            w[1, 0], w[1, 1] = w[0, 1].item(), w[0, 0].item()  # two entries swapped: the same sum, another row
    x, y = torch.randn(32, 100), torch.randint(0, 3, (32,))
    got = collect(model, x, y, loss_fn=nn.CrossEntropyLoss()).layer("0").weight.duplicate_unit_frac
    assert got == pytest.approx(1 / 64 if case == "two equal rows" else 0.0)


def test_needs_limit_what_is_measured(mlp, xy):
    x, y = xy
    snap = collect(mlp, x, y, loss_fn=nn.CrossEntropyLoss(), needs=frozenset({Need.STRUCTURE}))
    assert snap.collected == {Need.STRUCTURE}
    fc = snap.layer("0")
    assert fc.output is None and fc.input is None and fc.weight.grad is None
    assert fc.activation == "relu" and fc.inputs_from == () and snap.layer("2").inputs_from == ("1",)
    assert snap.loss.value > 0


def test_max_units_caps_vectors(xy):
    x, y = xy
    model = nn.Sequential(nn.Linear(10, 40), nn.ReLU(), nn.Linear(40, 3))
    snap = collect(model, x, y, max_units=16)
    assert snap.layer("1").unit_active.shape == (16,)
    # a hidden layer's input: no rule reads per-unit moments, taken only where numpy gets them for
    # free (at most HOST_LIMIT entries: the head's output among them, whose stats are the output's)
    assert snap.layer("2").input.unit_mean.shape == (16,)
    wide = collect(nn.Sequential(nn.Linear(10, HOST_LIMIT + 1), nn.ReLU(), nn.Linear(HOST_LIMIT + 1, 3)), x, y,
                   max_units=16)
    assert wide.layer("2").input.unit_mean is None
    assert wide.output.stats.unit_mean.shape == (3,)
    wide = torch.randn(x.shape[0], 40)
    snap = collect(nn.Sequential(nn.Linear(40, 3)), wide, y, max_units=16)
    assert snap.layer("0").input.unit_mean.shape == (16,)  # the entry layer's: ND101 does
    np.testing.assert_allclose(snap.layer("0").input.unit_mean, wide[:, :16].mean(0).numpy(), atol=1e-5)


def test_suppressions_are_copied():
    import netdoctor

    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    netdoctor.allow(model[0], "ND201", reason="zero-init on purpose")
    netdoctor.allow(model, "ND301", reason="whole model")
    snap = collect(model, torch.randn(8, 4))
    assert snap.suppressions == {"0": {"ND201": "zero-init on purpose"}, "": {"ND301": "whole model"}}


def test_standardizing_module_and_hand_written_layers():
    class Normalize(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("mean", torch.tensor([120.0, 110.0, 100.0]).view(1, 3, 1, 1))
            self.register_buffer("std", torch.full((1, 3, 1, 1), 60.0))

        def forward(self, x):
            return (x - self.mean) / self.std

    class MyLinear(nn.Module):
        def __init__(self, i: int, o: int) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(o, i) / i ** 0.5)
            self.bias = nn.Parameter(torch.zeros(o))

        def forward(self, x):
            return nn.functional.linear(x, self.weight, self.bias)

    model = nn.Sequential(Normalize(), nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), MyLinear(4 * 4 * 4, 2))
    snap = collect(model, torch.rand(8, 3, 6, 6) * 255, torch.randint(0, 2, (8,)))
    norm, conv = snap.layers[:2]
    assert norm.kind == "preprocess" and [p.role for p in norm.params] == ["buffer", "buffer"]
    assert conv.entry and conv.inputs_from == ("0",)
    assert abs(conv.input.mean) < 1.0  # the entry layer sees standardized pixels
    head = snap.layer("4")
    assert head.kind == "linear" and head.weight.fan_in == 64 and head.weight.grad.l2 > 0
    assert head.inputs_from == ("3",) and not head.entry


def test_functional_weights_in_a_custom_root():
    class Raw(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.W1 = nn.Parameter(torch.randn(5, 8) * 0.3)
            self.b1 = nn.Parameter(torch.zeros(8))
            self.W2 = nn.Parameter(torch.randn(8, 2) * 0.3)

        def forward(self, x):
            return torch.sigmoid(x @ self.W1 + self.b1) @ self.W2

    snap = collect(Raw(), torch.randn(8, 5), torch.rand(8, 2).round(), loss_fn=nn.BCEWithLogitsLoss())
    assert names(snap) == ["", "sigmoid"]
    root = snap.layer("")
    assert root.kind == "other" and [p.name for p in root.params] == ["W1", "b1", "W2"]
    assert snap.layer("sigmoid").inputs_from == ("",)
    # x @ W2 after the sigmoid: the output is not a sigmoid output
    assert snap.output.final_activation is None and snap.output.final_layer == ""
    assert all(p.grad.l2 > 0 for p in root.params)


def test_conv1d_sequences_use_the_channel_axis():
    model = nn.Sequential(nn.Conv1d(4, 6, 3), nn.BatchNorm1d(6), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                          nn.Linear(6, 2))
    x = torch.randn(16, 4, 20)
    snap = collect(model, x, torch.randint(0, 2, (16,)))
    assert snap.layer("0").input.unit_mean.shape == (4,)  # (N, C, L): channels
    np.testing.assert_allclose(snap.layer("0").input.unit_mean, x.mean((0, 2)).numpy(), atol=1e-5)
    assert snap.layer("2").unit_active.shape == (6,)
    assert snap.data.inputs["x"].unit_mean.shape == (4,)


def test_channels_last_memory_format():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 8, 8).to(memory_format=torch.channels_last)
    snap = collect(model, x)
    ref = torch.relu(model[0](x))
    np.testing.assert_allclose(snap.layer("1").unit_active, (ref > 0).float().mean((0, 2, 3)).numpy(), atol=1e-6)


def test_shared_modules_in_a_loop():
    class Loop(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.cell = nn.RNNCell(3, 5)
            self.act = nn.Tanh()
            self.fc = nn.Linear(5, 2)

        def forward(self, x):
            h = torch.zeros(x.shape[0], 5)
            for t in range(x.shape[1]):
                h = self.act(self.cell(x[:, t], h))
            return self.fc(h)

    snap = collect(Loop(), torch.randn(8, 40, 3), torch.randn(8, 2))
    cell = snap.layer("cell")
    assert cell.calls == 40 and cell.kind == "rnn" and cell.param("recurrent").name == "weight_hh"
    acts = [r for r in snap.layers if r.name.startswith("act")]
    assert len(acts) == 32 and acts[-1].name == "act#32" and acts[-1].calls == 9  # capped per call site
    assert sum(r.calls for r in acts) == 40
    assert snap.layer("fc").inputs_from == ("act#32",)


@pytest.mark.parametrize("moments", [False, True])
def test_gradients_are_norms_unless_a_rule_needs_their_moments(moments):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    snap = collect(model, x, y, needs=ALL_NEEDS if moments else ALL_NEEDS - {Need.GRADIENT_MOMENTS})
    ref, = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), [model[0].weight])
    g = snap.layer("0").weight.grad
    assert snap.loss.name == "cross_entropy" and g.l2 == pytest.approx(float(ref.norm()), rel=1e-6)
    assert g.frac_nonfinite == 0 and (Need.GRADIENT_MOMENTS in snap.collected) == moments
    if moments:
        assert g.abs_mean == pytest.approx(float(ref.abs().mean()), rel=1e-6)
        assert g.frac_zero == float((ref == 0).float().mean()) and g.max == pytest.approx(float(ref.max()))
    else:  # not measured, and NaN says so (never a zero that reads as a dead gradient)
        assert all(np.isnan(getattr(g, f)) for f in ("mean", "std", "min", "max", "abs_max", "abs_mean", "frac_zero"))


def test_gradient_moments_are_missing_for_the_same_reason_as_the_gradients():
    model = nn.Sequential(nn.Linear(4, 2))
    for p in model.parameters():
        p.requires_grad_(False)
    snap = collect(model, torch.randn(8, 4), torch.randn(8, 2), loss_fn=nn.MSELoss())
    assert Need.GRADIENTS in snap.missing
    assert snap.missing[Need.GRADIENT_MOMENTS] == snap.missing[Need.GRADIENTS]


@pytest.mark.parametrize("sparsity", [False, True])
def test_abs_mean_and_frac_zero_of_large_tensors_are_measured_only_when_a_rule_needs_them(sparsity):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(200, 128), nn.ReLU(), nn.Linear(128, 4))  # 25600 weights, 32768 outputs
    x, y = torch.randn(256, 200), torch.randint(0, 4, (256,))
    snap = collect(model, x, y, needs=ALL_NEEDS if sparsity else ALL_NEEDS - {Need.SPARSITY})
    assert (Need.SPARSITY in snap.collected) == sparsity and Need.SPARSITY not in snap.missing
    w, hidden, relu = snap.layer("0").weight.stats, snap.layer("0").output, snap.layer("1").output
    weight = model[0].weight.detach()
    z = nn.functional.linear(x, weight, model[0].bias.detach())
    assert w.std == pytest.approx(float(weight.std(unbiased=False)), rel=1e-4)  # the moments either way
    assert hidden.mean == pytest.approx(float(z.mean()), rel=1e-4, abs=1e-6)
    # a ReLU's output: exact either way (its positives per unit give both)
    assert relu.abs_mean == pytest.approx(float(z.relu().mean()), rel=1e-5)
    assert relu.frac_zero == pytest.approx(float((z <= 0).float().mean()), abs=1e-7)
    large = [w, hidden, snap.data.inputs["x"]]  # signed, more than 16384 entries
    if sparsity:  # from the fixed subsample
        assert w.abs_mean == pytest.approx(float(weight.abs().mean()), rel=3e-2) and w.frac_zero == 0.0
        assert hidden.abs_mean == pytest.approx(float(z.abs().mean()), rel=3e-2)
    else:  # not measured: NaN, never a number that reads as dense or sparse
        assert all(np.isnan(st.abs_mean) and np.isnan(st.frac_zero) for st in large)


class _SubtractsInPlace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(10, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.sub_(1.0))  # standardizes its input in place


def _doubling_pre_hook(module: nn.Module, args: tuple) -> None:
    args[0].mul_(2.0)


def _write_first() -> list[tuple[str, nn.Module]]:
    hooked = nn.Sequential(nn.Linear(10, 3))
    hooked[0].register_forward_pre_hook(_doubling_pre_hook)
    return [
        ("inplace ReLU first", nn.Sequential(nn.ReLU(inplace=True), nn.Linear(10, 3))),
        ("inplace dropout in a nested Sequential", nn.Sequential(nn.Sequential(nn.Dropout(0.5, inplace=True)),
                                                                 nn.Linear(10, 3))),
        ("forward writes its input", _SubtractsInPlace()),
        ("a hook writes the input", hooked),
        ("a view first, then an inplace ReLU", nn.Sequential(nn.Flatten(), nn.ReLU(inplace=True), nn.Linear(10, 3))),
    ]


@pytest.mark.parametrize("case", range(5), ids=[n for n, _ in _write_first()])
def test_a_model_that_writes_into_its_input_leaves_the_callers_batch_untouched(case, xy):
    """The probe feeds a model its own copy of the batch unless the model provably only reads it; a
    model that writes into its input (in place, by a hook, through a view) must not change the caller's."""
    import netdoctor

    _, model = _write_first()[case]
    x, y = xy
    for inputs in (x, x.numpy()):
        before = inputs.clone() if isinstance(inputs, torch.Tensor) else inputs.copy()
        netdoctor.check(model, inputs, y)
        assert np.array_equal(np.asarray(inputs), np.asarray(before))


def test_which_models_only_read_their_input():
    from netdoctor.adapters.torch.io import reads_input_only

    class MySequential(nn.Sequential):
        pass

    assert reads_input_only(nn.Sequential(nn.Linear(4, 2), nn.ReLU(inplace=True)), hooked=False)
    assert reads_input_only(nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3)), nn.ReLU()), hooked=False)
    assert reads_input_only(nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 2)), hooked=False)
    assert not reads_input_only(nn.Sequential(nn.Linear(4, 2)), hooked=True)
    assert not reads_input_only(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), hooked=False)  # returns a view
    assert not reads_input_only(MySequential(nn.Linear(4, 2)), hooked=False)  # its own forward
    assert not reads_input_only(nn.Sequential(), hooked=False)
    assert not reads_input_only(_SubtractsInPlace(), hooked=False)
    handle = nn.modules.module.register_module_forward_pre_hook(lambda m, args: None)
    try:
        assert not reads_input_only(nn.Sequential(nn.Linear(4, 2)), hooked=False)
    finally:
        handle.remove()


@pytest.mark.parametrize("act", [nn.ReLU(), nn.ReLU(inplace=True), nn.ReLU6()])
def test_a_relus_maximum_from_its_input_is_its_measured_maximum(act, xy):
    """A plain ReLU's output maximum is taken from its input's statistics (no pass over the output):
    it must be what the output holds, also in place and for ReLU6 (inputs large enough to clip)."""
    x, y = xy
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 128), act, nn.Linear(128, 3))  # 64 x 128: beyond numpy's small path
    with torch.no_grad():
        model[0].weight.mul_(20.0)
    snap = collect(model, x, y, loss_fn=nn.CrossEntropyLoss())
    with torch.no_grad():
        out = type(act)()(model[0](x))
    assert snap.layer("1").output.max == pytest.approx(float(out.max()), rel=1e-6)
    assert snap.layer("1").output.min == pytest.approx(float(out.min()))


class _FunctionalRelu(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


class _OwnSequential(nn.Sequential):
    pass


def _layer_view(snap) -> list[tuple]:
    def st(s):
        return None if s is None else (s.shape, round(s.mean, 6), round(s.std, 6), s.min, s.max)

    return [(r.name, r.kind, r.type_name, r.activation, r.inputs_from, r.consumes_model_input, r.entry, r.depth,
             r.calls, r.executed, sorted(r.attrs.items()), st(r.input), st(r.output),
             None if r.unit_active is None else list(r.unit_active)) for r in snap.layers]


_UNTRACED = {
    "mlp": (lambda: nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Dropout(0.1), nn.Linear(16, 16), nn.Tanh(),
                                  nn.Linear(16, 3)), (32, 10)),
    "cnn": (lambda: nn.Sequential(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=True)),
                                  nn.MaxPool2d(2), nn.Identity(), nn.Flatten(), nn.Linear(4 * 3 * 3, 3)), (32, 3, 8, 8)),
}
_TRACED = {
    "functional relu inside": (lambda: nn.Sequential(nn.Linear(10, 16), _FunctionalRelu(), nn.Linear(16, 3)), (32, 10)),
    "a Sequential subclass": (lambda: _OwnSequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 3)), (32, 10)),
    "transformer encoder": (lambda: nn.Sequential(nn.TransformerEncoder(
        nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), 1, enable_nested_tensor=False),
        nn.Flatten(), nn.Linear(8 * 5, 3)), (32, 5, 8)),
}


def _probe_spy(monkeypatch, force: bool = False) -> list[bool]:
    """Record ``Probe.traced`` of every probe from now on (``force``: set it first, as the mode's reference)."""
    from netdoctor.adapters.torch import trace

    seen: list[bool] = []
    init = trace.Probe.__init__

    def spy(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.traced = self.traced or force
        seen.append(self.traced)

    monkeypatch.setattr(trace.Probe, "__init__", spy)
    return seen


@pytest.mark.parametrize("case", sorted(_UNTRACED) + sorted(_TRACED))
def test_sequential_of_builtin_layers_needs_no_function_mode(case, monkeypatch):
    """An exact ``nn.Sequential`` of recorded built-in layers is probed without the function mode, with the
    records the mode gives; anything with ops of its own between or inside layers keeps the mode."""
    make, shape = {**_UNTRACED, **_TRACED}[case]
    torch.manual_seed(0)
    model = make()
    x, y = torch.randn(*shape), torch.randint(0, 3, (shape[0],))
    seen = _probe_spy(monkeypatch)
    default = collect(model, x, y, loss_fn=nn.CrossEntropyLoss())
    assert seen == [case in _TRACED]
    monkeypatch.undo()
    forced = _probe_spy(monkeypatch, force=True)
    assert _layer_view(collect(model, x, y, loss_fn=nn.CrossEntropyLoss())) == _layer_view(default)
    assert forced == [True]
    if case == "functional relu inside":
        assert "1/relu" in names(default)


def test_a_hook_or_a_global_hook_keeps_the_function_mode(xy, monkeypatch):
    x, y = xy
    seen = _probe_spy(monkeypatch)
    model = nn.Sequential(nn.Linear(x.shape[1], 8), nn.ReLU(), nn.Linear(8, 3))
    collect(model, x, y)
    handle = model[1].register_forward_hook(lambda m, a, o: torch.relu(o))
    collect(model, x, y)
    handle.remove()
    handle = nn.modules.module.register_module_forward_hook(lambda m, a, o: None)
    try:
        collect(model, x, y)
    finally:
        handle.remove()
    assert seen == [False, True, True]
