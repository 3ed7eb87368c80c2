"""report.html, the page of our own: a checklist the on-call reads at 9 am.

The top is the morning's to-do list (templates/summary.html.j2): failures by severity and by
system, runbook coverage, what changed since the previous run of the same scope (new failures,
still failing oldest first, flapping, resolved; runbook.readers.changes), waivers. Then the
environment (pytest-metadata, scrubbed by `runbook.report.environment`) and one table of every
check: Result, System, Check (title and id), Severity, Runbook (section linked to the runbook
file, the quoted line), Duration; failures first by severity. A failing check's row carries its
expected / found / remedy / runbook and its evidence (the last lines inline, the whole text as an
attachment); a skipped row its reason in words; a custom test's failure its traceback.

Written from the run's records once, at the end, as static HTML (templates/page.html.j2):
pytest-html 4 kept every row as markup inside JSON and built the table in the browser, 6.4 MB
and 10 s to open at 5,000 checks. pytest-html still provides `--html` and `--css` and
pytest-metadata the environment; its own writer is switched off (`switch_off_pytest_html`). Autoescaping
is on in every template and the finished page is masked as a whole, so nothing a host printed
becomes markup and no registered secret survives in any encoding.
"""

from __future__ import annotations

import base64
import functools
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from runbook import keys
from runbook.describe.coverage import Coverage, InventoryError, coverage_of, read_inventory
from runbook.describe.loader import LoadedSystem
from runbook.host.target import display_spec
from runbook.readers.changes import CheckChange, RunChanges, short_time, span
from runbook.readers.safe_files import write_file
from runbook.record import SEVERITIES, CheckRecord
from runbook.report.environment import clean_metadata
from runbook.report.summary import RunRecorder, utc_now
from runbook.secrets import SECRETS

TITLES = {
    "daily": "Daily checklist",
    "smoke": "Smoke checks (post-deploy gate)",
    "incident": "Incident checks",
}
SEVERITY_HELP = {"P1": "full downtime", "P2": "partial degradation", "P3": "minor", "P4": "low"}
EVIDENCE_LINES = 200
TRACE_CHARS = 20_000  # a custom test's traceback, its end kept
# The table's order and the filters' labels: what needs the on-call first.
RESULTS = {"failed": "Failed", "error": "Error", "waived": "Waived", "skipped": "Skipped", "passed": "Passed"}
# Above this many passed rows they open folded (one click on "Passed" shows them): laying out
# 4,500 passed rows was a second of the 2.3 s a 5,000-check page took to open in Chromium.
PASSED_SHOWN = 1000


def _one_line(value: Any) -> str:
    """Masked and on one line (a table cell); escaped after."""
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
STYLE = Markup(_templates.get_template("style.html.j2").render())
SUMMARY = _templates.get_template("summary.html.j2")
DETAIL = _templates.get_template("detail.html.j2")
PAGE = _templates.get_template("page.html.j2")
TABLE = _templates.get_template("table.html.j2").module  # the macros: system, check, severity, ...
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


def switch_off_pytest_html(config: pytest.Config) -> None:
    """pytest-html's configure (after ours) finds no path and registers no writer: the page is ours.
    Called once the report paths are planned (they read --html)."""
    if hasattr(config.option, "htmlpath"):
        config.option.htmlpath = None


def css_files(config: pytest.Config) -> list[Path]:
    """The --css files, checked before anything is written: a missing one is a usage error."""
    extra: list[Path] = []
    for name in getattr(config.option, "css", None) or []:
        path = Path(os.path.expandvars(name)).expanduser()
        if not path.is_file():
            raise pytest.UsageError(f"--css {name}: no such file")
        extra.append(path)
    return extra


class HtmlReport:
    """Keeps what the records do not hold (tracebacks, the environment) and writes report.html."""

    def __init__(
        self,
        config: pytest.Config,
        recorder: RunRecorder,
        html_path: Path,
        extra_css: list[Path] | None = None,
    ) -> None:
        self.config = config
        self.recorder = recorder
        self.html_path = html_path
        self.extra_css = extra_css or []
        self.traces: dict[str, str] = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """What the run checks, in the environment table: systems, markers, each host's connection.
        Scrubbed here, in place: pytest-metadata prints the same table in the terminal's header."""
        metadata = self._metadata()
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

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """A traceback is kept where it is the news: a custom test's failure, or a check that
        crashed instead of giving its verdict (runbook.run.verdict.CheckRepr has no traceback)."""
        if report.failed and hasattr(report.longrepr, "reprtraceback"):
            self._keep_trace(report.nodeid, report.longreprtext)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self._keep_trace(report.nodeid, report.longreprtext)

    def _keep_trace(self, nodeid: str, text: str) -> None:
        self.traces[nodeid] = SECRETS.mask(text[-TRACE_CHARS:])

    def _metadata(self) -> dict[str, Any] | None:
        try:
            from pytest_metadata.plugin import metadata_key
        except ImportError:  # pragma: no cover - pytest-html requires pytest-metadata
            return None
        return self.config.stash.get(metadata_key, None)

    # -- the page --------------------------------------------------------------------------

    def write(self) -> None:
        self.html_path.parent.mkdir(parents=True, exist_ok=True)  # --html out/x.html: out/ is made
        write_file(self.html_path, self.render())

    def render(self) -> str:
        records = list(self.recorder.records.values())
        counts = self.recorder.counts()
        now = utc_now()
        page = PAGE.render(
            title=title_for(self.recorder.marker_expression, self.recorder.system_names),
            style=STYLE,
            extra_css=[_style_text(path) for path in self.extra_css],
            counted=_counted(counts),
            took=f"{(now - self.recorder.started).total_seconds():.1f} s",
            written=now.strftime("%Y-%m-%d %H:%M:%S UTC"),
            summary=Markup(self._summary()),
            environment=self._environment(),
            filters=[(outcome, label, counts.get(outcome, 0)) for outcome, label in RESULTS.items()],
            folded=["passed"] if counts.get("passed", 0) > PASSED_SHOWN else [],
            rows=[self._row(record) for record in sorted(records, key=_table_order)],
        )
        return SECRETS.mask(page)

    def _environment(self) -> list[tuple[str, str]]:
        metadata = self._metadata() or {}
        return [(str(key), _plain(value)) for key, value in metadata.items()]

    def _row(self, record: CheckRecord) -> dict[str, Any]:
        if record.is_check:
            href = self._href(record.runbook_path)
            cells = [
                TABLE.system(record.system),
                TABLE.check(record.title, record.check_id, ""),
                TABLE.severity(record.severity),
                TABLE.runbook(record.section, href, Path(record.runbook_path or "").name, record.source),
            ]
        else:
            path, _, name = record.nodeid.partition("::")
            cells = [
                TABLE.system(path),
                TABLE.custom_check(name or path, "", record.nodeid),
                TABLE.no_severity(),
                TABLE.no_runbook(),
            ]
        return {
            "outcome": record.outcome,
            "label": RESULTS.get(record.outcome, record.outcome.title()),
            "cells": Markup("".join(str(cell) for cell in cells)),
            "duration": f"{record.duration:.3f} s",
            "extra": Markup(self._extra(record)),
        }

    def _extra(self, record: CheckRecord) -> str:
        """What goes under a row: the details of a failure, a skip's reason, a wait's length."""
        trace = self.traces.get(record.nodeid)
        traced = str(TABLE.trace(trace)) if trace else ""
        if record.is_check and (record.failed or record.outcome == "waived"):
            evidence = [(name, text) for name, text in record.evidence.items() if text]
            return (
                DETAIL.render(
                    expected=record.expected or "",
                    found=record.found or record.message,
                    remedy=record.remedy,
                    runbook=record.runbook,
                    href=self._href(record.runbook_path),
                    source=record.source,
                    host=record.host,
                    evidence=[_evidence(name, text) for name, text in evidence],
                    waiver=record.waiver,
                )
                + traced
            )
        if record.failed:
            return traced or str(TABLE.note(record.message or "failed"))
        if record.outcome == "skipped":
            return str(TABLE.note(record.message or "skipped", skip=True))
        if record.attempts > 1:
            return str(TABLE.note(_waited(record)))
        return ""

    def _href(self, runbook_path: str | None) -> str | None:
        """The runbook relative to the report (so a copied reports/ + repo keeps working)."""
        return _runbook_href(runbook_path, self.html_path.parent)

    def _summary(self) -> str:
        changes = self.config.stash.get(keys.CHANGES, None)
        waivers = self.config.stash.get(keys.WAIVERS, None)
        now = self.recorder.started
        failures = self.recorder.failures()  # links each failure to a failing cause (record.cause)
        causes = {record.id: record.cause for record in self.recorder.records.values() if record.cause}
        return SUMMARY.render(
            systems=", ".join(self.recorder.system_names) or "no systems",
            markers=self.recorder.marker_expression or "(all)",
            started=self.recorder.started.strftime("%Y-%m-%d %H:%M:%S UTC"),
            by_severity=list(self.recorder.failures_by_severity().items()),
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


@functools.lru_cache(maxsize=256)  # one runbook for many checks: a stat per row was a tenth of the page
def _runbook_href(runbook_path: str | None, folder: Path) -> str | None:
    if not runbook_path or not Path(runbook_path).is_file():
        return None
    return quote(Path(os.path.relpath(runbook_path, folder)).as_posix())


def _style_text(path: Path) -> Markup:
    """A --css file's text inside <style>: raw text there (escaping `>` would break `a > b`), so
    only what could end the element is defused: `</` becomes `<\\/` (in CSS the same `/`)."""
    css = path.read_text(encoding="utf-8", errors="replace")
    return Markup(css.replace("</", "<\\/"))


def _counted(counts: dict[str, int]) -> str:
    """'7 checks: 4 failed, 2 passed, 1 skipped'."""
    total = sum(counts.values())
    said = ", ".join(f"{counts[outcome]} {outcome}" for outcome in RESULTS if counts.get(outcome))
    return f"{total} check{'s' if total != 1 else ''}: {said}" if total else "no checks ran"


RESULT_RANK = {outcome: rank for rank, outcome in enumerate(RESULTS)}
SEVERITY_RANK = {severity: rank for rank, severity in enumerate(SEVERITIES)}


def _table_order(record: CheckRecord) -> tuple[int, int]:
    """Failed and errored first (P1 first), then waived, skipped, passed; the sort is stable, so
    run order within."""
    if record.failed:
        return 0, SEVERITY_RANK.get(record.severity or "", len(SEVERITY_RANK))
    return RESULT_RANK.get(record.outcome, len(RESULT_RANK)), 0


def _evidence(name: str, text: str) -> tuple[str, str, int, str | None]:
    """(name, its last lines, its line count, the whole text as a data: URI when cut)."""
    text = SECRETS.mask(text)  # the page is masked as a whole; its base64 is not read there
    lines = text.splitlines()
    if len(lines) <= EVIDENCE_LINES:
        return name, text, len(lines), None
    whole = base64.b64encode(text.encode("utf-8")).decode("ascii")
    uri = f"data:text/plain;charset=utf-8;base64,{whole}"
    return name, "\n".join(lines[-EVIDENCE_LINES:]), len(lines), uri


def _plain(value: Any) -> str:
    """An environment value as text: a mapping one 'key: value' a line, a list comma-joined."""
    if isinstance(value, Mapping):
        return "\n".join(f"{key}: {_plain(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_plain(item) for item in value)
    return str(value)


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
