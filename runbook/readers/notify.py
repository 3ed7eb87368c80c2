"""Notifications: one Telegram message per run (the runbooks' alert bot) and a JSON webhook.

Why: the on-call should hear about a check that turned red (or green again) without opening
the report, and not hear the same news every hour. With `--notify=changes` a run sends
only when something changed against the previous run of its scope (a check turned red or
was resolved; without a history, when it has failures); `--notify=always` sends every
run. The message says the worst severity, the new failures, the ones still failing, the
resolved ones and where the report is (`--report-url`, else its path on the runner).

Telegram: `ALERT_TELEGRAM_BOT_TOKEN` and `ALERT_TELEGRAM_CHAT_ID` from the environment (never
from the command line, where `ps` shows it), plain text (no parse mode: found values are
not Markdown), Bot API base URL `--telegram-api`. The webhook (`--webhook-url` or
RUNBOOK_WEBHOOK_URL) gets a JSON document for other tools. A delivery that fails is
reported on the terminal and changes nothing else: never a crash, never the token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from runbook.host import http_client
from runbook.readers.changes import CheckChange, RunChanges, short_time
from runbook.record import SEVERITIES, CheckRecord, mask_all
from runbook.secrets import SECRETS

MODES = ("off", "changes", "always")
TOKEN_ENV, CHAT_ENV = "ALERT_TELEGRAM_BOT_TOKEN", "ALERT_TELEGRAM_CHAT_ID"
WEBHOOK_ENV = "RUNBOOK_WEBHOOK_URL"
DEFAULT_TELEGRAM_API = "https://api.telegram.org"
TELEGRAM_LIMIT = 4096  # characters of one message
# What is kept of a receiver's answer: a status and a short JSON; more is cut, never held.
ANSWER_CAP = 64 << 10
TIMEOUT_SECONDS = 10.0
FORMAT = "runbook-notification/1"
LISTED = 10  # checks listed per group; the rest are counted


@dataclass(frozen=True)
class Telegram:
    api: str
    token: str
    chat_id: str

    @classmethod
    def from_environment(cls, api: str, environ: Mapping[str, str] | None = None) -> Telegram | None:
        environ = os.environ if environ is None else environ
        token, chat_id = environ.get(TOKEN_ENV, ""), environ.get(CHAT_ENV, "")
        if not (token and chat_id):
            return None
        SECRETS.add(token, TOKEN_ENV)
        return cls(api.rstrip("/"), token, chat_id)


@dataclass
class Notice:
    """What one run has to say."""

    title: str
    started: str  # ISO
    counts: dict[str, int]
    failures_by_severity: dict[str, int]
    failing: list[CheckRecord]
    changes: RunChanges | None
    report: str | None
    waivers: dict[str, Any] | None = None

    @property
    def worst(self) -> str | None:
        return next((severity for severity in SEVERITIES if self.failures_by_severity.get(severity)), None)

    def worth_sending(self, mode: str) -> bool:
        if mode == "always":
            return True
        if mode != "changes":
            return False
        if self.changes is None:  # no history to compare with: failures are news
            return bool(self.failing)
        return self.changes.changed

    def text(self) -> str:
        """The Telegram message: plain text, at most TELEGRAM_LIMIT characters."""
        head = f"FAILED, worst {self.worst}" if self.worst else ("FAILED" if self.failing else "OK")
        counts = ", ".join(f"{count} {outcome}" for outcome, count in self.counts.items() if count)
        lines = [f"{head} — {self.title}", f"{counts} · {short_time(self.started)}"]
        if self.changes is not None:
            lines += _group("New failures", self.changes.new, _failure_line)
            lines += _group("Flapping", self.changes.flapping, _failure_line)
            lines += _group("Still failing", self.changes.still_failing, _failure_line)
            lines += _group("Resolved", self.changes.resolved, _resolved_line)
        else:
            lines += _group("Failures", self.failing, _record_line)
        if self.report:
            lines += ["", f"Report: {self.report}"]
        text = SECRETS.mask("\n".join(lines))
        return text if len(text) <= TELEGRAM_LIMIT else text[: TELEGRAM_LIMIT - 2] + " …"

    def document(self) -> dict[str, Any]:
        """The webhook's JSON."""
        return mask_all(
            {
                "format": FORMAT,
                "title": self.title,
                "started": self.started,
                "worst_severity": self.worst,
                "counts": self.counts,
                "failures_by_severity": self.failures_by_severity,
                "failing": [record.id for record in self.failing],
                "changes": self.changes.to_json() if self.changes is not None else None,
                "waivers": self.waivers,
                "report": self.report,
                "text": self.text(),
            }
        )


def _group(name: str, items: Sequence[Any], line: Any) -> list[str]:
    if not items:
        return []
    lines = ["", f"{name} ({len(items)}):"]
    lines += [line(item) for item in items[:LISTED]]
    if len(items) > LISTED:
        lines.append(f"• … and {len(items) - LISTED} more")
    return lines


def _failure_line(change: CheckChange) -> str:
    since = "" if change.status == "new" else f" (since {short_time(change.since)}, {change.runs} runs)"
    if change.flapping:
        flapping = f"flapping: {change.changes} changes in the last runs"
        since = f"{since[:-1]}; {flapping})" if since else f" ({flapping})"
    return f"• [{change.severity or '-'}] {change.title} ({change.check}): {change.found or 'failed'}{since}"


def _resolved_line(change: CheckChange) -> str:
    since = short_time(change.since)
    return f"• [{change.severity or '-'}] {change.title} ({change.check}), red since {since}"


def _record_line(record: CheckRecord) -> str:
    return f"• [{record.severity or '-'}] {record.title} ({record.id}): {record.found or record.message}"


def send_telegram(telegram: Telegram, text: str) -> str | None:
    """None when delivered, else what went wrong (the token never in it)."""
    url = f"{telegram.api}/bot{telegram.token}/sendMessage"
    payload = {"chat_id": telegram.chat_id, "text": text, "disable_web_page_preview": True}
    try:
        response = _post(url, payload)
        answer = _json(response)
        if response.status == 200 and answer.get("ok") is True:
            return None
        problem = f"HTTP {response.status} {answer.get('description') or _phrase(response.status)}".strip()
    except http_client.RequestFailed as exc:
        problem = str(exc)  # 'ConnectError: [Errno 111] Connection refused'
    except http_client.NoAnswer as exc:
        problem = f"no answer: {exc}"
    return _masked(f"telegram: not delivered: {problem}", telegram.token)


def send_webhook(url: str, document: dict[str, Any]) -> str | None:
    try:
        response = _post(url, document)
        if 200 <= response.status < 300:
            return None
        problem = f"HTTP {response.status} {_phrase(response.status)}".strip()
    except http_client.RequestFailed as exc:
        problem = str(exc)  # 'ConnectError: [Errno 111] Connection refused'
    except http_client.NoAnswer as exc:
        problem = f"no answer: {exc}"
    return _masked(f"webhook: not delivered: {problem}")


def _post(url: str, payload: dict[str, Any]) -> http_client.Answer:
    """One POST with one deadline over the whole exchange and a capped answer: a receiver that
    trickles a byte every 2 s, or answers an endless body, cannot hold or grow the run."""
    return http_client.fetch(
        "POST",
        url,
        headers={"content-type": "application/json"},
        content=json.dumps(payload).encode(),
        timeout=TIMEOUT_SECONDS,
        cap=ANSWER_CAP,
    )


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _json(response: http_client.Answer) -> dict[str, Any]:
    try:
        data = json.loads(response.body)
    except (ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _masked(text: str, token: str = "") -> str:
    text = " ".join(text.split())
    if token:
        text = text.replace(token, "***")
    return SECRETS.mask(text)


def deliver(
    notice: Notice, *, mode: str, telegram: Telegram | None, webhook: str | None
) -> tuple[list[str], list[str]]:
    """Send to every configured channel; (what was sent, what failed)."""
    if not notice.worth_sending(mode):
        return [f"notify: nothing changed since the previous run, nothing sent (--notify={mode})"], []
    sent, problems = [], []
    if telegram is not None:
        problem = send_telegram(telegram, notice.text())
        if problem:
            problems.append(problem)
        else:
            sent.append(f"notify: telegram message sent to chat {telegram.chat_id}")
    if webhook:
        problem = send_webhook(webhook, notice.document())
        if problem:
            problems.append(problem)
        else:
            sent.append("notify: webhook delivered")
    return [SECRETS.mask(line) for line in sent], problems
