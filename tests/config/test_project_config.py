"""``[tool.netdoctor]`` in pyproject.toml: discovery, validation, suggestions."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from netdoctor.config import Config, make_config
from netdoctor.config_file import load_project_config, parse_input_shape, parse_table
from netdoctor.errors import ConfigError
from netdoctor.findings import Category, Finding, Severity

pytestmark = pytest.mark.usefixtures("fake_rules")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def finding(code: str, name: str, layer: str | None) -> Finding:
    return Finding(code, name, Severity.ERROR, Category.from_code(code), "m", layer=layer)


FULL = """
    [project]
    name = "demo"

    [tool.netdoctor]
    select = ["ND", "vanishing-gradients"]
    ignore = ["ND1"]
    extend-ignore = ["dead-units"]
    fail-on = "warning"
    paths = ["models/*.py"]
    data = "data/probe.npz"
    input-shape = [3, 32, 32]
    pytest-glob = "nets/**/*.py"

    [tool.netdoctor.severity]
    ND203 = "error"
    exploding-gradients = "warning"

    [tool.netdoctor.options.ND401]
    max_dead_fraction = 0.3
    min_samples = 64

    [tool.netdoctor.options.vanishing-gradients]
    min-ratio = 1      # an int is fine for a float option

    [tool.netdoctor.per-layer-ignores]
    "head.*" = ["ND201"]
    "encoder.*" = ["ND3"]
"""


def test_no_config_file_gives_defaults(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[project]\nname = 'x'\n")
    pc = load_project_config(start=tmp_path)
    assert pc.source is None
    assert pc.config == Config()
    assert pc.paths == () and pc.data is None and pc.input_shape is None
    assert pc.pytest_glob == "**/*model*.py"


def test_full_table_is_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg_file = write(tmp_path / "pyproject.toml", FULL)
    monkeypatch.chdir(tmp_path)
    pc = load_project_config()
    c = pc.config
    assert pc.source == cfg_file
    assert c.select == ("ND", "vanishing-gradients")
    assert c.ignore == ("ND1", "dead-units")
    assert c.fail_on == "warning"
    assert c.severity == {"ND203": Severity.ERROR, "ND302": Severity.WARNING}
    assert c.options == {"ND401": {"max_dead_fraction": 0.3, "min_samples": 64}, "ND301": {"min_ratio": 1.0}}
    assert isinstance(c.options["ND301"]["min_ratio"], float)
    assert c.options_for("ND401", {"max_dead_fraction": 0.5, "strict": False}) == {
        "max_dead_fraction": 0.3, "strict": False, "min_samples": 64}
    assert pc.paths == ("models/*.py",)
    assert pc.data == os.path.join("data", "probe.npz")
    assert pc.input_shape == (3, 32, 32)
    assert pc.pytest_glob == "nets/**/*.py"
    # selection: longest prefix wins
    assert c.is_selected("ND301", "vanishing-gradients")
    assert not c.is_selected("ND101", "unnormalized-inputs")
    assert not c.is_selected("ND401", "dead-units")
    assert c.is_selected("ND201", "zero-weights")
    # per-layer ignores
    assert c.layer_ignored(finding("ND201", "zero-weights", "head.fc"))
    assert not c.layer_ignored(finding("ND201", "zero-weights", "body.fc"))
    assert c.layer_ignored(finding("ND302", "exploding-gradients", "encoder.0"))
    assert not c.layer_ignored(finding("ND201", "zero-weights", None))


def test_nearest_configured_pyproject_wins_and_unconfigured_ones_are_skipped(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.netdoctor]\nfail-on = "info"\n')
    write(tmp_path / "pkg" / "pyproject.toml", "[project]\nname = 'sub'\n")  # no table: passed over
    deep = tmp_path / "pkg" / "models" / "a"
    deep.mkdir(parents=True)
    assert load_project_config(start=deep).config.fail_on == "info"
    write(tmp_path / "pkg" / "models" / "pyproject.toml", '[tool.netdoctor]\nfail-on = "never"\n')
    model = write(deep / "net.py", "")
    pc = load_project_config(start=model)  # a file works as start too
    assert pc.config.fail_on == "never"
    assert pc.source == tmp_path / "pkg" / "models" / "pyproject.toml"


def test_paths_are_rebased_onto_the_current_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "pyproject.toml", '[tool.netdoctor]\npaths = ["models/net.py"]\ndata = "d.npz"\n')
    sub = tmp_path / "src"
    sub.mkdir()
    monkeypatch.chdir(sub)
    pc = load_project_config()
    assert pc.paths == (os.path.join("..", "models", "net.py"),)
    assert pc.data == os.path.join("..", "d.npz")


def test_explicit_netdoctor_toml_has_top_level_keys(tmp_path: Path) -> None:
    f = write(tmp_path / "netdoctor.toml", 'select = ["ND3"]\nfail-on = "info"\n')
    pc = load_project_config(start=tmp_path / "nowhere", explicit=f)
    assert pc.config.select == ("ND3",) and pc.config.fail_on == "info" and pc.source == f
    with pytest.raises(ConfigError, match="not found"):
        load_project_config(explicit=tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('fail_on = "warning"', "unknown key 'fail_on' in [tool.netdoctor]; did you mean 'fail-on'?"),
        ('selekt = ["ND3"]', "unknown key 'selekt' in [tool.netdoctor]; did you mean 'select'?"),
        ('per_layer_ignores = {}', "did you mean 'per-layer-ignores'?"),
        ('select = ["ND999"]', "unknown rule 'ND999'"),
        ('ignore = ["dead-unit"]', "unknown rule 'dead-unit'; did you mean 'dead-units'?"),
        ('fail-on = "fatal"', "fail-on in [tool.netdoctor] must be one of error, warning, info, never"),
        ('select = "ND3"\ninput-shape = [3, 0]', "input-shape must list positive sizes"),
        ('paths = [1]', "paths in [tool.netdoctor] must be a list of strings"),
        ('exclude = [1]', "exclude in [tool.netdoctor] must be a list of globs relative to the project root"),
        ('exclude = [""]', "exclude in [tool.netdoctor] must be a list of globs"),
        ('exclud = ["legacy/**"]', "unknown key 'exclud' in [tool.netdoctor]; did you mean 'exclude'?"),
        ('excludes = ["legacy/**"]', "did you mean 'exclude'?"),
        ('[tool.netdoctor.severity]\nND203 = "fatal"', 'must be "error", "warning" or "info"'),
        ('[tool.netdoctor.severity]\nND2O3 = "error"', "unknown rule 'ND2O3' in [tool.netdoctor.severity]; did you mean 'ND203'?"),
        ('[tool.netdoctor.options.ND401]\nmax_dead_frac = 0.3',
         "unknown option 'max_dead_frac' for ND401 dead-units in [tool.netdoctor.options.ND401]; "
         "did you mean 'max_dead_fraction'?"),
        ('[tool.netdoctor.options.ND401]\nmax_dead_fraction = "30%"', "must be a number like the default 0.5"),
        ('[tool.netdoctor.options.ND401]\nmin_samples = 1.5', "must be an integer like the default 16"),
        ('[tool.netdoctor.options.ND401]\nstrict = 1', "must be true or false"),
        ('[tool.netdoctor.options.ND302]\nlimit = 3', "ND302 has no options"),
        ('[tool.netdoctor.options.ND3]\nmin_ratio = 3', "options belong to one rule"),
        ('[tool.netdoctor.options.ND777]\nx = 3', "unknown rule 'ND777' in [tool.netdoctor.options]"),
        ('[tool.netdoctor.per-layer-ignores]\n"head.*" = ["zero-weight"]', "did you mean 'zero-weights'?"),
    ],
)
def test_bad_config_is_an_error_with_a_suggestion(tmp_path: Path, table: str, message: str) -> None:
    body = table if table.startswith("[tool") else f"[tool.netdoctor]\n{table}"
    cfg_file = write(tmp_path / "pyproject.toml", body + "\n")
    with pytest.raises(ConfigError) as info:
        load_project_config(start=tmp_path)
    assert message in str(info.value)
    assert str(info.value).startswith(str(cfg_file))


def test_exclude_is_kept_as_written_with_the_project_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "pyproject.toml", '[tool.netdoctor]\nexclude = ["models/legacy/**", "scratch_*.py"]\n')
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    pc = load_project_config()
    assert pc.exclude == ("models/legacy/**", "scratch_*.py")  # relative to the root, not rebased
    assert pc.root == tmp_path.resolve()
    assert parse_table({}).exclude == () and parse_table({}).root is None  # the current directory


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", "[tool.netdoctor\nselect = \n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_project_config(start=tmp_path)


def test_severity_longest_prefix_wins(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", """
        [tool.netdoctor.severity]
        ND301 = "warning"
        ND3 = "info"
    """)
    sev = load_project_config(start=tmp_path).config.severity
    assert sev == {"ND301": Severity.WARNING, "ND302": Severity.INFO}


@pytest.mark.parametrize(
    ("select", "ignore", "code", "name", "expected"),
    [
        (("ND",), (), "ND301", "vanishing-gradients", True),
        (("ND",), ("ND3",), "ND301", "vanishing-gradients", False),
        (("ND3",), ("ND",), "ND301", "vanishing-gradients", True),       # longer select wins
        (("ND301",), ("ND3",), "ND301", "vanishing-gradients", True),
        (("ND3",), ("ND301",), "ND302", "exploding-gradients", True),
        (("ND3",), ("ND301",), "ND301", "vanishing-gradients", False),
        (("ND301",), ("ND301",), "ND301", "vanishing-gradients", False),  # tie: ignore wins, like ruff
        (("vanishing-gradients",), ("ND3",), "ND301", "vanishing-gradients", True),
        (("ND3",), ("vanishing-gradients",), "ND301", "vanishing-gradients", False),
        (("ALL",), (), "ND601", "nonfinite-loss", True),
        (("ND2",), (), "ND301", "vanishing-gradients", False),
        (("nd3",), (), "ND301", "vanishing-gradients", True),
    ],
)
def test_is_selected_longest_prefix(select, ignore, code, name, expected) -> None:
    assert Config(select=select, ignore=ignore).is_selected(code, name) is expected


def test_cli_flags_refine_the_project_config(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.netdoctor]\nignore = ["ND4"]\nfail-on = "warning"\n')
    base = load_project_config(start=tmp_path).config
    cfg = make_config(select=["ND3"], ignore=["ND302"], base=base, fail_on="error")
    assert cfg.select == ("ND3",) and cfg.ignore == ("ND4", "ND302") and cfg.fail_on == "error"


def test_parse_input_shape_forms() -> None:
    assert parse_input_shape("3,32,32") == (3, 32, 32)
    assert parse_input_shape("3x32x32") == (3, 32, 32)
    assert parse_input_shape([10]) == (10,)
    for bad in ("", [], [True], ["a"], 5):
        with pytest.raises(ConfigError):
            parse_input_shape(bad)


def test_option_values_take_the_type_of_the_default(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", """
        [tool.netdoctor.options.init-scale]
        exempt_layers = ["head", "embed"]
        max_ratio = 20
        [tool.netdoctor.options.ND401]
        strict = true
        mode = "all"
    """)
    opts = load_project_config(start=tmp_path).config.options
    assert opts["ND203"] == {"exempt_layers": ("head", "embed"), "max_ratio": 20.0}
    assert opts["ND401"] == {"strict": True, "mode": "all"}
    write(tmp_path / "pyproject.toml", '[tool.netdoctor.options.ND401]\nmin_samples = true\n')
    with pytest.raises(ConfigError, match="must be an integer"):
        load_project_config(start=tmp_path)
