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

from runbook import keys
from runbook.describe import params
from runbook.describe.loader import DescriptionError, LoadedSystem, load_systems
from runbook.describe.model import MARKERS
from runbook.host import processes, samples
from runbook.readers.rundir import reports_dir
from runbook.report import options as report_options
from runbook.run import budget, collect, fixtures, gate, gc_pace, logger_race, verdict
from runbook.run.collect import GROUP_MARKER
from runbook.run.prefetch import DEFAULT_HOSTS_AT_ONCE, AheadPlugin
from runbook.run.shard import ShardSelection, parse_shard
from runbook.secrets import SECRETS, logmask

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
        "--allow-downloads",
        dest="runbook_allow_downloads",
        action="store_true",
        default=False,
        help="run the checks that download a whole file from the service (an admin database "
        "backup); implied by --allow-writes",
    )
    group.addoption(
        "--param",
        dest="runbook_params",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="a value for a description's {NAME} placeholders, e.g. --param user=test1 (repeatable)",
    )
    group.addoption(
        "--reports-dir",
        dest="runbook_reports_dir",
        metavar="DIR",
        default=None,
        help="where runs write reports/<UTC time>-<markers>/ (default: ini runbook_reports_dir)",
    )
    group.addoption(
        "--parallel-hosts",
        dest="runbook_parallel_hosts",
        metavar="N",
        type=int,
        default=DEFAULT_HOSTS_AT_ONCE,
        help=f"check up to N hosts at once, reports unchanged (runbook.run.prefetch; default "
        f"{DEFAULT_HOSTS_AT_ONCE}; 0: each check runs in its own test, one after another)",
    )
    group.addoption(
        "--dist-hosts",
        dest="runbook_dist_hosts",
        action="store_true",
        default=False,
        help="with -n N: give each xdist worker whole hosts (all checks of a host on one worker)",
    )
    group.addoption(
        "--shard",
        dest="runbook_shard",
        metavar="K/N",
        default=None,
        help="check only the hosts of shard K of N (hosts split by hash; join with python -m runbook.merge)",
    )
    group.addoption(
        "--run-deadline",
        dest="runbook_run_deadline",
        metavar="DURATION",
        default=None,
        help="the whole run's budget (e.g. 10m): checks not started by then are reported as not run",
    )
    report_options.add_options(parser)  # history, incident ticket, waivers, alerts, the smoke gate
    # No default: installed elsewhere, the plugin stays inert until a project names its systems.
    parser.addini("runbook_systems", "default for --systems", default="")
    parser.addini("runbook_reports_dir", "default for --reports-dir", default="reports")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Before pytest-html and junitxml configure: the report paths are set here (report.html is ours)."""
    for name in MARKERS:
        config.addinivalue_line("markers", f"{name}: {MARKER_HELP[name]}")
    config.addinivalue_line(
        "markers", f"{GROUP_MARKER}(*groups): parametrize this test with the checks of these groups"
    )
    _refuse_split_path_options(config)
    if not (config.getoption("runbook_systems") or config.getini("runbook_systems")):
        return
    SECRETS.add_from_environment()
    processes.allow_open_files()
    gc_pace.pace()
    logmask.install_log_masking(config)
    logger_race.install()
    config.stash[keys.SYSTEMS] = _load(config)
    samples.STORE.folder = reports_dir(config) / samples.STATE_FOLDER
    collector = collect.Collector(config.stash[keys.SYSTEMS], gate.Permissions.of(config))
    config.stash[keys.COLLECTOR] = collector
    config.pluginmanager.register(collector, "runbook-collect")
    config.pluginmanager.register(fixtures, "runbook-fixtures")
    config.pluginmanager.register(verdict, "runbook-verdict")
    _register_host_splitting(config, collector)
    budget.configure(config)
    from runbook.report import plugin as report_plugin

    report_plugin.configure(config)


def _register_host_splitting(config: pytest.Config, collector: collect.Collector) -> None:
    """--shard, --dist-hosts and checks run ahead: each in the process where it acts."""
    shard = parse_shard(config.getoption("runbook_shard"))
    if shard is not None:
        config.pluginmanager.register(ShardSelection(collector.systems, shard), "runbook-shard")
    dist_hosts = config.getoption("runbook_dist_hosts")
    on_worker = hasattr(config, "workerinput")
    if not on_worker and config.getoption("numprocesses", None):  # the xdist controller runs no test
        if dist_hosts:
            from runbook.run.host_scheduling import HostDistribution

            config.pluginmanager.register(HostDistribution(collector.systems), "runbook-by-host")
        return
    hosts_at_once = config.getoption("runbook_parallel_hosts")
    # A worker given single tests (not whole hosts) would run its hosts' other checks twice.
    if hosts_at_once > 0 and (dist_hosts or not on_worker):
        plugin = AheadPlugin(collector, config, hosts_at_once)
        config.pluginmanager.register(plugin, "runbook-ahead")


PATH_OPTIONS = ("--systems", "--reports-dir", "--waivers", "--metrics-textfile", "--history-dsn")


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


def _params(config: pytest.Config) -> dict[str, str]:
    """--param NAME=VALUE options; a malformed one is a usage error."""
    try:
        return params.parse(config.getoption("runbook_params"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def _load(config: pytest.Config) -> list[LoadedSystem]:
    option = config.getoption("runbook_systems") or config.getini("runbook_systems")
    location = Path(option)
    if not location.is_absolute():
        base = config.invocation_params.dir if config.getoption("runbook_systems") else config.rootpath
        location = base / location
    try:
        return load_systems(location, config.getoption("runbook_only") or None, _params(config))
    except DescriptionError as exc:
        raise pytest.UsageError(str(exc)) from None
