"""The pytest plugin (entry point `runbook`): options, markers, loading descriptions.

Each concern lives in its own module, registered here: `collect` turns
descriptions into parametrized tests, `fixtures` serves them, `verdict` turns
what a test did into its run record and a readable failure, `report.*` writes
the run's HTML, JUnit and summary from those records. Shared state lives in the
config's stash under the keys of `runbook.keys`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from runbook import collect, fixtures, keys, logmask, verdict
from runbook.collect import GROUP_MARKER
from runbook.loader import DescriptionError, LoadedSystem, load_systems
from runbook.model import MARKERS
from runbook.secrets import SECRETS

MARKER_HELP = {
    "daily": "the morning checklist (pytest -m daily)",
    "smoke": "the post-deploy gate for CI (pytest -m smoke)",
    "incident": "what to look at during an incident (pytest -m incident)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("runbook", "runbook-suite: runbooks as checks")
    group.addoption(
        "--systems",
        dest="runbook_systems",
        metavar="PATH",
        default=None,
        help="system description file or folder of *.yml (default: ini runbook_systems)",
    )
    group.addoption(
        "--system",
        dest="runbook_only",
        metavar="NAME",
        action="append",
        default=[],
        help="check only this system (repeatable)",
    )
    group.addoption(
        "--allow-writes",
        dest="runbook_allow_writes",
        action="store_true",
        default=False,
        help="run the checks that write state on the systems they check (login rate limits, "
        "restore tests into scratch databases); off by default: the suite only reads",
    )
    group.addoption(
        "--reports-dir",
        dest="runbook_reports_dir",
        metavar="DIR",
        default=None,
        help="where runs write reports/<UTC time>-<markers>/ (default: ini runbook_reports_dir)",
    )
    # No default: installed elsewhere, the plugin stays inert until a project names its systems.
    parser.addini("runbook_systems", "default for --systems", default="")
    parser.addini("runbook_reports_dir", "default for --reports-dir", default="reports")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Before pytest-html and junitxml configure: they read the report paths set here."""
    for name in MARKERS:
        config.addinivalue_line("markers", f"{name}: {MARKER_HELP[name]}")
    config.addinivalue_line(
        "markers", f"{GROUP_MARKER}(*groups): parametrize this test with the checks of these groups"
    )
    _refuse_split_path_options(config)
    if not (config.getoption("runbook_systems") or config.getini("runbook_systems")):
        return
    SECRETS.add_from_environment()
    logmask.install_log_masking(config)
    config.stash[keys.SYSTEMS] = _load(config)
    collector = collect.Collector(config.stash[keys.SYSTEMS])
    config.stash[keys.COLLECTOR] = collector
    config.pluginmanager.register(collector, "runbook-collect")
    config.pluginmanager.register(fixtures, "runbook-fixtures")
    config.pluginmanager.register(verdict, "runbook-verdict")
    from runbook.report import plugin as report_plugin

    report_plugin.configure(config)


PATH_OPTIONS = ("--systems", "--reports-dir")


def _refuse_split_path_options(config: pytest.Config) -> None:
    """`--systems /srv/x` (with a space) is read by pytest as a test path before plugins load.

    pytest then picks its rootdir and ini from that path, so the project's pytest settings
    silently vanish. Say so, instead of running something else than was asked.
    """
    if config.inipath is not None:
        return
    args = list(config.invocation_params.args)
    for position, arg in enumerate(args[:-1]):
        if arg in PATH_OPTIONS:
            value = args[position + 1]
            raise pytest.UsageError(
                f"write {arg}={value} (with '='): pytest reads '{arg} {value}' as a test path "
                f"before plugins load and loses its rootdir/ini (now {config.rootpath})"
            )


def _load(config: pytest.Config) -> list[LoadedSystem]:
    option = config.getoption("runbook_systems") or config.getini("runbook_systems")
    location = Path(option)
    if not location.is_absolute():
        base = config.invocation_params.dir if config.getoption("runbook_systems") else config.rootpath
        location = base / location
    try:
        return load_systems(location, config.getoption("runbook_only") or None)
    except DescriptionError as exc:
        raise pytest.UsageError(str(exc)) from None
