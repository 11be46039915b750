"""pytest plugin (entry point ``pytest11: netdoctor``).

Three ways to use netdoctor from pytest:

* the ``netdoctor`` fixture, in your own tests::

      def test_model_is_healthy(netdoctor):
          report = netdoctor.check(build_model(), x, y)
          report.assert_ok()                      # fail_on="warning" by default

* the ``netdoctor`` marker configures that fixture for one test (or a module/class)::

      @pytest.mark.netdoctor(select=["ND3"], ignore=["ND302"], fail_on="error")

* ``pytest --netdoctor`` collects model files (``pytest-glob`` of ``[tool.netdoctor]``,
  or ``--netdoctor-glob``; default ``**/*model*.py``) among the files pytest visits and
  makes one test item per (file, rule), e.g. ``models/net.py::ND301-vanishing-gradients``,
  so ``-k``, ``-m netdoctor``, ``-x``, ``--junitxml`` and the summary work as for any test.
  Each file is imported once at collection and checked once, on its first item; its items
  share the cached report. A file that cannot be imported is one failing item ``load``.
  Test modules (``python_files``) and ``conftest.py`` are never treated as model files.

Loading this plugin imports neither torch, tensorflow nor keras (it is loaded in every
pytest session of an environment where netdoctor is installed); it does nothing unless
the fixture, the marker or ``--netdoctor`` is used.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import pytest

from netdoctor.config import FAIL_ON_VALUES, Config, ProjectConfig, load_project_config, make_config
from netdoctor.errors import ConfigError, NetdoctorError
from netdoctor.findings import Finding, Report, Severity

if TYPE_CHECKING:
    from netdoctor.loader import LoadedModel
    from netdoctor.rules import RuleSpec

_PROJECT = pytest.StashKey["ProjectConfig | ConfigError"]()
MARKER_KEYS = ("select", "ignore", "fail_on")


# -- the report returned by the fixture --------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckedReport(Report):
    """A :class:`~netdoctor.findings.Report` that can assert it is healthy.

    Attributes:
        default_fail_on: Threshold :meth:`assert_ok` uses when called without one (from
            the ``netdoctor`` marker, else ``"warning"``).
    """

    default_fail_on: str = "warning"

    @classmethod
    def of(cls, report: Report, fail_on: str = "warning") -> CheckedReport:
        """Wrap a plain report."""
        return cls(**{f.name: getattr(report, f.name) for f in fields(Report)}, default_fail_on=fail_on)

    def assert_ok(self, fail_on: str | None = None) -> None:
        """Fail the test when a finding is at or above ``fail_on`` (or a file failed to load).

        The failure message is the rendered text report.
        """
        __tracebackhide__ = True
        assert_ok(self, fail_on or self.default_fail_on)


def assert_ok(report: Report, fail_on: str = "warning") -> None:
    """Fail the current test unless ``report`` is clean at ``fail_on``.

    Args:
        report: Any netdoctor report.
        fail_on: ``"error"``, ``"warning"``, ``"info"`` or ``"never"`` (load errors still fail).
    """
    __tracebackhide__ = True
    fail_on = _fail_on(fail_on)
    if report.exit_code(fail_on) == 0:
        return
    bad = [f for f in report.findings if fail_on != "never" and f.severity >= Severity.parse(fail_on)]
    head = f"netdoctor: {len(bad)} finding{'s' if len(bad) != 1 else ''} at or above {fail_on!r}"
    if report.errors:
        head += f", {len(report.errors)} model{'s' if len(report.errors) != 1 else ''} could not be checked"
    pytest.fail(f"{head}\n\n{render_text(report)}", pytrace=True)


def render_text(report: Report) -> str:
    """The plain text report (no colour); a built-in fallback if the text reporter is missing."""
    try:
        from netdoctor.reporters import render

        text = render("text", report, color=False)
        return re.sub(r"\x1b\[[0-9;]*m", "", text)
    except (ImportError, ValueError):
        lines = [f"{f.code} {f.name} {describe(f)}" for f in report.findings]
        lines += [f"could not check {e.file}: {e.message}" for e in report.errors]
        lines.append(report.summary())
        return "\n".join(lines) + "\n"


def describe(f: Finding) -> str:
    """A finding as a few plain lines: severity, layer, measurement, fix, snippet."""
    out = [f"[{f.severity}] {f.layer + ': ' if f.layer else ''}{f.message}"]
    if f.recommendation:
        out.append(f"  Fix: {f.recommendation}")
    if f.snippet:
        out.extend("      " + line for line in f.snippet.splitlines())
    return "\n".join(out)


# -- the fixture and the marker -----------------------------------------------------------


class NetdoctorFixture:
    """What the ``netdoctor`` fixture returns.

    Attributes:
        config: The rule configuration: ``[tool.netdoctor]`` refined by the marker.
        fail_on: Default threshold of :meth:`CheckedReport.assert_ok`.
    """

    def __init__(self, config: Config, fail_on: str = "warning") -> None:
        self.config = config
        self.fail_on = fail_on

    def check(self, model: Any, inputs: Any = None, targets: Any = None, **kw: Any) -> CheckedReport:
        """Run :func:`netdoctor.check` with this test's configuration.

        Args:
            model: A ``torch.nn.Module`` or a Keras 3 model.
            inputs: Probe inputs (``None``: synthetic, from ``input_shape=``).
            targets: Probe targets.
            **kw: More :func:`netdoctor.engine.check` arguments (``loss_fn``,
                ``input_shape``, ``select``, ``ignore``, ``settings``, ...).
        """
        from netdoctor.engine import check

        kw.setdefault("config", self.config)
        return CheckedReport.of(check(model, inputs, targets, **kw), self.fail_on)

    def assert_ok(self, report: Report, fail_on: str | None = None) -> None:
        """Same as ``report.assert_ok(fail_on)`` for a plain report."""
        __tracebackhide__ = True
        assert_ok(report, _fail_on(fail_on or self.fail_on))


@pytest.fixture
def netdoctor(request: pytest.FixtureRequest) -> NetdoctorFixture:
    """Check models from a test: ``netdoctor.check(model, x, y).assert_ok()``.

    Configured by ``[tool.netdoctor]`` and the ``netdoctor`` marker
    (``@pytest.mark.netdoctor(select=..., ignore=..., fail_on=...)``).
    """
    __tracebackhide__ = True
    project = _project(request.config)
    if isinstance(project, ConfigError):
        pytest.fail(f"netdoctor: {project}", pytrace=False)
    config, fail_on = project.config, "warning"
    marker = request.node.get_closest_marker("netdoctor")
    if marker is not None:
        unknown = [k for k in marker.kwargs if k not in MARKER_KEYS]
        if marker.args or unknown:
            pytest.fail(f"@pytest.mark.netdoctor takes keyword arguments {', '.join(MARKER_KEYS)}; "
                        f"got {', '.join(map(repr, marker.args)) or ', '.join(unknown)}", pytrace=False)
        try:
            config = make_config(select=_refs(marker.kwargs.get("select")),
                                 ignore=_refs(marker.kwargs.get("ignore")), base=config)
            fail_on = _fail_on(marker.kwargs.get("fail_on", fail_on))
        except (ConfigError, ValueError) as exc:
            pytest.fail(f"@pytest.mark.netdoctor: {exc}", pytrace=False)
    return NetdoctorFixture(config, fail_on)


# -- hooks ------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("netdoctor", "netdoctor: diagnose neural-network model files")
    group.addoption("--netdoctor", action="store_true", default=False,
                    help="collect model files and check each one (one test item per file and rule).")
    group.addoption("--netdoctor-glob", default=None, metavar="GLOB",
                    help="model files to collect, relative to rootdir "
                         "(default: pytest-glob of [tool.netdoctor], else **/*model*.py).")
    group.addoption("--netdoctor-fail-on", default=None, choices=FAIL_ON_VALUES,
                    help="lowest severity that fails an item (default: fail-on of [tool.netdoctor], else error).")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "netdoctor(select=None, ignore=None, fail_on='warning'): configure the netdoctor fixture; "
        "also marks the items of `pytest --netdoctor`.",
    )
    if config.getoption("netdoctor", False):
        project = _project(config)
        if isinstance(project, ConfigError):
            raise pytest.UsageError(f"netdoctor: {project}")


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if not config.getoption("netdoctor", False):
        return None
    project = _project(config)
    assert isinstance(project, ProjectConfig)
    source = f", config: {project.source}" if project.source else ""
    return [f"netdoctor: model files {_glob(config)!r}, fail-on {_item_fail_on(config)}{source}"]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    config = parent.config
    if not config.getoption("netdoctor", False) or not _is_model_file(file_path, config):
        return None
    return NetdoctorFile.from_parent(parent, path=file_path)


# -- collection of model files ------------------------------------------------------------


class NetdoctorFile(pytest.File):
    """A model file: imported once at collection, checked once on its first item."""

    loaded: Any = None
    load_error: str | None = None
    _report: Report | None = None
    _check_error: str | None = None

    def collect(self) -> Iterator[pytest.Item]:
        project = _project(self.config)
        assert isinstance(project, ProjectConfig)
        try:
            self.loaded = load_model(self.path, project)
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
            project = _project(self.config)
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
        threshold = _item_fail_on(self.config)
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


# -- seams (tests replace these) --------------------------------------------------------


def load_model(path: Path, project: ProjectConfig) -> LoadedModel:
    """Import a model file, with the project's default data and input shape."""
    from netdoctor.loader import load_model_file

    return load_model_file(str(path), data=project.data, input_shape=project.input_shape)


def check_loaded(loaded: LoadedModel, config: Config) -> Report:
    """Check a loaded model with ``config``."""
    from netdoctor.engine import check

    return check(loaded.model, loaded.inputs, loaded.targets, loss_fn=loaded.loss_fn, config=config,
                 input_shape=loaded.input_shape)


# -- helpers ------------------------------------------------------------------------------


def _project(config: pytest.Config) -> ProjectConfig | ConfigError:
    if _PROJECT not in config.stash:
        try:
            config.stash[_PROJECT] = load_project_config(start=config.rootpath)
        except ConfigError as exc:
            config.stash[_PROJECT] = exc
    return config.stash[_PROJECT]


def _glob(config: pytest.Config) -> str:
    explicit = config.getoption("netdoctor_glob", None)
    if explicit:
        return str(explicit)
    project = _project(config)
    return project.pytest_glob if isinstance(project, ProjectConfig) else ProjectConfig.pytest_glob


def _item_fail_on(config: pytest.Config) -> str:
    explicit = config.getoption("netdoctor_fail_on", None)
    if explicit:
        return str(explicit)
    project = _project(config)
    return project.config.fail_on if isinstance(project, ProjectConfig) else "error"


def _is_model_file(path: Path, config: pytest.Config) -> bool:
    if path.name == "conftest.py":
        return False
    if path.suffix == ".py" and any(fnmatch.fnmatch(path.name, pat) for pat in config.getini("python_files")):
        return False  # a test module, not a model file
    try:
        rel = path.relative_to(config.rootpath).as_posix()
    except ValueError:
        rel = path.as_posix()
    return glob_match(_glob(config), rel)


def glob_match(pattern: str, path: str) -> bool:
    """Match a POSIX path against a glob where ``**`` spans folders and ``*`` does not.

    ``**/*model*.py`` matches ``model.py`` and ``a/b/my_model.py``; a pattern without ``/``
    matches the file name in any folder.
    """
    if "/" not in pattern:
        return fnmatch.fnmatchcase(path.rsplit("/", 1)[-1], pattern)
    return re.fullmatch(_glob_regex(pattern), path) is not None


def _glob_regex(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


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


def _refs(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _fail_on(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in FAIL_ON_VALUES:
        raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON_VALUES)}, not {value!r}")
    return text
