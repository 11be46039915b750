"""``[tool.netdoctor]``: find the nearest pyproject.toml, read it, validate it.

:func:`load_project_config` reads the nearest pyproject.toml (ruff-style kebab-case keys,
validated against the rule registry) into a :class:`ProjectConfig`, whose
:class:`~netdoctor.config.Config` the CLI then overrides with its flags.

    [tool.netdoctor]
    select = ["ND"]                     # codes, prefixes or names; longest prefix wins
    ignore = ["ND5", "dead-units"]
    fail-on = "warning"                 # error | warning | info | never
    paths = ["models/", "nets/*.py"]    # checked when the command line names none
    exclude = ["models/legacy/**"]      # never selected by a walk, a pattern or the hook
    data = "data/probe.npz"             # default --data
    input-shape = [3, 32, 32]           # default --input-shape
    pytest-glob = "**/*model*.py"       # files collected by ``pytest --netdoctor``

    [tool.netdoctor.severity]
    ND203 = "error"

    [tool.netdoctor.options.ND401]
    max_dead_fraction = 0.3

    [tool.netdoctor.per-layer-ignores]
    "head.*" = ["ND201"]
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from netdoctor.config import DEFAULT_FAIL_ON, FAIL_ON_VALUES, Config, suggest, validate_refs
from netdoctor.errors import ConfigError
from netdoctor.findings import Severity


@dataclass(frozen=True)
class ProjectConfig:
    """Settings from ``[tool.netdoctor]`` of the nearest pyproject.toml.

    Attributes:
        config: Rule selection, severities, options, per-layer ignores, fail-on.
        paths: Model files, folders and globs to check when the command line names none.
            Relative entries are rebased from the config file's folder onto the current directory.
        exclude: Globs of files and folders that walks, patterns, the pre-commit hook and
            ``pytest --netdoctor`` never select, relative to the project root (as written).
        data: Default ``--data`` file (rebased like ``paths``).
        input_shape: Default ``--input-shape``.
        timeout: Default ``--timeout`` (seconds per file; 0: no limit).
        pytest_glob: Glob of model files collected by ``pytest --netdoctor`` (matched
            against paths relative to pytest's rootdir).
        source: The file the settings came from (``None`` = defaults).
        root: The project root ``exclude`` is relative to: the config file's folder
            (``None``: the current directory).
    """

    config: Config = field(default_factory=Config)
    paths: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    data: str | None = None
    input_shape: tuple[int, ...] | None = None
    timeout: float | None = None
    pytest_glob: str = "**/*model*.py"
    source: Any = None
    root: Path | None = None


#: Keys of ``[tool.netdoctor]`` (kebab-case, like ruff).
KEYS = (
    "select", "ignore", "extend-select", "extend-ignore", "fail-on", "severity", "options",
    "per-layer-ignores", "paths", "exclude", "data", "input-shape", "timeout", "pytest-glob",
)
SECTION = "[tool.netdoctor]"


def find_config_file(start: Any = None) -> Path | None:
    """The nearest pyproject.toml with a ``[tool.netdoctor]`` table, walking up from ``start``.

    Like ruff, a pyproject.toml without the table is passed over, so a sub-package's
    pyproject.toml does not hide the settings of the repository root.

    Args:
        start: A file or folder to start from (default: the current directory).
    """
    here = Path(start if start is not None else os.getcwd()).resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and _netdoctor_table(_read_toml(candidate)) is not None:
            return candidate
    return None


def load_project_config(start: Any = None, explicit: Any = None) -> ProjectConfig:
    """Read ``[tool.netdoctor]`` from ``explicit`` or the nearest pyproject.toml above ``start``.

    Args:
        start: File or folder to search upward from (default: the current directory).
        explicit: A config file named by the user (``--config``): a pyproject.toml
            (its ``[tool.netdoctor]`` table is read) or a netdoctor.toml whose keys are at
            top level.

    Returns:
        The validated settings; defaults when no file configures netdoctor.

    Raises:
        ConfigError: Unreadable TOML, unknown key/rule/option (with a suggestion), or a
            value of the wrong type.
    """
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} not found")
        data = _read_toml(path)
        table = _netdoctor_table(data)
        if table is None:
            table = {} if path.name == "pyproject.toml" else data
    else:
        found = find_config_file(start)
        if found is None:
            return ProjectConfig()
        path, table = found, _netdoctor_table(_read_toml(found)) or {}
    try:
        return parse_table(table, root=path.resolve().parent, source=path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def parse_table(table: Mapping[str, Any], root: Any = None, source: Any = None) -> ProjectConfig:
    """Validate a ``[tool.netdoctor]`` mapping and build a :class:`ProjectConfig`.

    Args:
        table: The TOML table (kebab-case keys).
        root: Folder relative ``paths``/``data`` are relative to (default: cwd).
        source: Recorded as :attr:`ProjectConfig.source`.
    """
    if not isinstance(table, Mapping):
        raise ConfigError(f"{SECTION} must be a table")
    for key in table:
        if key not in KEYS:
            hint = key.replace("_", "-") if key.replace("_", "-") in KEYS else None
            suggestion = f"; did you mean {hint!r}?" if hint else suggest(key, KEYS)
            raise ConfigError(f"unknown key {key!r} in {SECTION}{suggestion}")
    from netdoctor.rules import registry

    reg = registry()
    select = _refs(table, "select")
    ignore = _refs(table, "ignore")
    extend_select = _refs(table, "extend-select")
    extend_ignore = _refs(table, "extend-ignore")
    fail_on = table.get("fail-on", DEFAULT_FAIL_ON)
    if not isinstance(fail_on, str) or fail_on.strip().lower() not in FAIL_ON_VALUES:
        raise ConfigError(f"fail-on in {SECTION} must be one of {', '.join(FAIL_ON_VALUES)}, not {fail_on!r}")
    config = Config(
        select=tuple(select if select is not None else Config().select) + tuple(extend_select or ()),
        ignore=tuple(ignore or ()) + tuple(extend_ignore or ()),
        fail_on=fail_on.strip().lower(),
        severity=_severities(_table(table, "severity"), reg),
        options=_options(_table(table, "options"), reg),
        per_layer_ignores=_layer_ignores(_table(table, "per-layer-ignores")),
    )
    paths = table.get("paths", [])
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise ConfigError(f"paths in {SECTION} must be a list of strings, e.g. paths = [\"models/*.py\"]")
    exclude = table.get("exclude", [])
    if isinstance(exclude, str):
        exclude = [exclude]
    if not isinstance(exclude, list) or not all(isinstance(p, str) and p.strip() for p in exclude):
        raise ConfigError(f"exclude in {SECTION} must be a list of globs relative to the project root, "
                          f"e.g. exclude = [\"models/legacy/**\"], not {table.get('exclude')!r}")
    data = table.get("data")
    if data is not None and not isinstance(data, str):
        raise ConfigError(f"data in {SECTION} must be a file name (string), not {data!r}")
    timeout = table.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0):
        raise ConfigError(f"timeout in {SECTION} must be seconds per file (a number >= 0; 0: no limit), "
                          f"not {timeout!r}")
    glob = table.get("pytest-glob", ProjectConfig.pytest_glob)
    if not isinstance(glob, str) or not glob.strip():
        raise ConfigError(f"pytest-glob in {SECTION} must be a non-empty string, not {glob!r}")
    base = Path(root) if root is not None else None
    return ProjectConfig(
        config=config,
        paths=tuple(_rebase(p, base) for p in paths),
        exclude=tuple(p.strip() for p in exclude),
        data=_rebase(data, base) if data is not None else None,
        input_shape=parse_input_shape(table["input-shape"]) if "input-shape" in table else None,
        timeout=float(timeout) if timeout is not None else None,
        pytest_glob=glob.strip(),
        source=source,
        root=base,
    )


def parse_input_shape(value: Any) -> tuple[int, ...]:
    """``[3, 32, 32]`` or ``"3,32,32"`` -> ``(3, 32, 32)`` (one sample, no batch axis)."""
    items = value.replace("x", ",").split(",") if isinstance(value, str) else value
    try:
        if not isinstance(items, (list, tuple)) or not items or any(isinstance(i, bool) for i in items):
            raise ValueError
        shape = tuple(int(str(i).strip()) for i in items)
        if any(n <= 0 for n in shape):
            raise ValueError
    except ValueError:
        raise ConfigError(
            f"input-shape must list positive sizes of one sample, e.g. [3, 32, 32], not {value!r}"
        ) from None
    return shape


# -- helpers ------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise ConfigError(f"reading {path} needs Python 3.11+ or the tomli package (pip install tomli)") from None

    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}; fix the file or pass another with --config") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file (byte {exc.start} is not UTF-8): a pyproject.toml is UTF-8 "
                          "TOML; fix the file or pass another with --config") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _netdoctor_table(data: Mapping[str, Any]) -> Any:
    tool = data.get("tool")
    return tool.get("netdoctor") if isinstance(tool, Mapping) else None


def _table(table: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = table.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} in {SECTION} must be a table ([tool.netdoctor.{key}]), not {value!r}")
    return value


def _refs(table: Mapping[str, Any], key: str) -> list[str] | None:
    if key not in table:
        return None
    value = table[key]
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key} in {SECTION} must be a list of rule codes, prefixes or names, not {value!r}")
    try:
        return validate_refs(value)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (in {key} of {SECTION})") from None


def _rule_codes(ref: str, reg: Mapping[str, Any], where: str) -> list[str]:
    """Codes a severity/options key refers to: a code, a name, or a prefix."""
    key = ref.strip()
    if key.lower() in {s.name for s in reg.values()}:
        return [c for c, s in reg.items() if s.name == key.lower()]
    if key.upper().startswith("ND") and any(c.startswith(key.upper()) for c in reg):
        return [c for c in reg if c.startswith(key.upper())]
    raise ConfigError(f"unknown rule {key!r} in {where}{suggest(key, list(reg) + [s.name for s in reg.values()])}")


def _severities(table: Mapping[str, Any], reg: Mapping[str, Any]) -> dict[str, Severity]:
    out: dict[str, tuple[int, Severity]] = {}
    for ref, value in table.items():
        try:
            if not isinstance(value, str):
                raise ValueError(value)
            sev = Severity.parse(value)
        except ValueError:
            raise ConfigError(
                f"severity of {ref} in [tool.netdoctor.severity] must be \"error\", \"warning\" or \"info\", not {value!r}"
            ) from None
        for code in _rule_codes(ref, reg, "[tool.netdoctor.severity]"):
            specificity = 5 if ref.strip().upper() == code or not ref.strip().upper().startswith("ND") else len(ref.strip())
            if code not in out or specificity >= out[code][0]:  # longest prefix wins
                out[code] = (specificity, sev)
    return {code: sev for code, (_, sev) in sorted(out.items())}


def _options(table: Mapping[str, Any], reg: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for ref, values in table.items():
        where = f"[tool.netdoctor.options.{ref}]"
        codes = _rule_codes(ref, reg, "[tool.netdoctor.options]")
        if len(codes) != 1:
            raise ConfigError(f"{where}: options belong to one rule; name its code (e.g. {codes[0]}), not a prefix")
        spec = reg[codes[0]]
        if not isinstance(values, Mapping):
            raise ConfigError(f"{where} must be a table of option = value")
        for name, value in values.items():
            key = name.replace("-", "_")
            if key not in spec.options:
                valid = sorted(spec.options)
                listing = f" (valid: {', '.join(valid)})" if valid else f" ({spec.code} has no options)"
                raise ConfigError(f"unknown option {name!r} for {spec.code} {spec.name} in {where}"
                                  f"{suggest(key, valid)}{listing}")
            out.setdefault(spec.code, {})[key] = _coerce(value, spec.options[key], f"{where} {name}")
    return out


_KINDS: tuple[tuple[Any, tuple[type, ...], str], ...] = (
    (bool, (bool,), "true or false"),  # before int: bool is an int
    (int, (int,), "an integer"),
    (float, (int, float), "a number"),
    (str, (str,), "a string"),
    ((list, tuple, set, frozenset), (list,), "a list"),
    (Mapping, (Mapping,), "a table"),
)


def _coerce(value: Any, default: Any, where: str) -> Any:
    """Check ``value`` against the type of the rule's default (ints are fine for floats)."""
    for dtype, accepted, kind in _KINDS:
        if default is None or not isinstance(default, dtype):
            continue
        if not isinstance(value, accepted) or (isinstance(value, bool) and not isinstance(default, bool)):
            raise ConfigError(f"{where} must be {kind} like the default {default!r}, not {value!r}")
        if isinstance(default, float):
            return float(value)
        return type(default)(value) if isinstance(default, (tuple, set, frozenset)) else value
    return value


def _layer_ignores(table: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for pattern, refs in table.items():
        if isinstance(refs, str):
            refs = [refs]
        if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
            raise ConfigError(f"[tool.netdoctor.per-layer-ignores] {pattern!r} must be a list of rules, not {refs!r}")
        try:
            out[pattern] = tuple(validate_refs(refs))
        except ConfigError as exc:
            raise ConfigError(f"{exc} (in [tool.netdoctor.per-layer-ignores] {pattern!r})") from None
    return out


def _rebase(path: str, root: Path | None) -> str:
    """A path from the config file, made relative to the current directory when possible."""
    if root is None or os.path.isabs(path):
        return path
    joined = os.path.normpath(os.path.join(root, path))
    try:
        rel = os.path.relpath(joined)
    except ValueError:  # another drive on Windows
        return joined
    return rel
