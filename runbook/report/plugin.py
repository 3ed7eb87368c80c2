"""The report plugin: decides where a run's reports go and registers their writers and readers.

Called by `runbook.plugin.pytest_configure` (tryfirst), before pytest-html and
junitxml configure (junitxml reads its path; pytest-html finds none and stays off). The
reader options are checked first (`options`), so a bad one stops the run before it makes a
folder. `rundir` picks the paths, `summary`
records every test, `runbook.readers.waivers` turns accepted failures into xfails,
`comparison` records the run in its history and compares it with the previous runs,
`junit` adds the runbook's facts to junitxml's output, `html` keeps what report.html needs
beyond the records, and `RunOutput` (here) finishes the run: report.html (`html`, our own
page; pytest-html's writer is switched off), summary.json, `latest`, then `handoff`
(incident.md, bundle, metrics, notifications, retention), and the terminal lines
saying where everything is. `runbook.run.readiness` (--wait-ready) is registered where
tests run, also on xdist workers.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

import pytest

from runbook import keys
from runbook.readers import rundir, waivers
from runbook.readers.history import HistoryError, HistoryStore
from runbook.record import CheckRecord
from runbook.report.comparison import HistoryComparison
from runbook.report.handoff import Handoff
from runbook.report.html import HtmlReport, css_files, switch_off_pytest_html
from runbook.report.junit import JunitProperties
from runbook.report.options import ReaderSettings
from runbook.report.summary import RunRecorder, utc_now
from runbook.run import readiness
from runbook.secrets import SECRETS

# Runs that only print something (help, markers, fixtures, collection) write no reports.
INFORMATIONAL_OPTIONS = (
    "help",
    "version",
    "markers",
    "showfixtures",
    "show_fixtures_per_test",
    "collectonly",
)


def configure(config: pytest.Config) -> None:
    readiness.configure(config)
    if hasattr(config, "workerinput"):  # an xdist worker: the controller writes the reports
        return
    if any(getattr(config.option, name, False) for name in INFORMATIONAL_OPTIONS):
        switch_off_pytest_html(config)  # they write nothing, --html or not
        return
    settings = ReaderSettings.of(config)
    waivers.configure(config, settings.waivers, settings.today)
    _open_history(settings.history)
    extra_css = css_files(config)
    paths = rundir.plan(config, utc_now())
    switch_off_pytest_html(config)
    config.stash[keys.RUN_PATHS] = paths
    systems = [system.name for system in config.stash.get(keys.SYSTEMS, [])]
    recorder = RunRecorder(config, systems)
    config.pluginmanager.register(recorder, "runbook-summary")
    config.pluginmanager.register(JunitProperties(config, recorder), "runbook-junit")
    if settings.history is not None:
        comparison = HistoryComparison(config, recorder, settings.history, settings.flapping, paths.folder)
        config.pluginmanager.register(comparison, "runbook-history")
    page = None
    if paths.html is not None:
        page = HtmlReport(config, recorder, paths.html, extra_css)
        config.pluginmanager.register(page, "runbook-html")
    config.pluginmanager.register(RunOutput(config, recorder, paths, settings, page), "runbook-output")


# Seconds the start waits for a history file another process holds locked: the checks matter
# more than the history row, which is written at the end (and waited for again there).
START_BUSY_SECONDS = 5.0


def _open_history(location: str | None) -> None:
    """A history store that cannot be reached is a runner set up wrong: stop before checking.
    One that is only locked by another process is not: the checks run, the row is tried at the end."""
    if location is None:
        return
    try:
        HistoryStore.open(location, busy_seconds=START_BUSY_SECONDS).close()
    except HistoryError as exc:
        if not exc.busy:
            raise pytest.UsageError(str(exc)) from None
        sys.stderr.write(f"runbook history: {exc}; the checks run, the history row is tried at the end\n")


class RunOutput:
    """summary.json and `latest` once every other writer is done, the handoff; then the terminal lines."""

    def __init__(
        self,
        config: pytest.Config,
        recorder: RunRecorder,
        paths: rundir.RunPaths,
        settings: ReaderSettings,
        page: HtmlReport | None = None,
    ) -> None:
        self.config = config
        self.page = page
        self.recorder = recorder
        self.paths = paths
        self.handoff = Handoff(config, recorder, paths, settings)
        self.problems: list[str] = []

    # trylast wrapper: innermost, so this runs after junitxml wrote its file and the history was
    # compared, and before the terminal reporter's own wrapper prints the summary.
    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> Generator[None, Any, Any]:
        try:
            result = yield
        except OSError as exc:  # a full disk under junit.xml: the run still ends
            self.problems.append(f"cannot write a report: {exc}")
            result = None
        if self.page is not None:
            try:
                self.page.write()
            except Exception as exc:  # a full disk, or a value the page cannot show: the run's
                # other reports, its history row and its exit code still come
                self.problems.append(f"cannot write {self.paths.html}: {type(exc).__name__}: {exc}")
        try:
            self.recorder.write(self.paths.summary, int(session.exitstatus))
        except OSError as exc:
            self.problems.append(f"cannot write {self.paths.summary}: {exc}")
        if self.paths.folder is not None:
            try:
                rundir.point_latest(self.paths.folder)
            except OSError as exc:
                self.problems.append(f"cannot point {rundir.LATEST} at {self.paths.folder.name}: {exc}")
        self.handoff.run(utc_now())
        return result

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        base = self.config.invocation_params.dir
        written = [path for path in [*self.paths.files(), *self.handoff.written] if path.exists()]
        if self.paths.folder is not None:
            folder = rundir.display(self.paths.folder, base)
            names = ", ".join(path.name for path in written)
            line = f"runbook reports: {folder}/ ({names})"
        else:
            line = "runbook reports: " + ", ".join(rundir.display(path, base) for path in written)
        terminalreporter.write_sep("-", SECRETS.mask(line))
        for record in self.recorder.records.values():
            if record.attempts > 1:
                terminalreporter.write_line(SECRETS.mask(f"runbook --wait-ready: {_waited(record)}"))
        for note in self.handoff.notes:
            terminalreporter.write_line(SECRETS.mask(f"runbook {note}"))
        for problem in [*self.problems, *self.handoff.problems]:
            terminalreporter.write_line(SECRETS.mask(f"runbook reports: {problem}"), yellow=True)


def _waited(record: CheckRecord) -> str:
    if record.ready_after is not None:
        return f"{record.id} green after {record.ready_after:g} s ({record.attempts} attempts)"
    return f"{record.id} still failing ({record.attempts} attempts)"
