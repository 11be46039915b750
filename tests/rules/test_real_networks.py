"""Calibration on real, healthy networks: no error-severity finding, and only the listed warnings.

Each case names the warnings it is allowed to produce (ideally none) so that a rule change that
starts crying wolf on ResNet/MobileNet/Transformer/LSTM/BERT fails here. Keras applications
are marked slow (a few seconds each).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from netdoctor.findings import Severity

os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def _check(model, x, y=None, loss_fn=None, allowed_warnings=frozenset()):
    import netdoctor

    report = netdoctor.check(model, x, y, loss_fn=loss_fn)
    listing = "\n".join(f"{f.code} {f.severity} {f.layer}: {f.message}" for f in report.findings)
    errors = [f for f in report.findings if f.severity == Severity.ERROR]
    assert not errors, f"error findings on a healthy network:\n{listing}"
    warned = {f.code for f in report.findings if f.severity == Severity.WARNING}
    assert warned <= set(allowed_warnings), f"unexpected warnings:\n{listing}"
    return report


# -- torch -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data[:256] / 16.0, d.target[:256]


def test_torch_transformer_encoder(torch):
    nn = torch.nn
    torch.manual_seed(0)

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(100, 32)
            layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.head = nn.Linear(32, 3)

        def forward(self, x):
            return self.head(self.encoder(self.emb(x)).mean(1))

    x = torch.randint(0, 100, (32, 16))
    _check(Classifier(), x, torch.randint(0, 3, (32,)), nn.CrossEntropyLoss())


def test_torch_lstm_classifier(torch):
    nn = torch.nn
    torch.manual_seed(0)

    class LSTMClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(100, 32)
            self.lstm = nn.LSTM(32, 64, num_layers=2, batch_first=True)
            self.head = nn.Linear(64, 3)

        def forward(self, x):
            out, _ = self.lstm(self.emb(x))
            return self.head(out[:, -1])

    x = torch.randint(0, 100, (32, 20))
    _check(LSTMClassifier(), x, torch.randint(0, 3, (32,)), nn.CrossEntropyLoss())


def _resnet(torch, zero_init_residual: bool):
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c)
            self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c)
            if zero_init_residual:
                nn.init.zeros_(self.bn2.weight)  # each block starts as the identity (Goyal et al.)

        def forward(self, x):
            return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                          *[Block(16) for _ in range(4)], nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model


@pytest.mark.parametrize("zero_init_residual", [False, True])
def test_torch_residual_cnn_with_batchnorm(torch, digits, zero_init_residual):
    x = torch.tensor(digits[0], dtype=torch.float32).reshape(-1, 1, 8, 8)[:128]
    report = _check(_resnet(torch, zero_init_residual), x, torch.tensor(digits[1][:128]),
                    torch.nn.CrossEntropyLoss())
    if zero_init_residual:  # explained, at info level, by ND304
        [f] = report.by_code("ND304")
        assert f.severity == Severity.INFO and f.evidence["cause"] == "zero-scale"


def test_torch_layer_scale_of_one_millionth(torch, digits):
    nn = torch.nn

    class ConvNeXtBlock(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.dwconv = nn.Conv2d(c, c, 7, padding=3, groups=c)
            self.norm = nn.GroupNorm(1, c)
            self.pw1 = nn.Conv2d(c, 4 * c, 1)
            self.pw2 = nn.Conv2d(4 * c, c, 1)
            self.gamma = nn.Parameter(torch.full((c, 1, 1), 1e-6))  # layer scale

        def forward(self, x):
            return x + self.gamma * self.pw2(nn.functional.gelu(self.pw1(self.norm(self.dwconv(x)))))

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 16, 2, stride=2), nn.GroupNorm(1, 16), *[ConvNeXtBlock(16) for _ in range(3)],
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
    x = torch.tensor(digits[0], dtype=torch.float32).reshape(-1, 1, 8, 8)[:128]
    _check(model, x, torch.tensor(digits[1][:128]), nn.CrossEntropyLoss())


def test_torch_zero_initialized_head(torch, digits):
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    nn.init.zeros_(model[4].weight)
    nn.init.zeros_(model[4].bias)
    report = _check(model, torch.tensor(digits[0], dtype=torch.float32), torch.tensor(digits[1]),
                    nn.CrossEntropyLoss())
    assert [f.severity for f in report.by_code("ND201")] == [Severity.INFO]
    assert all(f.severity == Severity.INFO for f in report.by_code("ND304"))
    assert not report.by_code("ND301") and not report.by_code("ND503")


def test_torch_vit_with_zero_initialized_head(torch, digits):
    """torchvision's ViT zeroes its head: every gradient below it is zero at step 0, by construction,
    including the attention out_proj that MultiheadAttention runs inside its fused kernel."""
    nn = torch.nn

    class TinyViT(nn.Module):
        def __init__(self, d: int = 32) -> None:
            super().__init__()
            self.patch = nn.Conv2d(1, d, kernel_size=2, stride=2)
            self.cls = nn.Parameter(torch.zeros(1, 1, d))
            self.pos = nn.Parameter(torch.randn(1, 17, d) * 0.02)
            layer = nn.TransformerEncoderLayer(d, nhead=4, dim_feedforward=64, dropout=0.0, batch_first=True,
                                               norm_first=True, activation="gelu")
            self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, 10)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

        def forward(self, x):
            p = self.patch(x).flatten(2).transpose(1, 2)
            h = torch.cat([self.cls.expand(len(x), -1, -1), p], dim=1) + self.pos
            return self.head(self.norm(self.encoder(h))[:, 0])

    torch.manual_seed(0)
    x = torch.tensor(digits[0], dtype=torch.float32).reshape(-1, 1, 8, 8)[:128]
    report = _check(TinyViT(), x, torch.tensor(digits[1][:128]), nn.CrossEntropyLoss())
    [f] = report.by_code("ND304")
    assert f.severity == Severity.INFO and f.evidence["cause"] == "zero-head:head"
    assert "encoder.layers.0.self_attn.out_proj" in f.evidence["layers"] and "patch" in f.evidence["layers"]


def test_torch_vgg_style_classifier_with_small_std(torch, digits):
    """torchvision's VGG initializes every classifier Linear with N(0, 0.01) on purpose."""
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 4, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, 128), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(128, 10))
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)
    x = torch.tensor(digits[0], dtype=torch.float32).reshape(-1, 1, 8, 8)
    report = _check(model, x, torch.tensor(digits[1]), nn.CrossEntropyLoss())
    assert {(f.layer, f.severity) for f in report.by_code("ND203")} == {("9", Severity.INFO), ("12", Severity.INFO)}


def test_torch_bert_from_a_small_config(torch):
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    cfg = transformers.BertConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                  vocab_size=100, num_labels=3)
    model = transformers.BertForSequenceClassification(cfg)

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = model

        def forward(self, input_ids):
            return self.bert(input_ids=input_ids).logits

    ids = torch.randint(0, 100, (32, 16))
    _check(Logits(), ids, torch.randint(0, 3, (32,)), torch.nn.CrossEntropyLoss())


def test_torch_mlp_trained_briefly_on_digits(torch, digits):
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    x = torch.tensor(digits[0], dtype=torch.float32)
    y = torch.tensor(digits[1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    _check(model, x, y, nn.CrossEntropyLoss())


def test_torch_healthy_tanh_mlp_on_circles(torch):
    """AUTOTRAINER's 'normal' tanh MLPs: no vanishing/exploding gradient (their lowered thresholds said so)."""
    from sklearn.datasets import make_circles

    nn = torch.nn
    torch.manual_seed(0)
    layers = [nn.Linear(2, 5), nn.Tanh()]
    for _ in range(5):
        layers += [nn.Linear(5, 5), nn.Tanh()]
    model = nn.Sequential(*layers, nn.Linear(5, 1))
    for m in model:
        if isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    xc, yc = make_circles(n_samples=256, noise=0.1, random_state=1)
    _check(model, torch.tensor(xc, dtype=torch.float32), torch.tensor(yc, dtype=torch.float32)[:, None],
           nn.BCEWithLogitsLoss())


# -- keras -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def test_keras_lecture_model(keras):
    from keras import layers

    keras.utils.set_random_seed(0)
    initializer = keras.initializers.HeNormal()
    model = keras.Sequential([
        keras.Input(shape=(1,)),
        layers.Dense(10, activation="relu", kernel_initializer=initializer),
        layers.BatchNormalization(),
        layers.Dense(10, activation="relu", kernel_initializer=initializer),
        layers.Dense(1, activation="linear"),
    ])
    model.compile(optimizer="adam", loss="mse")
    x = np.random.default_rng(0).uniform(-2, 2, size=(256, 1)).astype("float32")
    _check(model, x, x ** 2)


def test_keras_embedding_lstm_text_model(keras):
    from keras import layers

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(shape=(20,), dtype="int32"), layers.Embedding(1000, 32),
                              layers.LSTM(32), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    rng = np.random.default_rng(0)
    _check(model, rng.integers(1, 1000, size=(64, 20)).astype("int32"),
           rng.integers(0, 2, size=(64, 1)).astype("float32"))


@pytest.mark.slow
@pytest.mark.parametrize("app", ["MobileNetV2", "ResNet50", "EfficientNetB0"])
def test_keras_applications(keras, app):
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, app)(weights=None, input_shape=(64, 64, 3), classes=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(4, 64, 64, 3)).astype("float32")
    if app != "EfficientNetB0":  # EfficientNet rescales and normalizes raw pixels inside the model
        x = x / 127.5 - 1.0
    report = _check(model, x, rng.integers(0, 10, size=(4,)))
    if app == "ResNet50":  # conv biases before BN: one summarized info
        assert [f.severity for f in report.by_code("ND504")] == [Severity.INFO]


@pytest.mark.slow
@pytest.mark.parametrize("n", [4, 8])
def test_keras_densenet121_on_small_batches(keras, n):
    """DenseNet concatenates each conv output and batch-normalizes the concatenation: those convs are
    as scale-invariant as any conv before a BatchNorm (12x its weight norm at 8 images, 79x at 4)."""
    keras.utils.set_random_seed(0)
    model = keras.applications.DenseNet121(weights=None, input_shape=(32, 32, 3), classes=10)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 255, size=(n, 32, 32, 3)).astype("float32")
    _check(model, keras.applications.densenet.preprocess_input(x), np.arange(n) % 10)
