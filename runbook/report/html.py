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
`runbook.report.environment`.
"""

from __future__ import annotations

import html
import os
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from jinja2 import Environment
from pytest_html import extras

from runbook import keys
from runbook.host.target import display_spec
from runbook.readers.changes import CheckChange, RunChanges, short_time, span
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

_templates = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)

STYLE = """
<style>
  .rb-sev { display: inline-block; min-width: 2em; padding: 1px 6px; border-radius: 3px;
            font-weight: bold; text-align: center; color: #fff; background: #78909c; }
  .rb-sev.rb-P1 { background: #c62828; } .rb-sev.rb-P2 { background: #ef6c00; }
  .rb-sev.rb-P3 { background: #f9a825; color: #222; } .rb-sev.rb-P4 { background: #78909c; }
  .rb-sev.rb-zero { background: #e0e0e0; color: #555; }
  .rb-id { color: #666; font-size: 90%; font-family: monospace; }
  .rb-summary { margin: 0.5em 0 1em 0; }
  .rb-summary .rb-severity span.rb-sev { margin-right: 0.6em; }
  .rb-failures { margin: 0.4em 0; padding-left: 1.4em; }
  .rb-failures li { margin: 0.2em 0; }
  .rb-detail { margin: 0.3em 0 0.6em 0; }
  .rb-detail table { border-collapse: collapse; }
  .rb-detail th { text-align: left; vertical-align: top; padding: 2px 10px 2px 0; color: #555;
                  font-weight: normal; white-space: nowrap; }
  .rb-detail td { padding: 2px 0; white-space: pre-wrap; color: #222; }
  #results-table td.col-check, #results-table td.col-system { color: #222; }
  .rb-detail td.rb-found { color: #b71c1c; font-weight: bold; }
  .rb-detail td.rb-remedy { background: #fff8e1; padding: 2px 6px; }
  .rb-detail details { margin-top: 0.4em; }
  .rb-detail pre { background: #f5f5f5; padding: 6px; max-height: 24em; overflow: auto; }
  .rb-skip { color: #666; }
  .rb-summary h3 { margin: 1em 0 0.3em 0; }
  .rb-summary h4 { margin: 0.8em 0 0.2em 0; }
  .rb-systems { border-collapse: collapse; margin: 0.4em 0; }
  .rb-systems th, .rb-systems td { padding: 2px 10px; border-bottom: 1px solid #ddd; text-align: left; }
  .rb-when { color: #555; }
  .rb-waiver { color: #6a1b9a; }
</style>
"""

SUMMARY = _templates.from_string(
    """
<div class="rb-summary">
  <p class="rb-run">{{ systems }} &middot; markers: <b>{{ markers }}</b> &middot; started {{ started }}</p>
  <p class="rb-severity">Failures by severity:
  {% for severity, count in by_severity %}
    <span class="rb-sev rb-{{ severity }}{% if not count %} rb-zero{% endif %}"
          title="{{ help.get(severity, '') }}">{{ severity }}: {{ count }}</span>
  {% endfor %}
  </p>
  <table class="rb-systems" id="rb-systems">
    <tr><th>System</th><th>Passed</th><th>Failed</th><th>Waived</th><th>Skipped</th><th>Worst</th></tr>
    {% for name, row in systems_table %}
    <tr><td>{{ name }}</td><td>{{ row.passed }}</td><td>{{ row.failed + row.error }}</td>
        <td>{{ row.waived }}</td><td>{{ row.skipped }}</td>
        <td>{% if row.worst %}<span class="rb-sev rb-{{ row.worst }}">{{ row.worst }}</span>\
{% else %}&ndash;{% endif %}</td></tr>
    {% endfor %}
  </table>
  {% if changes %}
  <div class="rb-history" id="rb-history">
  <h3>Since the previous run ({{ previous }})</h3>
  {% for heading, key, items in groups %}
  <h4 class="rb-{{ key }}">{{ heading }} ({{ items|length }})</h4>
  {% if items %}
  <ol class="rb-failures rb-{{ key }}">
  {% for c in items %}
    <li><span class="rb-sev rb-{{ c.severity or 'none' }}">{{ c.severity or '-' }}</span>
        <b>{{ c.title }}</b> <span class="rb-id">{{ c.check }}</span>
        {% if key != 'resolved' %}&mdash; {{ c.found or 'failed' }}{% endif %}
        <span class="rb-when">{{ when(c) }}</span></li>
  {% endfor %}
  </ol>
  {% endif %}
  {% endfor %}
  </div>
  {% else %}
  <h4>Failures ({{ failures|length }}) <span class="rb-when">{{ history_note }}</span></h4>
  {% if failures %}
  <ol class="rb-failures">
  {% for f in failures %}
    <li><span class="rb-sev rb-{{ f.severity or 'none' }}">{{ f.severity or '-' }}</span>
        <b>{{ f.title }}</b> <span class="rb-id">{{ f.id }}</span> &mdash; {{ f.found or f.message }}</li>
  {% endfor %}
  </ol>
  {% else %}
  <p>No failures.</p>
  {% endif %}
  {% endif %}
  {% if waivers %}
  <h4 id="rb-waivers">Waivers</h4>
  <ul class="rb-waiver">{% for line in waivers %}<li>{{ line }}</li>{% endfor %}</ul>
  {% endif %}
  {% if waited %}
  <h4 id="rb-waited">Waited for readiness (--wait-ready)</h4>
  <ul>{% for line in waited %}<li>{{ line }}</li>{% endfor %}</ul>
  {% endif %}
</div>
"""
)
GROUPS = (
    ("New failures", "new"),
    ("Still failing, oldest first", "still_failing"),
    ("Flapping", "flapping"),
    ("Resolved", "resolved"),
)

DETAIL = _templates.from_string(
    """
<div class="rb-detail">
  <table>
    {% if expected %}<tr><th>expected</th><td>{{ expected }}</td></tr>{% endif %}
    <tr><th>found</th><td class="rb-found">{{ found }}</td></tr>
    <tr><th>remedy</th><td class="rb-remedy">{{ remedy }}</td></tr>
    <tr><th>runbook</th><td>{% if href %}<a href="{{ href }}" target="_blank">{{ runbook }}</a>\
{% else %}{{ runbook }}{% endif %}</td></tr>
    <tr><th>host</th><td>{{ host }}</td></tr>
    {% if waiver %}<tr><th>waiver</th><td class="rb-waiver">{{ waiver }}</td></tr>{% endif %}
  </table>
  {% for name, text, count in evidence %}
  <details><summary>{{ name }} ({{ count }} line{{ 's' if count != 1 }})</summary>
    <pre>{{ text }}</pre></details>
  {% endfor %}
</div>
"""
)


def title_for(marker_expression: str | None, systems: list[str]) -> str:
    """'Daily checklist — ai-calendar-assistant'."""
    if marker_expression:
        what = TITLES.get(marker_expression.strip(), f"Checks ({marker_expression})")
    else:
        what = "All checks"
    return f"{what} — {', '.join(systems)}" if systems else what


def _text(value: Any) -> str:
    """Masked, escaped and on one line (pytest-html reads sort keys from single-line cells)."""
    return html.escape(" ".join(SECRETS.mask(str(value)).split()))


def _cell(column: str, content: str, title: str | None = None) -> str:
    extra = f' title="{_text(title)}"' if title else ""
    return f'<td class="col-{column}"{extra}>{content}</td>'


def _header(column: str, label: str) -> str:
    return f'<th class="sortable" data-column-type="{column}">{label}</th>'


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
            _header("system", "System"),
            _header("check", "Check"),
            _header("severity", "Severity"),
            _header("runbook", "Runbook"),
        ]
        _replace_test_column(cells, 'data-column-type="testId"', ours)

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        _replace_test_column(cells, 'class="col-testId"', self._row(report))
        record = record_of(report)
        if record is not None and record.outcome == "waived" and hasattr(report, "wasxfail"):
            cells[0] = '<td class="col-result">Waived</td>'

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list[str]) -> None:
        """A skip's log is its reason in words, not pytest's (path, line, 'Skipped: ...') tuple."""
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
            return [
                _cell("system", _text(path)),
                _cell("check", f'{_text(name)}<div class="rb-id">custom{_text(phase)}</div>', report.nodeid),
                _cell("severity", "&ndash;"),
                _cell("runbook", ""),
            ]
        severity = _text(record.severity)
        check = f'{_text(record.title)}<div class="rb-id">{_text(record.id)}{_text(phase)}</div>'
        runbook_file = Path(record.runbook_path or "").name
        section = f"§ {_text(record.section)}"
        href = self._href(record.runbook_path)
        if href:
            section = f'<a href="{html.escape(href)}" target="_blank">{section}</a>'
        return [
            _cell("system", _text(record.system)),
            _cell("check", check, report.nodeid),
            _cell("severity", f'<span class="rb-sev rb-{severity}">{severity}</span>'),
            _cell("runbook", f'{section}<div class="rb-id">{_text(runbook_file)}</div>', record.runbook),
        ]

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
            added.append(extras.html(f'<div class="rb-detail rb-skip">{_text(reason)}</div>'))
        elif report.passed and report.when == "call" and record.attempts > 1:
            added.append(extras.html(f'<div class="rb-detail">{_text(_waited(record))}</div>'))
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
        block = SUMMARY.render(
            systems=", ".join(self.recorder.system_names) or "no systems",
            markers=self.recorder.marker_expression or "(all)",
            started=self.recorder.started.strftime("%Y-%m-%d %H:%M:%S UTC"),
            by_severity=list(by_severity.items()),
            help=SEVERITY_HELP,
            failures=self.recorder.failures(),
            systems_table=sorted(self.recorder.by_system().items()),
            changes=changes,
            previous=_previous(changes),
            groups=[(heading, key, getattr(changes, key)) for heading, key in GROUPS] if changes else [],
            when=lambda change: _when(change, now, changes.policy.runs if changes else 0),
            history_note="(no run history: --no-history, or the store could not be read)",
            waivers=waivers.lines() if waivers is not None else [],
            waited=[_waited(record) for record in self.recorder.records.values() if record.attempts > 1],
        )
        prefix.extend([STYLE, SECRETS.mask(block)])


def _previous(changes: RunChanges | None) -> str:
    if changes is None:
        return ""
    if changes.previous is None:
        return f"first recorded run of {changes.scope}"
    return f"{changes.scope}, {short_time(changes.previous.started)}"


def _when(change: CheckChange, now: datetime, window: int) -> str:
    """'(since 2026-11-21 08:15 UTC: 2 d, 3 runs)', '(new)', '(4 changes in the last 10 runs)'."""
    if change.status == "new":
        return "(new)"
    if change.status == "flapping":
        return f"({change.changes} changes of state in the last {window} runs)"
    if change.status == "resolved":
        return f"(was red since {short_time(change.since)}, {change.runs} run(s))"
    return f"(since {short_time(change.since)}: {span(change.lasted(now))}, {change.runs} runs)"


def _waited(record: CheckRecord) -> str:
    if record.ready_after is not None:
        return f"{record.id}: green {record.ready_after:g} s after the run started, attempt {record.attempts}"
    return f"{record.id}: still failing after {record.attempts} attempts"


def _last_lines(text: str, limit: int = EVIDENCE_LINES) -> str:
    lines = text.splitlines()
    return "\n".join(lines[-limit:])


def _replace_test_column(cells: list[str], marker: str, replacement: list[str]) -> None:
    """pytest-html's node id column becomes ours (or ours go after the result column)."""
    for index, cell in enumerate(cells):
        if marker in str(cell):
            cells[index : index + 1] = replacement
            return
    cells[1:1] = replacement
