"""What a finished run hands on once its reports are written: the ticket, metrics, alerts, cleanup.

In order (all in runbook.readers): incident.md (incident), the bundle for the ticket with the
evidence files (bundle), Prometheus metrics (export), notifications (notify), then retention of
old run folders (retention). Each step is independent: one that
fails is reported on the terminal and the others still run; none changes the exit status,
which is the checks' verdict.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from runbook import keys
from runbook.readers import bundle, incident, notify, retention, rundir
from runbook.readers.changes import RunChanges, iso_time
from runbook.record import CheckRecord
from runbook.report.html import title_for
from runbook.report.options import ReaderSettings
from runbook.report.summary import RunRecorder, iso
from runbook.secrets import SECRETS


@dataclass
class Handoff:
    config: pytest.Config
    recorder: RunRecorder
    paths: rundir.RunPaths
    settings: ReaderSettings
    written: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def changes(self) -> RunChanges | None:
        return self.config.stash.get(keys.CHANGES, None)

    @property
    def records(self) -> list[CheckRecord]:
        return list(self.recorder.records.values())

    @property
    def folder(self) -> Path:
        """Where the run's own files go: its run folder, else beside summary.json."""
        return self.paths.folder or self.paths.summary.parent

    def report_location(self) -> str | None:
        if self.settings.report_url:
            return self.settings.report_url
        page = self.paths.html or self.paths.junit
        return str(page) if page is not None else None

    def run(self, now: datetime) -> None:
        steps = [
            ("incident.md", lambda: self.write_incident(now)),
            ("bundle", lambda: self.write_bundle(now)),
            ("metrics", lambda: self.export_metrics(now)),
            ("notify", self.send_notifications),
            ("retention", lambda: self.apply_retention(now)),
        ]
        for name, step in steps:
            try:
                step()
            except (OSError, ValueError, *_http_errors()) as exc:
                said = " ".join(str(exc).split())
                self.problems.append(SECRETS.mask(f"{name}: {type(exc).__name__}: {said}"))

    def write_incident(self, now: datetime) -> None:
        if not incident.wanted(self.recorder.marker_expression, self.settings.incident):
            return
        systems = self.config.stash.get(keys.SYSTEMS, [])
        services = [
            incident.Service(s.name, s.model.title, s.runbook_path, s.model.escalation) for s in systems
        ]
        text = incident.render(
            self.records,
            services=services,
            started=self.recorder.started,
            now=now,
            changes=self.changes,
            report=self.report_location(),
            language=self.settings.incident_language,
        )
        self.written.append(incident.write(self.folder / incident.NAME, text))

    def write_bundle(self, now: datetime) -> None:
        if not self.settings.bundle:
            return
        bundle.write_evidence(self.folder, self.records)
        changes = self.changes
        referenced = [
            change.since_report_dir
            for change in (changes.failing if changes is not None else [])
            if change.since_report_dir
        ]
        bundle.write_manifest(self.folder, referenced, iso(now))
        self.written.append(bundle.pack(self.folder))

    def export_metrics(self, now: datetime) -> None:
        settings = self.settings
        if settings.metrics_textfile is None and not settings.pushgateway:
            return
        # Here, not at the top: prometheus_client costs every run 80 ms to import, most never export.
        from runbook.readers import export

        markers = rundir.slug(self.recorder.marker_expression)
        registry = export.registry_of(
            self.records,
            markers=markers,
            duration=(now - self.recorder.started).total_seconds(),
            finished=now,
        )
        if settings.metrics_textfile is not None:
            export.write_textfile(str(settings.metrics_textfile), registry)
            self.notes.append(f"metrics: {settings.metrics_textfile}")
        if settings.pushgateway:
            try:
                export.push(settings.pushgateway, registry, markers)
            except OSError as exc:  # urllib's URLError and HTTPError are OSErrors
                self.problems.append(SECRETS.mask(f"pushgateway {settings.pushgateway}: not pushed: {exc}"))
            else:
                self.notes.append(SECRETS.mask(f"metrics pushed to {settings.pushgateway}"))

    def send_notifications(self) -> None:
        settings = self.settings
        if settings.notify == "off":
            return
        waivers = self.config.stash.get(keys.WAIVERS, None)
        notice = notify.Notice(
            title=title_for(self.recorder.marker_expression, self.recorder.system_names),
            started=iso_time(self.recorder.started),
            counts=self.recorder.counts(),
            failures_by_severity=self.recorder.failures_by_severity(),
            failing=[record for record in self.records if record.failed],
            changes=self.changes,
            report=self.report_location(),
            waivers=None if waivers is None else waivers.to_json(),
        )
        sent, problems = notify.deliver(
            notice, mode=settings.notify, telegram=settings.telegram, webhook=settings.webhook
        )
        self.notes.extend(sent)
        self.problems.extend(problems)

    def apply_retention(self, now: datetime) -> None:
        if self.paths.folder is None:
            return
        current, days = self.paths.folder, self.settings.keep_days
        deleted = retention.prune(current.parent, keep_days=days, now=now, keep={current.name})
        if deleted:
            names = ", ".join(folder.name for folder in deleted)
            self.notes.append(
                f"retention: deleted {len(deleted)} run folder(s) older than "
                f"{self.settings.keep_days:g} days: {names}"
            )


def _http_errors() -> tuple[type[Exception], ...]:
    """httpx's errors once something loaded httpx (none is raised before): importing it here cost
    every run 80 ms, runs without an HTTP check or a notification included."""
    httpx = sys.modules.get("httpx")
    return () if httpx is None else (httpx.HTTPError,)
