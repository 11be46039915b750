"""Recurrent, attention, embedding and Hugging Face models; output and input containers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from torch_helpers import collect, names  # noqa: E402


class TextLSTM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 16)
        self.lstm = nn.LSTM(16, 24, batch_first=True)
        self.fc = nn.Linear(24, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, (h, c) = self.lstm(self.emb(ids))
        return self.fc(out[:, -1])


def test_lstm_with_embedding():
    torch.manual_seed(0)
    snap = collect(TextLSTM(), torch.randint(0, 50, (16, 12)), torch.randint(0, 2, (16,)))
    assert names(snap) == ["emb", "lstm", "fc"]
    emb, lstm, fc = snap.layers
    assert (emb.kind, lstm.kind, fc.kind) == ("embedding", "rnn", "linear")
    assert emb.consumes_model_input and not emb.entry and emb.input.dtype == "int64"
    assert emb.weight.role == "embedding" and emb.weight.units == 16 and emb.weight.fan_in is None
    roles = {p.name: p.role for p in lstm.params}
    assert roles == {"weight_ih_l0": "weight", "weight_hh_l0": "recurrent", "bias_ih_l0": "bias", "bias_hh_l0": "bias"}
    ih = lstm.param("weight")
    assert (ih.fan_in, ih.units) == (16, 96) and lstm.param("recurrent").fan_in == 24
    assert lstm.activation == "tanh" and lstm.attrs["hidden_size"] == 24 and lstm.attrs["batch_first"]
    assert lstm.inputs_from == ("emb",) and fc.inputs_from == ("lstm",)
    assert lstm.output.shape == (16, 12, 24)  # first element of the (out, (h, c)) tuple
    assert all(p.grad.l2 > 0 for p in lstm.params)
    assert not any(r.entry for r in snap.layers)  # token ids are not features
    assert snap.data.inputs["x"].unit_mean is None  # nor are they per-feature data


def test_gru_and_relu_rnn_time_major():
    class Seq(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(4, 8, num_layers=2)
            self.rnn = nn.RNN(8, 6, nonlinearity="relu")
            self.fc = nn.Linear(6, 2)

        def forward(self, x):
            h, _ = self.gru(x)
            h, _ = self.rnn(h)
            return self.fc(h[-1])

    torch.manual_seed(0)
    snap = collect(Seq(), torch.randn(7, 16, 4), torch.randint(0, 2, (16,)))
    gru, rnn, _ = snap.layers
    assert [p.name for p in gru.params if p.role == "recurrent"] == ["weight_hh_l0", "weight_hh_l1"]
    assert gru.entry and gru.input.unit_mean.shape == (4,)
    assert rnn.activation == "relu" and gru.activation == "tanh"


def test_transformer_encoder_trains_path_and_out_proj_not_executed():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.1, batch_first=True)
    enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    snap = collect(enc, torch.randn(8, 6, 16))
    assert names(snap)[:5] == ["layers.0.self_attn", "layers.0.self_attn.out_proj", "layers.0.dropout1",
                               "layers.0.norm1", "layers.0.linear1"]
    attn = snap.layer("layers.0.self_attn")
    assert attn.kind == "attention" and attn.executed and attn.entry
    assert [p.role for p in attn.params] == ["weight", "bias"] and attn.weight.fan_in == 16
    out_proj = snap.layer("layers.0.self_attn.out_proj")
    assert not out_proj.executed and out_proj.depth is None
    assert out_proj.weight.grad.l2 > 0  # used by the fused attention function, so it learns
    assert snap.layer("layers.0/relu").inputs_from == ("layers.0.linear1",)  # functional activation
    assert snap.layer("layers.0.linear1").activation == "relu"
    assert snap.layer("layers.0.norm1").inputs_from == ("layers.0.dropout1",)
    assert snap.layer("layers.0.norm1").consumes_model_input  # x + attn(x)
    assert snap.layer("layers.0.norm2").inputs_from == ("layers.0.norm1", "layers.0.dropout2")
    assert not snap.layer("layers.0.linear1").entry and not snap.layer("layers.1.self_attn").entry
    assert snap.residual is True
    assert snap.loss.source == "surrogate" and snap.notes


def test_hugging_face_bert_from_config():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                  intermediate_size=64, vocab_size=100, num_labels=3)
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(cfg)
    ids = torch.randint(0, 100, (8, 12))
    mask = torch.ones_like(ids)
    mask[:, 9:] = 0
    snap = collect(model, {"input_ids": ids, "attention_mask": mask}, torch.randint(0, 3, (8,)))
    assert snap.layers[0].name == "bert.embeddings.word_embeddings" and snap.layers[0].consumes_model_input
    assert snap.layer("bert.encoder.layer.0.intermediate.dense").activation == "gelu"
    gelu = snap.layer("bert.encoder.layer.0.intermediate.intermediate_act_fn/gelu")
    assert gelu.kind == "activation" and gelu.unit_active.shape == (64,)
    assert snap.layer("bert.pooler.dense").activation == "tanh"
    assert snap.layer("classifier").inputs_from == ("dropout",)
    ln = snap.layer("bert.encoder.layer.0.attention.output.LayerNorm")
    assert set(ln.inputs_from) == {"bert.embeddings.dropout", "bert.encoder.layer.0.attention.output.dropout"}
    assert snap.residual is True
    assert not any(r.entry for r in snap.layers)  # only token ids and a mask come in
    assert not any(r.consumes_model_input for r in snap.layers[1:])  # the mask is not data
    assert snap.output.final_layer == "classifier" and snap.output.stats.shape == (8, 3)
    assert snap.loss.name == "cross_entropy" and snap.loss.source == "default"
    connected = [p for r in snap.layers if r.executed for p in r.params if p.grad is not None]
    assert connected and all(p.grad.l2 > 0 for p in connected if p.name != "position_ids")
    # the model may compute its own loss from labels passed with the inputs
    own = collect(model, {"input_ids": ids, "labels": torch.randint(0, 3, (8,))})
    assert own.loss.source == "user" and own.loss.name == "model output .loss"


def test_embedding_and_numeric_features_entry():
    class Wide(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(20, 4)
            self.num = nn.Linear(3, 4)
            self.head = nn.Linear(8, 1)

        def forward(self, ids, feats):
            return self.head(torch.cat([self.emb(ids).mean(1), torch.relu(self.num(feats))], -1))

    rng = np.random.default_rng(0)
    ids, feats = rng.integers(0, 20, (16, 5)), rng.normal(size=(16, 3)) * 100
    snap = collect(Wide(), (ids, feats), rng.normal(size=(16, 1)))
    assert [r.name for r in snap.layers if r.entry] == ["num"]
    assert snap.layer("head").inputs_from == ("emb", "relu")
    assert set(snap.data.inputs) == {"x[0]", "x[1]"}
    assert snap.data.inputs["x[1]"].unit_std.shape == (3,) and snap.data.inputs["x[1]"].dtype == "float32"
    assert snap.data.target_kind == "float" and snap.loss.name == "mse"


@dataclasses.dataclass
class Out:
    score: torch.Tensor
    logits: torch.Tensor


class AttnNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.att = nn.MultiheadAttention(8, 2, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        a, _ = self.att(x, x, x)
        return Out(score=a.sum(), logits=self.fc(a + x).mean(1))


def test_output_containers():
    torch.manual_seed(0)
    x = torch.randn(4, 5, 8)
    snap = collect(AttnNet(), x, torch.randint(0, 3, (4,)))
    assert snap.output.stats.shape == (4, 3) and snap.output.num_outputs == 2  # .logits, not the first field
    assert snap.output.final_layer == "fc" and snap.residual is True

    class Tup(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            h = self.fc(x)
            return h, {"aux": h * 2}

    snap = collect(Tup(), torch.randn(8, 4), torch.randint(0, 2, (8,)))
    assert snap.output.stats.shape == (8, 2) and snap.output.num_outputs == 2
    seen = {}

    def loss_fn(output, target):
        seen["type"] = type(output)
        return nn.functional.cross_entropy(output[0], target)

    collect(Tup(), torch.randn(8, 4), torch.randint(0, 2, (8,)), loss_fn=loss_fn)
    assert seen["type"] is tuple  # the user's loss gets the raw output

    class Dict(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 2)

        def forward(self, x):
            return {"hidden": x, "logits": self.fc(x)}

    snap = collect(Dict(), torch.randn(8, 4))
    assert snap.output.final_layer == "fc" and snap.output.stats.shape == (8, 2)


def test_input_forms_are_converted():
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(3, 2)
            self.b = nn.Linear(5, 2)

        def forward(self, x, z=None):
            return self.a(x) + self.b(z)

    model = Two()
    x64 = np.random.default_rng(0).normal(size=(300, 3))  # float64 numpy, more rows than max_samples
    z = torch.randn(300, 5, dtype=torch.float64)
    snap = collect(model, (x64, z), max_samples=100)
    assert snap.batch_size == 100 and snap.layer("a").input.dtype == "float32"
    snap = collect(model, {"x": x64, "z": z})
    assert set(snap.data.inputs) == {"x", "z"} and snap.batch_size == 256
    assert [r.name for r in snap.layers if r.entry] == ["a", "b"]
    assert snap.residual is False  # two branches of the same depth are not a skip connection
    lists = collect(nn.Linear(3, 2), [[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]])
    assert lists.batch_size == 2 and lists.data.inputs["x"].shape == (2, 3)


def test_synthetic_inputs_from_shape():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))
    snap = collect(model, input_shape=(3, 8, 8))
    assert snap.synthetic_inputs and snap.data is None and snap.batch_size == 64
    assert "synthesized" in snap.missing[__import__("netdoctor").snapshot.Need.DATA]
    again = collect(model, input_shape=(3, 8, 8))
    assert again.layer("0").output.mean == snap.layer("0").output.mean  # seeded


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_model():
    model = nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3)).cuda()
    x = np.random.default_rng(0).normal(size=(64, 10))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    snap = collect(model, x, np.random.default_rng(1).integers(0, 3, 64))
    assert snap.layer("0").weight.grad.l2 > 0 and snap.layer("2").unit_active.shape == (16,)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_sparse_embedding_gradient_is_measured():
    model = nn.Sequential(nn.Embedding(30, 4, sparse=True), nn.Flatten(), nn.Linear(12, 2))
    x, y = torch.randint(0, 30, (8, 3)), torch.randint(0, 2, (8,))
    snap = collect(model, x, y)
    grad = snap.layer("0").weight.grad
    assert snap.loss.name == "cross_entropy"  # the default loss on class ids: the reference below
    ref, = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), [model[0].weight])
    assert ref.is_sparse and grad.shape == (30, 4) and grad.frac_nonfinite == 0
    assert grad.l2 == pytest.approx(float(ref.to_dense().norm()), rel=1e-6)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_submodule_is_one_opaque_record():
    from netdoctor.errors import UnsupportedModelError

    class Mixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.jit.script(nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU()))
            self.b = nn.Linear(8, 2)

        def forward(self, x):
            return self.b(self.a(x))

    model = Mixed()
    running = model.a[1].running_mean.clone()
    snap = collect(model, torch.randn(8, 4))
    a, b = snap.layers
    assert a.name == "a" and a.attrs["torchscript"] and not a.executed
    assert [p.name for p in a.params][:2] == ["0.weight", "0.bias"] and a.params[0].grad.l2 > 0
    assert b.executed and b.weight.grad.l2 > 0
    assert torch.equal(model.a[1].running_mean, running) and model.a.training
    with pytest.raises(UnsupportedModelError, match="TorchScript"):
        collect(torch.jit.script(nn.Linear(2, 2)), torch.randn(3, 2))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torch_compile_wrapper_is_unwrapped():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    snap = collect(torch.compile(model), torch.randn(8, 4))
    assert [r.name for r in snap.layers] == ["0", "1", "2"]


def test_bfloat16_model_gets_cast_inputs():
    model = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.GELU(), nn.Linear(8, 3)).to(torch.bfloat16)
    rng = np.random.default_rng(0)
    snap = collect(model, rng.normal(size=(16, 4)), rng.integers(0, 3, 16))
    assert snap.layer("0").input.dtype == "bfloat16" and snap.layer("0").weight.stats.dtype == "bfloat16"
    assert snap.layer("0").weight.grad.l2 > 0 and snap.layer("2").unit_active.shape == (8,)


def test_dict_as_one_positional_input():
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, batch):
            return self.fc(batch["feats"])

    snap = collect(Net(), ({"feats": np.ones((4, 3))},))
    assert snap.layer("fc").entry and set(snap.data.inputs) == {"x[0]['feats']"}
