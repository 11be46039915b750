"""``pytest --netdoctor``: which files are model files, and the test items made of them.

Model files are selected as ``netdoctor check`` selects them
(:mod:`netdoctor.modelfile.selection`): inside ``[tool.netdoctor] paths`` when configured,
else matching ``--netdoctor-glob`` or ``pytest-glob`` (default ``**/*model*.py``); never a
test module (``python_files``), ``conftest.py``, a file in a hidden folder, a virtual
environment, ``build/`` or ``dist/``, or one ``exclude`` matches. The configured ``paths``
are collected even outside ``testpaths`` (:func:`configured_files`). A model file becomes a
:class:`NetdoctorFile` with one :class:`NetdoctorItem` per selected rule, one
:class:`NetdoctorLoadItem` when it cannot be imported, or one skipped
:class:`NetdoctorNoModelItem` when it defines no model ("no model: skipped"). The file is
imported once at collection and checked once, on its first item; its items share the cached report.

The hooks that create these live in :mod:`netdoctor.pytest_plugin`. Loading and checking
a file are :func:`load_model` and :func:`check_loaded` (module globals, so tests can
replace them on this module). Importing this module imports no framework.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

from netdoctor.config import DEFAULT_FAIL_ON
from netdoctor.config_file import ProjectConfig, load_project_config
from netdoctor.errors import ConfigError, NetdoctorError, NoModelError
from netdoctor.findings import Finding, Report, Severity
from netdoctor.modelfile.selection import Selector, defines_model, select_files

if TYPE_CHECKING:
    from netdoctor.config import Config
    from netdoctor.modelfile.loader import LoadedModel
    from netdoctor.rules import RuleSpec

_PROJECT = pytest.StashKey["ProjectConfig | ConfigError"]()


def describe(f: Finding) -> str:
    """A finding as a few plain lines: severity, layer, measurement, fix, snippet."""
    out = [f"[{f.severity}] {f.layer + ': ' if f.layer else ''}{f.message}"]
    if f.recommendation:
        out.append(f"  Fix: {f.recommendation}")
    if f.snippet:
        out.extend("      " + line for line in f.snippet.splitlines())
    return "\n".join(out)


# -- collection of model files ------------------------------------------------------------


class NetdoctorFile(pytest.File):
    """A model file: imported once at collection, checked once on its first item."""

    loaded: Any = None
    load_error: str | None = None
    _report: Report | None = None
    _check_error: str | None = None

    def collect(self) -> Iterator[pytest.Item]:
        project = project_config(self.config)
        assert isinstance(project, ProjectConfig)
        if self.path.suffix == ".py" and not defines_model(self.path):
            yield NetdoctorNoModelItem.from_parent(self, name="no-model")
            return
        try:
            self.loaded = load_model(self.path, project)
        except NoModelError:  # selected by a pattern: no model is not a failure
            yield NetdoctorNoModelItem.from_parent(self, name="no-model")
            return
        except NetdoctorError as exc:
            self.load_error = str(exc)
        except Exception as exc:  # noqa: BLE001 - an import crash is this file's failure, not pytest's
            self.load_error = f"importing failed with {type(exc).__name__}: {exc}"
        if self.load_error is not None:
            yield NetdoctorLoadItem.from_parent(self, name="load")
            return
        for spec in _selected_rules(project.config):
            yield NetdoctorItem.from_parent(self, name=f"{spec.code}-{spec.name}", spec=spec)

    def report(self) -> Report:
        """The file's report, computed on first use."""
        if self._report is None and self._check_error is None:
            project = project_config(self.config)
            assert isinstance(project, ProjectConfig)
            try:
                self._report = check_loaded(self.loaded, project.config).with_file(self.display())
            except NetdoctorError as exc:
                self._check_error = str(exc)
            except Exception as exc:  # noqa: BLE001
                self._check_error = f"checking failed with {type(exc).__name__}: {exc}"
            self.loaded = None  # free the model; the report is all the items need
        if self._check_error is not None:
            raise NetdoctorItemFailure(f"{self.display()}: {self._check_error}")
        assert self._report is not None
        return self._report

    def display(self) -> str:
        """The file relative to rootdir, as in node ids."""
        try:
            return self.path.relative_to(self.config.rootpath).as_posix()
        except ValueError:
            return self.path.as_posix()


class NetdoctorItemFailure(Exception):
    """Raised by netdoctor items; shown as its message, without a traceback."""


class _Item(pytest.Item):
    """Shared by the items of a model file: marked ``netdoctor``, failures without traceback."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.add_marker("netdoctor")

    @property
    def file(self) -> NetdoctorFile:
        assert isinstance(self.parent, NetdoctorFile)
        return self.parent

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, NetdoctorItemFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)


class NetdoctorItem(_Item):
    """One rule on one model file."""

    def __init__(self, *, spec: RuleSpec, **kw: Any) -> None:
        super().__init__(**kw)
        self.spec = spec
        self.extra_keyword_matches.update({spec.code, spec.name, str(spec.category)})

    def runtest(self) -> None:
        report = self.file.report()
        threshold = item_fail_on(self.config)
        mine = report.by_code(self.spec.code)
        failing = [f for f in mine if threshold != "never" and f.severity >= Severity.parse(threshold)]
        for f in mine:
            self.user_properties.append(("netdoctor", f"{f.severity} {f.layer or '-'}: {f.message}"))
        if failing:
            raise NetdoctorItemFailure("\n".join(describe(f) for f in failing))
        ran = any(self.spec.code in t.rules_passed for t in report.targets) or bool(mine) or any(
            f.code == self.spec.code for f in report.suppressed)
        reasons = [s.reason for t in report.targets for s in t.skipped if s.code == self.spec.code]
        if reasons and not ran:
            _skip_here(f"{self.spec.code} {self.spec.name}: {reasons[0]}")

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.file.display()}: {self.spec.code} {self.spec.name}"


class NetdoctorLoadItem(_Item):
    """The one item of a model file that could not be imported."""

    def runtest(self) -> None:
        raise NetdoctorItemFailure(f"{self.file.display()}: {self.file.load_error}")

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.file.display()}: netdoctor could not load it"


class NetdoctorNoModelItem(_Item):
    """The one item of a selected file that defines no model: skipped, never failed."""

    def runtest(self) -> None:
        _skip_here("no model: skipped (no build_model(), `model` or model class netdoctor can build without arguments)")

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.file.display()}: no model: skipped"


# -- loading and checking a model file ----------------------------------------------------


def load_model(path: Path, project: ProjectConfig) -> LoadedModel:
    """Import a model file, with the project's default data and input shape."""
    from netdoctor.modelfile.loader import load_model_file

    return load_model_file(str(path), data=project.data, input_shape=project.input_shape)


def check_loaded(loaded: LoadedModel, config: Config) -> Report:
    """Check a loaded model with ``config``."""
    from netdoctor.api import check_model

    return check_model(loaded.model, loaded.inputs, loaded.targets, framework=loaded.framework, config=config,
                       loss_fn=loaded.loss_fn, input_shape=loaded.input_shape)


# -- configuration ------------------------------------------------------------------------


def project_config(config: pytest.Config) -> ProjectConfig | ConfigError:
    """The session's ``[tool.netdoctor]`` (or the error reading it), read once; the fixture uses it too."""
    if _PROJECT not in config.stash:
        try:
            config.stash[_PROJECT] = load_project_config(start=config.rootpath)
        except ConfigError as exc:
            config.stash[_PROJECT] = exc
    return config.stash[_PROJECT]


def model_glob(config: pytest.Config) -> str:
    """The glob of model files: ``--netdoctor-glob``, else ``pytest-glob`` of the project."""
    explicit = config.getoption("netdoctor_glob", None)
    if explicit:
        return str(explicit)
    project = project_config(config)
    return project.pytest_glob if isinstance(project, ProjectConfig) else ProjectConfig.pytest_glob


def item_fail_on(config: pytest.Config) -> str:
    """The lowest severity that fails an item: ``--netdoctor-fail-on``, else the project's, else error."""
    explicit = config.getoption("netdoctor_fail_on", None)
    if explicit:
        return str(explicit)
    project = project_config(config)
    return project.config.fail_on if isinstance(project, ProjectConfig) else DEFAULT_FAIL_ON


def selector(config: pytest.Config) -> Selector:
    """The session's file selection: ``[tool.netdoctor]`` (root: its folder, else rootdir), ``python_files``."""
    project = project_config(config)
    if not isinstance(project, ProjectConfig):
        project = ProjectConfig()
    project = dataclasses.replace(project, root=project.root or config.rootpath)
    tests = [*config.getini("python_files"), "conftest.py"]
    return Selector(project, test_files=tests, default_glob=model_glob(config))


def is_model_file(path: Path, config: pytest.Config) -> bool:
    """Whether pytest should collect ``path`` as a model file: the selection of ``netdoctor check``."""
    return selector(config).selectable(str(path), scoped=True)


def configured_files(config: pytest.Config) -> list[str]:
    """Files of ``[tool.netdoctor] paths`` (walked and expanded as ``netdoctor check`` does), absolute.

    Raises:
        pytest.UsageError: A configured glob that matches nothing, or a folder with nothing to select.
    """
    sel = selector(config)
    if not sel.project.paths:
        return []
    try:
        selection = select_files([], sel.project)
    except NetdoctorError as exc:
        raise pytest.UsageError(f"netdoctor: paths of [tool.netdoctor]: {exc}") from None
    files = [c.spec.partition("::")[0] for c in selection.check] + list(selection.no_model)
    return [os.path.abspath(f) for f in files]


def _selected_rules(config: Config) -> list[RuleSpec]:
    from netdoctor.engine import selected_rules

    return selected_rules(config, one_shot=True)


def _skip_here(reason: str) -> None:
    """Skip the running item, reported at the model file rather than inside this plugin."""
    __tracebackhide__ = True
    try:
        exc = pytest.skip.Exception(reason, _use_item_location=True)  # type: ignore[call-arg]
    except TypeError:  # pragma: no cover - a pytest without the (private) keyword
        exc = pytest.skip.Exception(reason)
    raise exc
