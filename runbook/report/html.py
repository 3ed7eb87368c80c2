"""The HTML report (pytest-html 4): a checklist the on-call reads at 9 am.

Columns System, Check (title and id), Severity, Runbook (section, linked to the
runbook file when it exists) replace pytest-html's node id column. A failing
check shows expected / found / remedy / runbook in its details row (open by
default for failures), with its evidence (command output, log lines, response
body) inline and attached as text extras. The top of the report is the morning's
to-do list: failures by severity and by system, then what changed since the
previous run of the same scope (new failures, still failing oldest first,
flapping, resolved; runbook.readers.changes), waivers, then pytest-html's full table.
Skipped rows give their reason in words, waived rows read "Waived". The
environment table (pytest-metadata) is scrubbed of credentials by
`runbook.report.environment`. The markup is in templates/*.html.j2 (package data), rendered
with autoescaping, so a value a host printed is text in every field, never markup.
"""

from __future__ import annotations

import html
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from jinja2 import Environment, PackageLoader
from pytest_html import extras

from runbook import keys
from runbook.describe.coverage import Coverage, InventoryError, coverage_of, read_inventory
from runbook.describe.loader import LoadedSystem
from runbook.host.target import display_spec
from runbook.readers.changes import CheckChange, RunChanges, short_time, span
from runbook.readers.safe_files import write_file
from runbook.record import CheckRecord, record_of
from runbook.report.environment import clean_metadata
from runbook.report.summary import RunRecorder
from runbook.secrets import SECRETS

TITLES = {
    "daily": "Daily checklist",
    "smoke": "Smoke checks (post-deploy gate)",
    "incident": "Incident checks",
}
SEVERITY_HELP = {"P1": "full downtime", "P2": "partial degradation", "P3": "minor", "P4": "low"}
EVIDENCE_LINES = 200


def _one_line(value: Any) -> str:
    """Masked and on one line (pytest-html reads sort keys from single-line cells); escaped after."""
    return " ".join(SECRETS.mask(str(value)).split())


# The markup lives in templates/*.html.j2 (package data). Autoescaping is on for all of them:
# a value from a host is text wherever it lands, never markup.
_templates = Environment(
    loader=PackageLoader("runbook.report", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
_templates.filters["one_line"] = _one_line
STYLE = _templates.get_template("style.html.j2").render()
SUMMARY = _templates.get_template("summary.html.j2")
DETAIL = _templates.get_template("detail.html.j2")
TABLE = _templates.get_template("table.html.j2").module  # the macros: header, system, check, ...
GROUPS = (
    ("New failures", "new"),
    ("Still failing, oldest first", "still_failing"),
    ("Flapping", "flapping"),
    ("Resolved", "resolved"),
)


def title_for(marker_expression: str | None, systems: list[str]) -> str:
    """'Daily checklist — ai-calendar-assistant'."""
    if marker_expression:
        what = TITLES.get(marker_expression.strip(), f"Checks ({marker_expression})")
    else:
        what = "All checks"
    return f"{what} — {', '.join(systems)}" if systems else what


class HtmlReport:
    """pytest-html hooks; registered by the report plugin when an HTML report is written."""

    def __init__(self, config: pytest.Config, recorder: RunRecorder, html_path: Path) -> None:
        self.config = config
        self.recorder = recorder
        self.html_path = html_path

    # -- environment and title --------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Before pytest-html reads the environment table (its sessionstart is trylast)."""
        try:
            from pytest_metadata.plugin import metadata_key
        except ImportError:  # pragma: no cover - pytest-html requires pytest-metadata
            return
        metadata = self.config.stash.get(metadata_key, None)
        if metadata is None:
            return
        metadata["Systems"] = ", ".join(self.recorder.system_names)
        metadata["Markers"] = self.recorder.marker_expression or "(all)"
        # Which connection each host used, and where host keys were NOT verified (?host_key_check=off).
        metadata["Hosts"] = ", ".join(
            f"{system.name}/{name}={display_spec(spec)}"
            for system in self.config.stash.get(keys.SYSTEMS, [])
            for name, spec in system.model.hosts.items()
        )
        clean_metadata(metadata)

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report: Any) -> None:
        report.title = SECRETS.mask(title_for(self.recorder.marker_expression, self.recorder.system_names))

    # -- the results table ------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        ours = [
            str(TABLE.header("system", "System")),
            str(TABLE.header("check", "Check")),
            str(TABLE.header("severity", "Severity")),
            str(TABLE.header("runbook", "Runbook")),
        ]
        _replace_test_column(cells, 'data-column-type="testId"', ours)

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        _replace_test_column(cells, 'class="col-testId"', self._row(report))
        record = record_of(report)
        if record is not None and record.outcome == "waived" and hasattr(report, "wasxfail"):
            cells[0] = str(TABLE.waived())

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list[str]) -> None:
        """A skip's log is its reason in words, not pytest's (path, line, 'Skipped: ...') tuple.

        A check's failure is said once, by its details block (expected, found, remedy, runbook):
        pytest's log of the same text under it goes. An unexpected exception (the suite's own
        trouble) keeps its traceback: its longrepr has one, a check's verdict has none.
        """
        record = record_of(report)
        verdict = not hasattr(report.longrepr, "reprtraceback")  # runbook.run.verdict.CheckRepr
        failed_check = record is not None and record.is_check and verdict
        if report.failed and failed_check and data and data[0] == html.escape(report.longreprtext) + "\n":
            del data[0]
            return
        if not report.skipped or hasattr(report, "wasxfail") or not isinstance(report.longrepr, tuple):
            return
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        if data and data[0].startswith(html.escape(report.longreprtext)[:20]):
            data[0] = html.escape(SECRETS.mask(f"Skipped: {reason}")) + "\n"

    def _row(self, report: pytest.TestReport) -> list[str]:
        record = record_of(report)
        phase = "" if report.when in {"call", "collect"} else f" ({report.when})"
        if record is None or not record.is_check:
            path, _, name = report.nodeid.partition("::")
            cells = [
                TABLE.system(path),
                TABLE.custom_check(name, phase, report.nodeid),
                TABLE.no_severity(),
                TABLE.no_runbook(),
            ]
        else:
            cells = [
                TABLE.system(record.system),
                TABLE.check(record.title, record.id, phase, report.nodeid),
                TABLE.severity(record.severity),
                TABLE.runbook(
                    record.section,
                    self._href(record.runbook_path),
                    Path(record.runbook_path or "").name,
                    record.source,
                ),
            ]
        return [str(cell) for cell in cells]

    def _href(self, runbook_path: str | None) -> str | None:
        """The runbook relative to the report (so a copied reports/ + repo keeps working)."""
        if not runbook_path or not Path(runbook_path).is_file():
            return None
        relative = os.path.relpath(runbook_path, self.html_path.parent)
        return quote(Path(relative).as_posix())

    # -- details: expected / found / remedy, evidence ---------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Before pytest-html (trylast) collects the reports' extras."""
        record = record_of(report)
        if record is None or not record.is_check:
            return
        added: list[dict[str, Any]] = []
        waived = record.outcome == "waived" and hasattr(report, "wasxfail")
        if report.failed or waived:
            evidence = [(name, text) for name, text in record.evidence.items() if text]
            shown = [(name, _last_lines(text), len(text.splitlines())) for name, text in evidence]
            found = record.found or record.message or report.longreprtext.strip()
            block = DETAIL.render(
                expected=record.expected or "",
                found=found,
                remedy=record.remedy,
                runbook=record.runbook,
                href=self._href(record.runbook_path),
                host=record.host,
                evidence=shown,
                waiver=record.waiver,
            )
            added.append(extras.html(block))
            added.extend(extras.text(text, name=name) for name, text in evidence)
        elif report.skipped and report.when in {"setup", "call"}:
            reason = record.message or "skipped"
            added.append(extras.html(str(TABLE.note(reason, skip=True))))
        elif report.passed and report.when == "call" and record.attempts > 1:
            added.append(extras.html(str(TABLE.note(_waited(record)))))
        if added:
            report.extras = [*getattr(report, "extras", []), *added]  # type: ignore[attr-defined]

    # -- summary ------------------------------------------------------------------------

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
    ) -> None:
        by_severity = self.recorder.failures_by_severity()
        changes = self.config.stash.get(keys.CHANGES, None)
        waivers = self.config.stash.get(keys.WAIVERS, None)
        now = self.recorder.started
        failures = self.recorder.failures()  # links each failure to a failing cause (record.cause)
        causes = {record.id: record.cause for record in self.recorder.records.values() if record.cause}
        block = SUMMARY.render(
            systems=", ".join(self.recorder.system_names) or "no systems",
            markers=self.recorder.marker_expression or "(all)",
            started=self.recorder.started.strftime("%Y-%m-%d %H:%M:%S UTC"),
            by_severity=list(by_severity.items()),
            help=SEVERITY_HELP,
            failures=failures,
            causes=causes,
            systems_table=sorted(self.recorder.by_system().items()),
            changes=changes,
            previous=_previous(changes),
            groups=[(heading, key, getattr(changes, key)) for heading, key in GROUPS] if changes else [],
            when=lambda change: _when(change, now, changes.policy.runs if changes else 0),
            history_note="(no run history: --no-history, or the store could not be read)",
            waivers=waivers.lines() if waivers is not None else [],
            waited=[_waited(record) for record in self.recorder.records.values() if record.attempts > 1],
            coverage=_coverage(self.config.stash.get(keys.SYSTEMS, [])),
        )
        prefix.extend([STYLE, SECRETS.mask(block)])


def _coverage(systems: list[LoadedSystem]) -> list[tuple[str, Coverage | None, str]]:
    """Per system of the run: how much of its runbook the suite checks (or why that is unknown)."""
    rows: list[tuple[str, Coverage | None, str]] = []
    for system in systems:
        if system.model.coverage is None:
            rows.append((system.name, None, "no statement inventory (coverage:)"))
            continue
        try:
            rows.append((system.name, coverage_of(read_inventory(Path(system.model.coverage))), ""))
        except (InventoryError, OSError) as exc:
            rows.append((system.name, None, str(exc)))
    return rows


def _previous(changes: RunChanges | None) -> str:
    if changes is None:
        return ""
    if changes.previous is None:
        return f"first recorded run of {changes.scope}"
    return f"{changes.scope}, {short_time(changes.previous.started)}"


def _when(change: CheckChange, now: datetime, window: int) -> str:
    """'(since 2026-11-21 08:15 UTC: 2 d, 3 runs)', '(new)', '(new; flapping: 4 changes of ...)'."""
    flapping = ""
    if change.flapping:
        flapping = f"; flapping: {change.changes} changes of state in the last {window} runs"
    if change.status == "new":
        return f"(new{flapping})"
    if change.status == "resolved":
        return f"(was red since {short_time(change.since)}, {change.runs} run(s))"
    return f"(since {short_time(change.since)}: {span(change.lasted(now))}, {change.runs} runs{flapping})"


def _waited(record: CheckRecord) -> str:
    if record.ready_after is not None:
        return f"{record.id}: green {record.ready_after:g} s after the run started, attempt {record.attempts}"
    return f"{record.id}: still failing after {record.attempts} attempts"


def _last_lines(text: str, limit: int = EVIDENCE_LINES) -> str:
    lines = text.splitlines()
    return "\n".join(lines[-limit:])


# pytest-html's template writes its data (every row's cells, as markup, in JSON) into a double-quoted
# attribute, escaped by Jinja: each " of the JSON and of the markup in it becomes &#34;.
DATA_ATTRIBUTE = re.compile(r'data-jsonblob="([^"]*)"')


def shrink_data(path: Path) -> None:
    """The same data in a single-quoted attribute, where only ' and & need escaping.

    A third smaller (5,000 checks: 9.8 MB to 6.8 MB), read the same by the page's script
    (dataset.jsonblob). Every & in the escaped text starts one of Jinja's five entities, so the
    three that a single-quoted value does not need are turned back exactly; &amp; and &#39; stay.
    A page without the attribute (another pytest-html) is left as it is.
    """
    page = path.read_text(encoding="utf-8")
    found = DATA_ATTRIBUTE.search(page)
    if found is None:
        return
    data = found.group(1).replace("&#34;", '"').replace("&lt;", "<").replace("&gt;", ">")
    data = data.replace("'", "&#39;")  # Jinja escapes it already; an escaping that did not stays safe
    write_file(path, f"{page[: found.start()]}data-jsonblob='{data}'{page[found.end() :]}")


def _replace_test_column(cells: list[str], marker: str, replacement: list[str]) -> None:
    """pytest-html's node id column becomes ours (or ours go after the result column)."""
    for index, cell in enumerate(cells):
        if marker in str(cell):
            cells[index : index + 1] = replacement
            return
    cells[1:1] = replacement
