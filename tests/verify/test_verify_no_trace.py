"""--verify edits copies only: the user's model, data and every global RNG stay bit for bit as they were."""

from __future__ import annotations

import copy
import random

import numpy as np
import torch
from keras.src.backend.common import global_state
from torch import nn
from verify_helpers import check, digits


def _torch_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Dropout(0.5), nn.BatchNorm1d(64), nn.Linear(64, 64),
                          nn.ReLU(), nn.Linear(64, 10), nn.Softmax(dim=1))
    nn.init.zeros_(model[4].weight)
    model[6].bias.requires_grad_(False)
    model.eval()
    return model


def _torch_state(model: nn.Module) -> dict:
    return {
        "tensors": {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()},
        "ids": [id(t) for t in model.state_dict(keep_vars=True).values()],
        "training": [m.training for m in model.modules()],
        "requires_grad": [p.requires_grad for p in model.parameters()],
        "grads": [p.grad for p in model.parameters()],
        "hooks": [(len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks)) for m in model.modules()],
        "modules": [(n, type(m)) for n, m in model.named_modules()],
        "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state(),
        "py_rng": random.getstate(),
        "threads": torch.get_num_threads(),
    }


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key, x in a.items():
        y = b[key]
        if key == "tensors":
            assert x.keys() == y.keys()
            assert all(torch.equal(x[k], y[k]) and x[k].dtype == y[k].dtype for k in x), key
        elif key == "torch_rng":
            assert torch.equal(x, y)
        elif key == "numpy_rng":
            assert x[0] == y[0] and np.array_equal(x[1], y[1]) and x[2:] == y[2:]
        else:
            assert x == y, key


def test_torch_model_data_and_rngs_untouched():
    model = _torch_model()
    x_np, y_np = digits()
    x, y = torch.tensor(x_np), torch.tensor(y_np)
    x_before, y_before = x.clone(), y.clone()
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    before = _torch_state(model)
    report = check(model, x, y, loss_fn=nn.CrossEntropyLoss())
    assert {"ND201", "ND501", "ND503"} <= report.codes()
    assert sum(f.verification["verdict"] == "verified" for f in report.findings) >= 3
    _same(before, _torch_state(model))
    assert torch.equal(x, x_before) and torch.equal(y, y_before)


def _keras_model():
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(64,))
    h = layers.Dense(64, activation="relu", name="d1")(inputs)
    h = layers.Dropout(0.5, name="drop")(h)
    h = layers.BatchNormalization(name="bn")(h)
    h = layers.Dense(64, activation="relu", kernel_initializer="zeros", name="d2")(h)
    model = keras.Model(inputs, layers.Dense(10, activation="softmax", name="out")(h), name="user_model")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def _keras_state(model) -> dict:
    gen = global_state.get_global_attribute("global_seed_generator")
    uids = global_state.get_global_attribute("object_name_uids")
    return {
        "variables": [np.array(v.numpy(), copy=True) for v in model.variables],
        "paths": [v.path for v in model.variables],
        "optimizer": [np.array(v.numpy(), copy=True) for v in model.optimizer.variables],
        "compile": (model._compile_loss, model.loss, model.optimizer),
        "layers": [(layer.name, type(layer), layer.trainable) for layer in model._flatten_layers()],
        "global_gen": (gen, None if gen is None else np.array(gen.state.numpy(), copy=True)),
        "uids": None if uids is None else copy.copy(dict(uids)),
        "py_rng": random.getstate(),
        "numpy_rng": np.random.get_state(),
    }


def test_keras_model_data_and_rngs_untouched():
    model = _keras_model()
    x, y = digits()
    x_before = x.copy()
    random.seed(7)
    np.random.seed(7)
    before = _keras_state(model)
    report = check(model, x, y)
    assert {"ND201", "ND501", "ND503"} <= report.codes()
    after = _keras_state(model)
    for key in ("variables", "optimizer"):
        assert len(before[key]) == len(after[key])
        assert all(np.array_equal(a, b) for a, b in zip(before[key], after[key])), key
    gen_b, gen_a = before.pop("global_gen"), after.pop("global_gen")
    assert gen_b[0] is gen_a[0] and (gen_b[1] is None or np.array_equal(gen_b[1], gen_a[1]))
    nb, na = before.pop("numpy_rng"), after.pop("numpy_rng")
    assert nb[0] == na[0] and np.array_equal(nb[1], na[1]) and nb[2:] == na[2:]
    for key in ("paths", "compile", "layers", "uids", "py_rng"):
        assert before[key] == after[key], key
    assert np.array_equal(x, x_before)
