"""Where the loader finds a model and its batch in files written without netdoctor in mind,
and the seeded, restored RNGs around the file's code."""

from __future__ import annotations

import random
import textwrap

import numpy as np
import pytest

from netdoctor.errors import DataError, ModelLoadError
from netdoctor.modelfile.loader import load_model_file

TORCH = '''
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

class Block(nn.Module):
    def __init__(self, n=8):
        super().__init__()
        self.fc = nn.Linear(n, n)
    def forward(self, x):
        return torch.relu(self.fc(x))

class Net(nn.Module):
    def __init__(self, hidden=8):
        super().__init__()
        self.inp = nn.Linear(4, hidden)
        self.block = Block(hidden)
        self.out = nn.Linear(hidden, 3)
    def forward(self, x):
        return self.out(self.block(self.inp(x)))

def _ds(n):
    return TensorDataset(torch.randn(n, 4), torch.randint(0, 3, (n,)))
'''


def _write(tmp_path, head: str, body: str, name: str = "m.py") -> str:
    path = tmp_path / name
    path.write_text(head + textwrap.dedent(body))
    return str(path)


def test_the_model_class_and_a_module_level_dataloader(tmp_path):
    pytest.importorskip("torch")
    path = _write(tmp_path, TORCH, '''
    val_loader = DataLoader(_ds(10), batch_size=10)
    train_loader = DataLoader(_ds(100), batch_size=32, shuffle=True)
    criterion = nn.CrossEntropyLoss()
    ''')
    loaded = load_model_file(path)
    assert loaded.source == "Net()" and type(loaded.model).__name__ == "Net"  # Block is a part of Net
    assert loaded.data_source == "train_loader (first batch of the DataLoader)"
    assert tuple(loaded.inputs.shape) == (32, 4) and tuple(loaded.targets.shape) == (32,)
    again = load_model_file(path)  # seeded: the same shuffle, the same weights
    assert (again.inputs == loaded.inputs).all()
    assert all((a == b).all() for a, b in zip(again.model.parameters(), loaded.model.parameters()))
    other = load_model_file(path, seed=1)
    assert not (other.inputs == loaded.inputs).all()


def test_data_functions_may_return_loaders_and_generators(tmp_path):
    pytest.importorskip("torch")
    loader = _write(tmp_path, TORCH, '''
    model = Net()
    def get_batch():
        return DataLoader(_ds(50), batch_size=16)
    ''', "a.py")
    loaded = load_model_file(loader)
    assert loaded.data_source == "get_batch() (first batch of its DataLoader)" and len(loaded.inputs) == 16
    gen = _write(tmp_path, TORCH, '''
    model = Net()
    def load_data():
        for i in range(3):
            yield {"x": torch.full((6, 4), float(i))}, torch.zeros(6, dtype=torch.long)
    ''', "b.py")
    loaded = load_model_file(gen)
    assert loaded.data_source == "load_data() (first batch of its iterator)"
    assert float(loaded.inputs["x"].max()) == 0.0
    empty = _write(tmp_path, TORCH, "model = Net()\ntrain_loader = DataLoader(_ds(0), batch_size=4)\n", "c.py")
    with pytest.raises(DataError, match="yields no batch"):
        load_model_file(empty)


def test_ambiguous_or_missing_model_classes(tmp_path):
    pytest.importorskip("torch")
    two = _write(tmp_path, TORCH, "class Other(nn.Module):\n    pass\n", "two.py")
    with pytest.raises(ModelLoadError, match=r"several model classes \(Net, Other\).*two.py::Other"):
        load_model_file(two)
    assert type(load_model_file(two + "::Net").model).__name__ == "Net"
    needs_args = _write(tmp_path, "import torch\nclass M(torch.nn.Module):\n    def __init__(self, n):\n"
                                  "        super().__init__()\n", "", "args.py")
    with pytest.raises(ModelLoadError, match="no model found"):
        load_model_file(needs_args)


def test_tf_data_and_pydataset(tmp_path):
    pytest.importorskip("keras")
    head = '''
import keras
import numpy as np
import tensorflow as tf

model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3)])
model.compile(loss="sparse_categorical_crossentropy")
x = np.random.default_rng(0).normal(size=(40, 5)).astype("float32")
y = np.arange(40) % 3
'''
    ds = _write(tmp_path, head, '''
    def sample_weights():
        return np.ones(40, "float32")
    train_ds = tf.data.Dataset.from_tensor_slices((x, y, sample_weights())).shuffle(40).batch(16)
    ''', "ds.py")
    loaded = load_model_file(ds)
    assert loaded.data_source == "train_ds (first batch of the tf.data.Dataset)"
    assert isinstance(loaded.inputs, np.ndarray) and loaded.inputs.shape == (16, 5) and loaded.targets.shape == (16,)
    first = loaded.inputs
    assert (load_model_file(ds).inputs == first).all()  # tf.data's shuffle is seeded too
    seq = _write(tmp_path, head, '''
    class Seq(keras.utils.PyDataset):
        def __len__(self):
            return 4
        def __getitem__(self, i):
            return x[i * 10:(i + 1) * 10], y[i * 10:(i + 1) * 10]
    def get_batch():
        return Seq()
    ''', "seq.py")
    loaded = load_model_file(seq)
    assert loaded.data_source == "get_batch() (first batch of its PyDataset)" and loaded.inputs.shape == (10, 5)


def test_the_callers_rngs_are_restored(tmp_path):
    torch = pytest.importorskip("torch")
    path = _write(tmp_path, TORCH, '''
    import random
    DRAWN = (random.random(), float(np.random.rand()), float(torch.rand(())))
    model = Net()
    ''')
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(123)
    before = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()
    first = load_model_file(path)
    assert random.getstate() == before[0] and (np.random.get_state()[1] == before[1]).all()
    assert torch.equal(torch.get_rng_state(), before[2])
    import sys

    drawn = [m.DRAWN for m in sys.modules.values() if getattr(m, "__file__", None) == path]
    assert drawn and len(set(drawn)) == 1
    assert all((a == b).all() for a, b in zip(first.model.parameters(), load_model_file(path).model.parameters()))
