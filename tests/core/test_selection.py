"""Which files are model files (``netdoctor.modelfile.selection``): walks, patterns, the hook's files.

No framework runs here: the look at the source parses, it never imports.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from netdoctor.config_file import load_project_config, parse_table
from netdoctor.errors import NetdoctorError
from netdoctor.modelfile.selection import Selector, defines_model, select_files


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(("source", "expected"), [
    ("import torch\ndef build_model():\n    return torch.nn.Linear(2, 2)\n", True),
    ("def make_model():\n    pass\n", True),
    ("import keras\nmodel = keras.Sequential([keras.layers.Dense(2)])\n", True),
    ("model: object = None\n", True),
    ("from torch import nn\nclass Net(nn.Module):\n    pass\n", True),
    ("import lightning as L\nclass Lit(L.LightningModule):\n    pass\n", True),
    ("import keras\nclass M(keras.Model):\n    pass\n", True),
    ("try:\n    import torch\n    model = torch.nn.Linear(2, 2)\nexcept ImportError:\n    pass\n", True),
    ("build_model = lambda: None\n", True),
    ("def build_model(:\n", True),  # unparsable: the loader says what is wrong
    # helpers: nothing the loader would take for a model
    ("import torch\ndef count_parameters(model):\n    return sum(p.numel() for p in model.parameters())\n", False),
    ("from .nets import build_model, model\n", False),  # re-exported, not defined here
    ("import torch\nif __name__ == '__main__':\n    model = torch.nn.Linear(2, 2)\n", False),
    ("from torch.utils.data import Dataset\nclass Digits(Dataset):\n    pass\n", False),
    ("class Settings:\n    lr = 0.1\nclass Bad(ValueError):\n    pass\n", False),
    ("def init_weights(m):\n    model = m\n", False),  # a local name, not the module's
    ("", False),
])
def test_defines_model_reads_the_source_without_running_it(tmp_path: Path, source: str, expected: bool) -> None:
    path = write(tmp_path / "m.py", source + "\nraise SystemExit('never imported')\n")
    assert defines_model(path) is expected


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project: model files, a helper, a nested package, folders that are never walked."""
    model = "def build_model():\n    pass\n"
    for rel in ("models/net_model.py", "models/pkg/deep.py", "models/legacy/old_model.py",
                "models/.hidden/h_model.py", "models/__pycache__/c_model.py", "models/venv/lib/v_model.py",
                "models/env/lib/site-packages/s_model.py", "models/build/b_model.py", "models/dist/d_model.py",
                "models/x.egg-info/e_model.py", "models/test_net_model.py", "models/net_model_test.py",
                "models/conftest.py", "other/resnet.py"):
        write(tmp_path / rel, model)
    write(tmp_path / "models/model_utils.py", "import torch\ndef count_parameters(model):\n    return 0\n")
    write(tmp_path / "models/pkg/__init__.py")
    write(tmp_path / "models/notes.txt", "not python")
    write(tmp_path / "models/env/pyvenv.cfg", "home = /usr/bin\n")  # a virtual environment by any name
    write(tmp_path / "pyproject.toml", '[tool.netdoctor]\nexclude = ["models/legacy"]\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_folder_is_walked_leaving_out_skipped_folders_tests_and_exclude(tree: Path) -> None:
    sel = select_files(["models"], load_project_config())
    assert [(c.spec, c.explicit) for c in sel.check] == [("models/net_model.py", False), ("models/pkg/deep.py", False)]
    assert sel.no_model == ("models/model_utils.py", "models/pkg/__init__.py")


def test_configured_paths_are_walked_and_named_files_are_explicit(tree: Path) -> None:
    write(tree / "pyproject.toml", '[tool.netdoctor]\npaths = ["models/", "other/resnet.py"]\n'
                                   'exclude = ["**/pkg/**"]\n')
    os.chdir(tree / "models")  # configured paths are relative to the project root
    sel = select_files([], load_project_config())
    assert [(c.spec, c.explicit) for c in sel.check] == [
        ("net_model.py", False), ("legacy/old_model.py", False), ("../other/resnet.py", True)]
    assert sel.no_model == ("model_utils.py",)


def test_a_named_file_is_explicit_even_without_a_model(tree: Path) -> None:
    sel = select_files(["models/model_utils.py", "models/legacy/old_model.py::build_model"], load_project_config())
    assert [(c.spec, c.explicit) for c in sel.check] == [("models/model_utils.py", True),
                                                          ("models/legacy/old_model.py::build_model", True)]


def test_a_glob_selects_like_a_walk(tree: Path) -> None:
    sel = select_files(["models/**/*.py"], load_project_config())
    assert [c.spec for c in sel.check] == ["models/net_model.py", "models/pkg/deep.py"]
    assert not any(c.explicit for c in sel.check)
    assert sel.no_model == ("models/model_utils.py", "models/pkg/__init__.py")
    with pytest.raises(NetdoctorError, match="no files match 'nets/\\*.py'"):
        select_files(["nets/*.py"], load_project_config())


def test_hook_files_are_kept_within_the_project_model_files(tree: Path) -> None:
    given = ["models/net_model.py", "models/model_utils.py", "models/pkg/deep.py", "other/resnet.py",
             "models/legacy/old_model.py", "models/.hidden/h_model.py", "models/test_net_model.py",
             "models/env/lib/site-packages/s_model.py"]
    # without paths: the files named like *model*.py (pytest-glob)
    sel = select_files(given, load_project_config(), from_pattern=True)
    assert [(c.spec, c.explicit) for c in sel.check] == [("models/net_model.py", False)]
    assert sel.no_model == ("models/model_utils.py",)
    # with paths: the files inside them, whatever their names
    write(tree / "pyproject.toml", '[tool.netdoctor]\npaths = ["models/pkg", "other/*.py"]\n')
    sel = select_files(given, load_project_config(), from_pattern=True)
    assert [c.spec for c in sel.check] == ["models/pkg/deep.py", "other/resnet.py"]
    assert sel.no_model == ()
    selector = Selector(load_project_config())
    assert selector.selectable("models/pkg/deep.py", scoped=True)
    assert not selector.selectable("models/pkg/notes.md", scoped=True)  # a folder holds its .py files
    assert not selector.selectable("models/net_model.py", scoped=True)  # outside the paths


def test_a_huggingface_folder_is_one_model_and_dir_name_needs_a_file(tree: Path) -> None:
    write(tree / "hf/config.json", "{}")
    write(tree / "hf/helper_model.py", "def build_model():\n    pass\n")
    sel = select_files(["hf"], load_project_config())
    assert [(c.spec, c.explicit) for c in sel.check] == [("hf", True)]
    with pytest.raises(NetdoctorError, match="::Net names an object in one file"):
        select_files(["models::Net"], load_project_config())
    with pytest.raises(NetdoctorError, match="no Python files to check under other/empty"):
        (tree / "other/empty").mkdir()
        select_files(["other/empty"], load_project_config())


@pytest.mark.parametrize(("pattern", "path", "excluded"), [
    ("models/legacy", "models/legacy/a/b.py", True),
    ("models/legacy/**", "models/legacy/b.py", True),
    ("legacy", "src/legacy/b.py", True),          # no slash: a file or folder name anywhere
    ("scratch_*.py", "models/scratch_1.py", True),
    ("models/legacy", "models/legacy_model.py", False),
    ("**/old_*.py", "a/b/old_x.py", True),
    ("./models/", "models/x.py", True),
])
def test_exclude_patterns_are_relative_to_the_root(tmp_path: Path, pattern: str, path: str, excluded: bool) -> None:
    project = parse_table({"exclude": [pattern]}, root=tmp_path)
    assert Selector(project).excluded(str(tmp_path / path)) is excluded
