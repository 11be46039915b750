"""Issue 16, ND304's causes on models built the way the issue describes: a top-1 mixture-of-experts
that routes no token to some experts on one batch (info, with the routing evidence, not "never
called"), a ModuleList loop that really skips a layer (still "never ran"), and a LLaMA-style model
whose RMSNorm gains are all zero (the final norm on the main path is a fault, not a deliberate
residual scale)."""

from __future__ import annotations

import pytest

from netdoctor.findings import Severity

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


class MoE(nn.Module):
    def __init__(self, d: int = 16, experts: int = 8):
        super().__init__()
        self.router = nn.Linear(d, experts)
        self.experts = nn.ModuleList([nn.Sequential(nn.Linear(d, 32), nn.ReLU(), nn.Linear(32, d))
                                      for _ in range(experts)])

    def forward(self, x):
        logits = self.router(x)
        idx, gate = logits.argmax(-1), torch.softmax(logits, -1)
        out = torch.zeros_like(x)
        for k, expert in enumerate(self.experts):
            m = idx == k
            if m.any():
                out[m] = expert(x[m]) * gate[m, k:k + 1]
        return x + out


class MoENet(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp, self.moe, self.head = nn.Linear(10, 16), MoE(), nn.Linear(16, 3)
        with torch.no_grad():  # a skewed router: two experts take most tokens, as after a little training
            self.moe.router.bias[:] = torch.tensor([3.0, 3.0, 0, 0, 0, 0, -5.0, -5.0])

    def forward(self, x):
        return self.head(self.moe(torch.relu(self.inp(x))))


class Skipping(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(10, 10) for _ in range(4)])
        self.head = nn.Linear(10, 3)

    def forward(self, x):
        for layer in self.layers[:3]:  # layers.3 is never called
            x = torch.relu(layer(x))
        return self.head(x)


def _nd304(model, x, y, loss_fn):
    import netdoctor

    return [f for f in netdoctor.check(model, x, y, loss_fn=loss_fn).findings if f.code == "ND304"]


def test_moe_idle_experts_are_not_routed_not_unused():
    torch.manual_seed(0)
    x, y = torch.randn(32, 10), torch.randint(0, 3, (32,))
    found = _nd304(MoENet(), x, y, nn.CrossEntropyLoss())
    assert found, "idle experts must still be reported"
    for f in found:
        assert f.severity == Severity.INFO
        assert f.evidence["cause"].startswith("not-routed:")
        assert "never ran" not in f.message
        assert f.evidence["ran"] >= 1 and f.evidence["idle"]


class MaskMoE(nn.Module):
    """Top-1 mixture-of-experts computed densely: every expert runs on every row, and a one-hot mask
    (times the gate) keeps the chosen expert's output."""

    def __init__(self, d: int = 16, experts: int = 8):
        super().__init__()
        self.router = nn.Linear(d, experts)
        self.experts = nn.ModuleList([nn.Sequential(nn.Linear(d, 32), nn.ReLU(), nn.Linear(32, d))
                                      for _ in range(experts)])
        with torch.no_grad():  # a skewed router: two experts take every token
            self.router.bias.copy_(torch.tensor([3.0, 3.0, 0, 0, 0, 0, -5.0, -5.0]))

    def forward(self, x):
        logits = self.router(x)
        mask = F.one_hot(logits.argmax(-1), logits.shape[-1]).to(x.dtype) * logits.softmax(-1)
        return x + sum(e(x) * mask[:, k:k + 1] for k, e in enumerate(self.experts))


def test_densely_computed_moe_masked_experts_are_not_a_cut_graph():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), MaskMoE(), nn.Linear(16, 3))
    found = _nd304(model, torch.randn(32, 10), torch.randint(0, 3, (32,)), nn.CrossEntropyLoss())
    assert found
    for f in found:
        assert f.severity == Severity.INFO and f.evidence["cause"] == "masked:2.experts.*"
        assert "graph is cut on the way" not in f.message and "routing mask" in f.message
        assert f.evidence["fed"] == 2 and f.evidence["idle"] == ["2", "3", "4", "5", "6", "7"]


def test_really_unused_layer_in_a_module_list_stays_never_ran():
    torch.manual_seed(0)
    x, y = torch.randn(32, 10), torch.randint(0, 3, (32,))
    (f,) = _nd304(Skipping(), x, y, nn.CrossEntropyLoss())
    assert f.severity == Severity.WARNING
    assert f.evidence["cause"] == "unused" and "never ran" in f.message


def test_an_all_zero_probe_batch_is_named_as_the_cause_not_a_cut_graph():
    """A placeholder batch of zeros (a LightningModule's example_input_array = torch.zeros(...)) gives
    the first layer exactly zero gradient; that is the data's doing, not a cut graph."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3))
    (f,) = _nd304(model, torch.zeros(8, 12), torch.randint(0, 3, (8,)), nn.CrossEntropyLoss())
    assert f.layer == "0" and f.evidence["cause"] == "zero-data"
    assert "probe batch itself is all zeros" in f.message and "graph is cut" not in f.message


class RMSNorm(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class Block(nn.Module):
    def __init__(self, d: int):
        super().__init__()
        self.n1, self.n2 = RMSNorm(d), RMSNorm(d)
        self.attn = nn.MultiheadAttention(d, 2, batch_first=True, bias=False)
        self.up, self.down = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)

    def forward(self, x):
        h = self.n1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.down(F.silu(self.up(self.n2(x))))


class Llama(nn.Module):
    def __init__(self, zero_gains: bool, vocab: int = 50, d: int = 32, layers: int = 2):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList([Block(d) for _ in range(layers)])
        self.norm, self.lm = RMSNorm(d), nn.Linear(d, vocab, bias=False)
        if zero_gains:
            for m in self.modules():
                if isinstance(m, RMSNorm):
                    nn.init.zeros_(m.weight)

    def forward(self, t):
        x = self.emb(t)
        for b in self.blocks:
            x = b(x)
        return self.lm(self.norm(x))


def _lm_loss(o, y):
    return F.cross_entropy(o.reshape(-1, o.shape[-1]), y.reshape(-1))


def test_zero_rmsnorm_gain_on_the_main_path_is_a_fault():
    torch.manual_seed(0)
    t = torch.randint(0, 50, (8, 12))
    found = _nd304(Llama(zero_gains=True), t, t, _lm_loss)
    main = [f for f in found if f.evidence["cause"] == "zero-gain:norm"]
    assert main and main[0].severity == Severity.WARNING
    assert "emb" in main[0].evidence["layers"] and "lm" in main[0].evidence["layers"]
    assert not [f for f in found if f.evidence["cause"] == "zero-scale"]  # not explained as deliberate
    assert not _nd304(Llama(zero_gains=False), t, t, _lm_loss)


def test_zero_residual_scale_stays_deliberate():
    """A zero scale closing residual branches (zero_init_residual) with the final norm intact: info."""
    torch.manual_seed(0)
    t = torch.randint(0, 50, (8, 12))
    model = Llama(zero_gains=False)
    for b in model.blocks:
        nn.init.zeros_(b.n1.weight)
        nn.init.zeros_(b.n2.weight)
    found = _nd304(model, t, t, _lm_loss)
    assert found and all(f.severity == Severity.INFO for f in found)
    assert not any(f.evidence["cause"].startswith("zero-gain") for f in found)


def _keras_lm(zero_gains: bool, norm: str):
    """A LLaMA-style Keras model: RMS norms before attention/MLP branches and a final RMS norm before the head."""
    keras = pytest.importorskip("keras")
    from keras import layers

    def rms(name):
        if norm == "RMSNormalization":
            return layers.RMSNormalization(name=name)
        return layers.LayerNormalization(rms_scaling=True, name=name)

    keras.utils.set_random_seed(0)
    t = keras.Input((12,), dtype="int32")
    x = layers.Embedding(50, 32, name="emb")(t)
    for i in range(2):
        h = rms(f"n1_{i}")(x)
        x = layers.Add()([x, layers.MultiHeadAttention(2, 16, name=f"attn_{i}")(h, h)])
        h = rms(f"n2_{i}")(x)
        up = layers.Dense(128, activation="silu", use_bias=False, name=f"up_{i}")(h)
        x = layers.Add()([x, layers.Dense(32, use_bias=False, name=f"down_{i}")(up)])
    out = layers.Dense(50, use_bias=False, name="lm")(rms("norm")(x))
    model = keras.Model(t, out)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    if zero_gains:
        for layer in model.layers:
            if isinstance(layer, (layers.LayerNormalization, getattr(layers, "RMSNormalization", ()))):
                for w in layer.trainable_weights:
                    w.assign(w.numpy() * 0)
    return model


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
@pytest.mark.parametrize("norm", ["LayerNormalization-rms_scaling", "RMSNormalization"])
def test_keras_zero_rms_gain_on_the_main_path_is_a_fault(norm):
    import numpy as np

    import netdoctor

    t = np.random.default_rng(0).integers(0, 50, (8, 12)).astype("int32")
    found = [f for f in netdoctor.check(_keras_lm(True, norm), t, t).findings if f.code == "ND304"]
    main = [f for f in found if f.evidence["cause"] == "zero-gain:norm"]
    assert main and main[0].severity == Severity.WARNING, found
    assert "emb" in main[0].evidence["layers"] and "lm" in main[0].evidence["layers"]
    assert not [f for f in found if f.evidence["cause"] == "zero-scale"]
    assert "ND304" not in netdoctor.check(_keras_lm(False, norm), t, t).codes()


def test_keras_densely_computed_moe_masked_experts_are_not_never_ran_nor_cut():
    found = _keras_nd304(_keras_moe_model(masked=True))
    assert found
    for f in found:
        assert f.severity == Severity.INFO and f.evidence["cause"].startswith("masked:")
        assert "never ran" not in f.message and "graph is cut on the way" not in f.message
        assert f.evidence["fed"] == 2 and f.evidence["idle"] == [f"expert_{k}" for k in range(2, 8)]


def _keras_moe_model(skipping: bool = False, masked: bool = False):
    """A functional Keras model around a custom top-1 mixture-of-experts layer: each expert (a small
    Sequential, Keras-named ``expert_k`` with auto-named Dense layers inside) runs on the tokens routed to
    it; ``masked``: the Keras counterpart of MaskMoE, every expert on every row and a one-hot mask keeps
    one; with ``skipping`` the layer instead loops over the first three of four Dense layers."""
    keras = pytest.importorskip("keras")
    import numpy as np
    import tensorflow as tf
    from keras import layers, ops

    class MoE(layers.Layer):
        def __init__(self, d=16, n=8, **kw):
            super().__init__(**kw)
            self.router = layers.Dense(n, name="router")
            self.experts = [keras.Sequential([layers.Dense(32, activation="relu"), layers.Dense(d)], name=f"expert_{k}")
                            for k in range(n)]

        def build(self, shape):
            self.router.build(shape)
            for e in self.experts:
                e.build(shape)
            # a skewed router: two experts take most tokens, as after a little training
            self.router.bias.assign(np.array([3.0, 3.0, 0, 0, 0, 0, -5.0, -5.0], "float32"))

        def compute_output_shape(self, shape):
            return shape

        def call(self, x):
            logits = self.router(x)
            idx, gate = ops.argmax(logits, -1), ops.softmax(logits, -1)
            if masked:
                mask = ops.one_hot(idx, len(self.experts)) * gate
                return x + sum(expert(x) * mask[:, k:k + 1] for k, expert in enumerate(self.experts))
            out = ops.zeros_like(x)
            for k, expert in enumerate(self.experts):
                rows = tf.where(ops.equal(idx, k))[:, 0]
                if int(tf.size(rows)) == 0:
                    continue
                y = expert(tf.gather(x, rows)) * tf.gather(gate[:, k:k + 1], rows)
                out = tf.tensor_scatter_nd_add(out, rows[:, None], y)
            return x + out

    class Skipping(layers.Layer):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.stack = [layers.Dense(16, activation="relu") for _ in range(4)]

        def build(self, shape):
            for d in self.stack:
                d.build(shape)

        def compute_output_shape(self, shape):
            return shape

        def call(self, x):
            for d in self.stack[:3]:  # the fourth is never called
                x = d(x)
            return x

    keras.utils.set_random_seed(0)
    inp = keras.Input((10,))
    h = layers.Dense(16, activation="relu")(inp)
    h = (Skipping(name="block") if skipping else MoE(name="moe"))(h)
    model = keras.Model(inp, layers.Dense(3)(h))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _keras_nd304(model):
    import numpy as np

    import netdoctor

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(32, 10)).astype("float32"), rng.integers(0, 3, 32)
    return [f for f in netdoctor.check(model, x, y).findings if f.code == "ND304"]


def test_keras_moe_idle_experts_are_not_routed_not_unused():
    import numpy as np

    model = _keras_moe_model()
    before = [v.numpy().copy() for v in model.weights]
    found = _keras_nd304(model)
    assert found, "idle experts must still be reported"
    for f in found:
        assert f.severity == Severity.INFO
        assert f.evidence["cause"].startswith("not-routed:")
        assert "never ran" not in f.message
        assert f.evidence["ran"] == 2 and f.evidence["idle"] == [f"expert_{k}" for k in range(2, 8)]
    # observing the inner calls leaves the layers as they were: no instance attribute, same weights
    assert not any("call" in vars(layer) for layer in model._flatten_layers())
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, model.weights))


def test_keras_really_unused_inner_layer_stays_never_ran():
    (f,) = _keras_nd304(_keras_moe_model(skipping=True))
    assert f.severity == Severity.WARNING
    assert f.evidence["cause"] == "unused" and "never ran" in f.message
