"""pytest plugin (entry point ``pytest11: netdoctor``).

Three ways to use netdoctor from pytest:

* the ``netdoctor`` fixture, in your own tests::

      def test_model_is_healthy(netdoctor):
          report = netdoctor.check(build_model(), x, y)
          report.assert_ok()                      # fails on errors by default, like the CLI

* the ``netdoctor`` marker configures that fixture for one test (or a module/class)::

      @pytest.mark.netdoctor(select=["ND3"], ignore=["ND302"], fail_on="error")

* ``pytest --netdoctor`` collects model files, selected as ``netdoctor check`` selects them
  (:mod:`netdoctor.modelfile.selection`): the files of ``[tool.netdoctor] paths``, even
  outside ``testpaths``; without ``paths``, the files pytest visits that match
  ``--netdoctor-glob`` or ``pytest-glob`` (default ``**/*model*.py``). It makes one test
  item per (file, rule), e.g. ``models/net.py::ND301-vanishing-gradients``,
  so ``-k``, ``-m netdoctor``, ``-x``, ``--junitxml`` and the summary work as for any test.
  Each file is imported once at collection and checked once, on its first item; its items
  share the cached report. A file that cannot be imported is one failing item ``load``; a
  file that defines no model is one skipped item ``no-model``. Test modules
  (``python_files``) and ``conftest.py`` are never treated as model files.
  The files, the items and how a file is loaded and checked are
  :mod:`netdoctor.pytest_plugin.items`.

The fixture, the marker's default and the items share one default fail level,
``fail-on`` of ``[tool.netdoctor]`` (or ``--netdoctor-fail-on``), else ``error``: the same
as ``netdoctor check``.

Loading this plugin imports neither torch, tensorflow nor keras (it is loaded in every
pytest session of an environment where netdoctor is installed); it does nothing unless
the fixture, the marker or ``--netdoctor`` is used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import pytest

from netdoctor.config import DEFAULT_FAIL_ON, FAIL_ON_VALUES, Config, make_config
from netdoctor.config_file import ProjectConfig
from netdoctor.errors import ConfigError
from netdoctor.findings import Report, Severity
from netdoctor.pytest_plugin.items import (
    NetdoctorFile,
    configured_files,
    describe,
    is_model_file,
    item_fail_on,
    model_glob,
    project_config,
)

MARKER_KEYS = ("select", "ignore", "fail_on")


# -- the report returned by the fixture --------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckedReport(Report):
    """A :class:`~netdoctor.findings.Report` that can assert it is healthy.

    Attributes:
        default_fail_on: Threshold :meth:`assert_ok` uses when called without one (from
            the ``netdoctor`` marker, else the session's fail level: ``"error"`` by default).
    """

    default_fail_on: str = DEFAULT_FAIL_ON

    @classmethod
    def of(cls, report: Report, fail_on: str = DEFAULT_FAIL_ON) -> CheckedReport:
        """Wrap a plain report."""
        return cls(**{f.name: getattr(report, f.name) for f in fields(Report)}, default_fail_on=fail_on)

    def assert_ok(self, fail_on: str | None = None) -> None:
        """Fail the test when a finding is at or above ``fail_on`` (or a file failed to load).

        The failure message is the rendered text report.
        """
        __tracebackhide__ = True
        assert_ok(self, fail_on or self.default_fail_on)


def assert_ok(report: Report, fail_on: str = DEFAULT_FAIL_ON) -> None:
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


# -- the fixture and the marker -----------------------------------------------------------


class NetdoctorFixture:
    """What the ``netdoctor`` fixture returns.

    Attributes:
        config: The rule configuration: ``[tool.netdoctor]`` refined by the marker.
        fail_on: Default threshold of :meth:`CheckedReport.assert_ok`.
    """

    def __init__(self, config: Config, fail_on: str = DEFAULT_FAIL_ON) -> None:
        self.config = config
        self.fail_on = fail_on

    def check(self, model: Any, inputs: Any = None, targets: Any = None, **kw: Any) -> CheckedReport:
        """Run :func:`netdoctor.check` with this test's configuration.

        Args:
            model: A ``torch.nn.Module`` or a Keras 3 model.
            inputs: Probe inputs (``None``: synthetic, from ``input_shape=``).
            targets: Probe targets.
            **kw: More :func:`netdoctor.check` arguments (``loss_fn``,
                ``input_shape``, ``select``, ``ignore``, ``settings``, ...).
        """
        from netdoctor.api import check

        kw.setdefault("config", self.config)
        return CheckedReport.of(check(model, inputs, targets, **kw), self.fail_on)

    def assert_ok(self, report: Report, fail_on: str | None = None) -> None:
        """Same as ``report.assert_ok(fail_on)`` for a plain report."""
        __tracebackhide__ = True
        assert_ok(report, _fail_on(fail_on or self.fail_on))


@pytest.fixture
def netdoctor(request: pytest.FixtureRequest) -> NetdoctorFixture:
    """Check models from a test: ``netdoctor.check(model, x, y).assert_ok()``.

    Configured by ``[tool.netdoctor]`` (``fail-on``, else ``error``; ``--netdoctor-fail-on``
    overrides it) and the ``netdoctor`` marker
    (``@pytest.mark.netdoctor(select=..., ignore=..., fail_on=...)``).
    """
    __tracebackhide__ = True
    project = project_config(request.config)
    if isinstance(project, ConfigError):
        pytest.fail(f"netdoctor: {project}", pytrace=False)
    config, fail_on = project.config, item_fail_on(request.config)
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
                    help="lowest severity that fails an item or the fixture's assert_ok() "
                         "(default: fail-on of [tool.netdoctor], else error).")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "netdoctor(select=None, ignore=None, fail_on='error'): configure the netdoctor fixture; "
        "also marks the items of `pytest --netdoctor`.",
    )
    if config.getoption("netdoctor", False):
        project = project_config(config)
        if isinstance(project, ConfigError):
            raise pytest.UsageError(f"netdoctor: {project}")
        if config.args_source == pytest.Config.ArgsSource.TESTPATHS:
            # the configured paths are model files wherever they are, also outside testpaths
            under = [Path(a.partition("::")[0]).resolve() for a in config.args]
            config.args.extend(f for f in configured_files(config)
                               if not any(p == Path(f) or p in Path(f).parents for p in under))


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    if not config.getoption("netdoctor", False):
        return None
    project = project_config(config)
    assert isinstance(project, ProjectConfig)
    source = f", config: {project.source}" if project.source else ""
    files = f"paths {list(project.paths)!r}" if project.paths else f"model files {model_glob(config)!r}"
    return [f"netdoctor: {files}, fail-on {item_fail_on(config)}{source}"]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    config = parent.config
    if not config.getoption("netdoctor", False) or not is_model_file(file_path, config):
        return None
    return NetdoctorFile.from_parent(parent, path=file_path)


# -- helpers ------------------------------------------------------------------------------


def _refs(value: Any) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _fail_on(value: Any) -> str:
    text = str(value).strip().lower()
    if text not in FAIL_ON_VALUES:
        raise ValueError(f"fail_on must be one of {', '.join(FAIL_ON_VALUES)}, not {value!r}")
    return text
