"""netdoctor.modelfile.loader: finding model, data and loss in a model file, and every way it can fail."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from netdoctor.errors import DataError, ModelLoadError, UnsupportedModelError
from netdoctor.modelfile.datafiles import load_npz, split_batch
from netdoctor.modelfile.loader import load_model_file, split_spec
from netdoctor.modelfile.workers import scan_framework

torch = pytest.importorskip("torch")


def write(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return str(path)


MLP = """
import torch
from torch import nn

def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
"""


def test_build_model_data_and_loss_are_found(tmp_path):
    path = write(tmp_path, "m.py", MLP + """
def build_model():
    return _net()

def sample_batch():
    return torch.ones(6, 4), torch.zeros(6, dtype=torch.long)

criterion = nn.CrossEntropyLoss()
input_shape = (4,)
""")
    loaded = load_model_file(path)
    assert isinstance(loaded.model, torch.nn.Sequential)
    assert loaded.framework == "torch"
    assert loaded.inputs.shape == (6, 4) and loaded.targets.shape == (6,)
    assert isinstance(loaded.loss_fn, torch.nn.CrossEntropyLoss)
    assert loaded.input_shape == (4,)
    assert loaded.source == "build_model()" and loaded.data_source == "sample_batch()"
    assert loaded.path == path


def test_factory_order_then_module_level_model(tmp_path):
    path = write(tmp_path, "m.py", MLP + """
model = torch.nn.Linear(3, 3)

def make_model():
    return torch.nn.Linear(5, 5)

def get_model():
    return torch.nn.Linear(7, 7)
""")
    assert load_model_file(path).model.in_features == 7  # get_model before make_model and `model`
    only_object = write(tmp_path, "obj.py", "import torch\nmodel = torch.nn.Linear(3, 3)\n")
    loaded = load_model_file(only_object)
    assert loaded.model.in_features == 3 and loaded.source == "model"


def test_path_name_picks_function_class_or_object(tmp_path):
    path = write(tmp_path, "m.py", MLP + """
class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)
    def forward(self, x):
        return self.fc(x)

small = nn.Linear(9, 9)

def build_model():
    return _net()

def build_other():
    return nn.Linear(11, 11)
""")
    assert load_model_file(path + "::build_other").model.in_features == 11
    assert load_model_file(path, name="small").model.in_features == 9
    assert type(load_model_file(path + "::Tiny").model).__name__ == "Tiny"
    with pytest.raises(ModelLoadError, match=r"no 'nope'.*build_other"):
        load_model_file(path + "::nope")
    assert split_spec("a/b.py::f") == ("a/b.py", "f") and split_spec("a.py") == ("a.py", None)


def test_no_model_names_what_was_looked_for(tmp_path):
    path = write(tmp_path, "empty.py", "x = 1\n")
    with pytest.raises(ModelLoadError) as err:
        load_model_file(path)
    msg = str(err.value)
    for name in ("build_model()", "get_model()", "create_model()", "make_model()", "`model`", "empty.py::NAME"):
        assert name in msg


def test_import_problems_are_one_line_errors(tmp_path):
    bad = write(tmp_path, "bad.py", "import torch\n\ndef build_model(:\n    pass\n")
    with pytest.raises(ModelLoadError, match=r"syntax error in bad.py at line 3"):
        load_model_file(bad)
    raising = write(tmp_path, "raising.py", "import torch\nx = {}\ny = x['missing']\n")
    with pytest.raises(ModelLoadError, match=r"importing raising.py failed at line 3: KeyError: 'missing'"):
        load_model_file(raising)
    missing = write(tmp_path, "missing.py", "import not_a_real_module_xyz\n")
    with pytest.raises(ModelLoadError, match=r"not_a_real_module_xyz, which is not installed; pip install"):
        load_model_file(missing)
    with pytest.raises(ModelLoadError, match=r"no such file: .*nothere.py"):
        load_model_file(str(tmp_path / "nothere.py"))
    with pytest.raises(ModelLoadError, match="is a directory"):
        load_model_file(str(tmp_path))
    with pytest.raises(ModelLoadError, match=r"checkpoint.*--weights"):
        load_model_file(write(tmp_path, "w.pt", "x"))
    with pytest.raises(ModelLoadError, match=r"expected a .py model file"):
        load_model_file(write(tmp_path, "notes.txt", "x"))
    assert not [m for m in sys.modules if m.startswith("_netdoctor_model_raising")]


def test_factory_failures(tmp_path):
    args = write(tmp_path, "args.py", "import torch\ndef build_model(width):\n    return torch.nn.Linear(width, 2)\n")
    with pytest.raises(ModelLoadError, match=r"build_model\(\) in args.py needs arguments \(width\).*defaults"):
        load_model_file(args)
    boom = write(tmp_path, "boom.py", "import torch\ndef build_model():\n    raise ValueError('bad width')\n")
    with pytest.raises(ModelLoadError, match=r"build_model\(\) in boom.py raised at line 3 ValueError: bad width"):
        load_model_file(boom)
    notnet = write(tmp_path, "notnet.py", "def build_model():\n    return [1, 2]\n")
    with pytest.raises(UnsupportedModelError, match="builtins.list"):
        load_model_file(notnet)


def test_model_file_directory_is_importable_during_import_and_build(tmp_path):
    (tmp_path / "helpers_for_loader_test.py").write_text(
        "import torch\ndef make():\n    return torch.nn.Linear(4, 4)\n"
    )
    path = write(tmp_path, "m.py", """
import helpers_for_loader_test

def build_model():
    import helpers_for_loader_test as h
    return h.make()
""")
    before = list(sys.path)
    assert load_model_file(path).model.in_features == 4
    assert sys.path == before


@pytest.mark.parametrize(
    "body, expect_x, expect_y",
    [
        ("return np.zeros((5, 4), 'float32')", (5, 4), None),
        ("return np.zeros((5, 4), 'float32'), np.zeros(5, 'int64')", (5, 4), (5,)),
        ("return {'a': np.zeros((5, 4))}, None", "dict", None),
        ("return [np.zeros((5, 4)), np.zeros((5, 2))], np.zeros(5)", "list", (5,)),
    ],
)
def test_data_shapes(tmp_path, body, expect_x, expect_y):
    path = write(tmp_path, "d.py", MLP + f"""
import numpy as np

def build_model():
    return _net()

def load_data():
    {body}
""")
    loaded = load_model_file(path)
    if expect_x == "dict":
        assert isinstance(loaded.inputs, dict)
    elif expect_x == "list":
        assert isinstance(loaded.inputs, list) and len(loaded.inputs) == 2
    else:
        assert loaded.inputs.shape == expect_x
    assert (loaded.targets is None) if expect_y is None else (loaded.targets.shape == expect_y)
    assert loaded.data_source == "load_data()"


def test_bad_data_from_the_file(tmp_path):
    none = write(tmp_path, "none.py", MLP + "def build_model():\n    return _net()\ndef get_batch():\n    return None\n")
    with pytest.raises(DataError, match=r"get_batch\(\) returned None"):
        load_model_file(none)
    text = write(tmp_path, "text.py", MLP + "def build_model():\n    return _net()\ndef get_batch():\n    return 'abc'\n")
    with pytest.raises(DataError, match=r"returned x of type str"):
        load_model_file(text)
    raises = write(tmp_path, "raises.py", MLP + "def build_model():\n    return _net()\n"
                   "def sample_batch():\n    raise FileNotFoundError('data/train.csv')\n")
    with pytest.raises(DataError, match=r"sample_batch\(\) in raises.py raised.*FileNotFoundError.*--data"):
        load_model_file(raises)
    with pytest.raises(DataError, match="returned None"):
        split_batch(None)


def test_npz_overrides_and_explicit_data_wins_over_input_shape(tmp_path):
    path = write(tmp_path, "m.py", MLP + """
def build_model():
    return _net()

def sample_batch():
    return torch.ones(6, 4), torch.zeros(6, dtype=torch.long)
""")
    npz = tmp_path / "data.npz"
    np.savez(npz, x=np.ones((9, 4), "float32"), y=np.zeros(9, "int64"))
    loaded = load_model_file(path, data=str(npz))
    assert loaded.inputs.shape == (9, 4) and loaded.targets.shape == (9,)
    assert loaded.data_source == str(npz)
    # --input-shape is for files without data: the file's sample_batch() and --data win, and a note says so
    own = load_model_file(path, input_shape=(4,))
    assert own.inputs.shape == (6, 4) and own.input_shape is None and own.data_source == "sample_batch()"
    assert own.notes == ("--input-shape not used: the data comes from sample_batch()",)
    both = load_model_file(path, data=str(npz), input_shape=(4,))
    assert both.inputs.shape == (9, 4) and both.input_shape is None
    assert both.notes == (f"--input-shape not used: the data comes from {npz}",)
    bare = write(tmp_path, "bare.py", MLP + "def build_model():\n    return _net()\ninput_shape = (7,)\n")
    assert load_model_file(bare).input_shape == (7,)
    synthetic = load_model_file(bare, input_shape=(4,))  # the flag replaces the file's own input_shape
    assert synthetic.inputs is None and synthetic.targets is None and synthetic.input_shape == (4,)
    assert synthetic.notes == ()


def test_bad_npz_files(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(DataError, match=r"cannot read .*garbage.npz as numpy data.*numpy.savez"):
        load_npz(str(garbage))
    no_x = tmp_path / "nox.npz"
    np.savez(no_x, a=np.ones(3), b=np.ones(3))
    with pytest.raises(DataError, match=r"has no array 'x' \(found: a, b\)"):
        load_npz(str(no_x))
    mismatch = tmp_path / "mismatch.npz"
    np.savez(mismatch, x=np.ones((4, 2)), y=np.ones(3))
    with pytest.raises(DataError, match="x has 4 samples but y has 3"):
        load_npz(str(mismatch))
    with pytest.raises(DataError, match="no such data file"):
        load_npz(str(tmp_path / "absent.npz"))
    single = tmp_path / "single.npy"
    np.save(single, np.ones((2, 3)))
    x, y = load_npz(str(single))
    assert x.shape == (2, 3) and y is None


def test_loss_lookup(tmp_path):
    path = write(tmp_path, "m.py", MLP + """
def build_model():
    return _net()

def sample_batch():
    return torch.ones(3, 4), torch.zeros(3, 2)

def loss(output, target):
    return ((output - target) ** 2).mean()
""")
    assert load_model_file(path).loss_fn.__name__ == "loss"
    # synthetic inputs have no targets: the loss is kept; the adapter synthesizes labels for a classification
    # loss or falls back to a surrogate and says so (tests/torch/test_torch_loss.py)
    no_data = write(tmp_path, "nodata.py", MLP + """
def build_model():
    return _net()

def loss(output, target):
    return ((output - target) ** 2).mean()
""")
    synthetic = load_model_file(no_data, input_shape=(4,))
    assert synthetic.loss_fn.__name__ == "loss" and synthetic.inputs is None
    cls = write(tmp_path, "cls.py", MLP + "def build_model():\n    return _net()\nloss_fn = nn.MSELoss\n")
    with pytest.raises(ModelLoadError, match=r"loss_fn = MSELoss\(\)"):
        load_model_file(cls)
    plain = write(tmp_path, "plain.py", MLP + "def build_model():\n    return _net()\nloss = 0.5\n")
    assert load_model_file(plain).loss_fn is None  # a number called `loss` is not a loss function


def test_scan_framework(tmp_path):
    assert scan_framework(write(tmp_path, "a.py", "import torch\n")) == "torch"
    assert scan_framework(write(tmp_path, "b.py", "from torch import nn\n")) == "torch"
    assert scan_framework(write(tmp_path, "c.py", "import keras\n")) == "keras"
    assert scan_framework(write(tmp_path, "d.py", "import tensorflow as tf\n")) == "keras"
    assert scan_framework(write(tmp_path, "e.py", "import torch\nimport keras\n")) == "mixed"
    assert scan_framework(write(tmp_path, "f.py", "import numpy\n# import torch\n")) == "unknown"
    assert scan_framework("model.keras") == "keras" and scan_framework("m.h5::x") == "keras"
    assert scan_framework(str(tmp_path / "missing.py")) == "unknown"
