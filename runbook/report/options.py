"""The readers' options: history, incident ticket, waivers, notifications, exports, the smoke gate.

Added by `runbook.plugin.pytest_addoption`; read once into `ReaderSettings`, which refuses
a bad value as a usage error (exit 4) before the run makes a folder or checks anything:
a gate that cannot tell anyone its result should not pretend to run. Values that are
secrets (a history DSN with a password, the Telegram token) come from the environment.
"""

from __future__ import annotations

import math
import os
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from runbook.readers.changes import FlapPolicy
from runbook.readers.history import DEFAULT_NAME as HISTORY_FILE
from runbook.readers.history import POSTGRES_SCHEMES
from runbook.readers.incident import LANGUAGES
from runbook.readers.notify import DEFAULT_TELEGRAM_API, MODES, WEBHOOK_ENV, Telegram
from runbook.readers.retention import DEFAULT_KEEP_DAYS
from runbook.readers.rundir import reports_dir
from runbook.run.readiness import parse_wait
from runbook.secrets import SECRETS

# Ten years: longer is a typo (and inf or nan would make retention crash at the end of the run).
MAX_KEEP_DAYS = 3660

HISTORY_ENV = "RUNBOOK_HISTORY_DSN"
PUSHGATEWAY_ENV = "RUNBOOK_PUSHGATEWAY_URL"


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("runbook-readers", "runbook-suite: history, incident ticket, waivers, alerts")
    group.addoption(
        "--history-dsn",
        dest="runbook_history_dsn",
        metavar="DSN",
        default=None,
        help=f"where the run history goes: postgresql://... or a SQLite file (default: ${HISTORY_ENV}, "
        f"else {HISTORY_FILE} in the reports folder)",
    )
    group.addoption(
        "--no-history", dest="runbook_no_history", action="store_true", help="record nothing, compare nothing"
    )
    group.addoption(
        "--flap-changes",
        dest="runbook_flap_changes",
        type=int,
        default=FlapPolicy.changes,
        metavar="N",
        help=f"a check is flapping after N changes of state ... (default {FlapPolicy.changes})",
    )
    group.addoption(
        "--flap-runs",
        dest="runbook_flap_runs",
        type=int,
        default=FlapPolicy.runs,
        metavar="M",
        help=f"... over the scope's last M runs (default {FlapPolicy.runs})",
    )
    group.addoption(
        "--keep-days",
        dest="runbook_keep_days",
        type=float,
        default=None,
        metavar="DAYS",
        help=f"delete run folders older than DAYS (default: ini runbook_keep_days, {DEFAULT_KEEP_DAYS}; "
        "0 keeps all); never the newest, nor one an open incident bundle refers to",
    )
    group.addoption(
        "--incident",
        dest="runbook_incident",
        action="store_true",
        help="also write incident.md (the runbook's notification template); implied by -m incident",
    )
    group.addoption(
        "--incident-lang",
        dest="runbook_incident_lang",
        choices=LANGUAGES,
        default="ru",
        help="headings of incident.md: ru (the runbook's own) or en",
    )
    group.addoption(
        "--bundle",
        dest="runbook_bundle",
        action="store_true",
        help="pack the run folder (reports, incident.md, evidence) into bundle.tar.gz for the ticket",
    )
    group.addoption(
        "--waivers",
        dest="runbook_waivers",
        metavar="FILE",
        default=None,
        help="YAML file of accepted failures (default: ini runbook_waivers)",
    )
    group.addoption(
        "--notify",
        dest="runbook_notify",
        choices=MODES,
        default=None,
        help="send the run's news to Telegram ($ALERT_TELEGRAM_BOT_TOKEN, $ALERT_TELEGRAM_CHAT_ID) and "
        "the webhook: 'changes' only when a check turned red or green, 'always' (default: ini "
        "runbook_notify, off)",
    )
    group.addoption(
        "--telegram-api",
        dest="runbook_telegram_api",
        metavar="URL",
        default=None,
        help=f"Telegram Bot API base URL (default: ini runbook_telegram_api, {DEFAULT_TELEGRAM_API})",
    )
    group.addoption(
        "--webhook-url",
        dest="runbook_webhook_url",
        metavar="URL",
        default=None,
        help=f"POST the run's news as JSON here (default: ${WEBHOOK_ENV})",
    )
    group.addoption(
        "--report-url",
        dest="runbook_report_url",
        metavar="URL",
        default=None,
        help="where readers find the report (a CI artifact URL) in notifications and incident.md",
    )
    group.addoption(
        "--metrics-textfile",
        dest="runbook_metrics_textfile",
        metavar="PATH",
        default=None,
        help="write the results for node_exporter's textfile collector (PATH ends in .prom)",
    )
    group.addoption(
        "--pushgateway",
        dest="runbook_pushgateway",
        metavar="URL",
        default=None,
        help=f"push the results to this Prometheus Pushgateway (default: ${PUSHGATEWAY_ENV})",
    )
    group.addoption(
        "--wait-ready",
        dest="runbook_wait_ready",
        metavar="DURATION",
        default=None,
        help="retry failing smoke checks until DURATION (e.g. 120s) after the run started; "
        "reports how long each took to turn green",
    )
    parser.addini("runbook_keep_days", "default for --keep-days", default=str(DEFAULT_KEEP_DAYS))
    parser.addini("runbook_waivers", "default for --waivers (relative to the rootdir)", default="")
    parser.addini("runbook_notify", "default for --notify", default="off")
    parser.addini("runbook_telegram_api", "default for --telegram-api", default=DEFAULT_TELEGRAM_API)


@dataclass(frozen=True)
class ReaderSettings:
    """Every reader option, checked."""

    history: str | None  # a SQLite path or a postgresql:// DSN; None: --no-history
    flapping: FlapPolicy
    keep_days: float
    incident: bool
    incident_language: str
    bundle: bool
    waivers: Path | None
    notify: str
    telegram: Telegram | None
    webhook: str | None
    report_url: str | None
    metrics_textfile: Path | None
    pushgateway: str | None
    wait_ready: float | None
    today: date

    @classmethod
    def of(cls, config: pytest.Config) -> ReaderSettings:
        option = config.getoption
        notify = option("runbook_notify") or config.getini("runbook_notify") or "off"
        if notify not in MODES:
            raise pytest.UsageError(f"ini runbook_notify: {notify!r} is not one of {', '.join(MODES)}")
        api = option("runbook_telegram_api") or config.getini("runbook_telegram_api") or DEFAULT_TELEGRAM_API
        telegram = Telegram.from_environment(api)
        webhook = option("runbook_webhook_url") or os.environ.get(WEBHOOK_ENV) or None
        if webhook:
            SECRETS.add_url_credentials(webhook, "webhook")
            _refuse_bad_url(webhook, "--webhook-url")
        if notify != "off" and telegram is None and not webhook:
            raise pytest.UsageError(
                f"--notify={notify}: no channel: set ALERT_TELEGRAM_BOT_TOKEN and ALERT_TELEGRAM_CHAT_ID, "
                f"or --webhook-url (${WEBHOOK_ENV})"
            )
        flap_changes, flap_runs = option("runbook_flap_changes"), option("runbook_flap_runs")
        if flap_changes < 1 or flap_runs < 2:
            raise pytest.UsageError("--flap-changes must be at least 1 and --flap-runs at least 2")
        return cls(
            history=_history(config),
            flapping=FlapPolicy(flap_changes, flap_runs),
            keep_days=_keep_days(config),
            incident=bool(option("runbook_incident")),
            incident_language=option("runbook_incident_lang"),
            bundle=bool(option("runbook_bundle")),
            waivers=_from_ini_or_option(config, "runbook_waivers"),
            notify=notify,
            telegram=telegram,
            webhook=webhook,
            report_url=option("runbook_report_url"),
            metrics_textfile=_path(config, option("runbook_metrics_textfile")),
            pushgateway=option("runbook_pushgateway") or os.environ.get(PUSHGATEWAY_ENV) or None,
            wait_ready=parse_wait(option("runbook_wait_ready")),
            today=datetime.now(UTC).date(),
        )


def _history(config: pytest.Config) -> str | None:
    if config.getoption("runbook_no_history"):
        return None
    dsn = config.getoption("runbook_history_dsn") or os.environ.get(HISTORY_ENV)
    if dsn:
        SECRETS.add_url_credentials(dsn, "history DSN")
        for secret in urllib.parse.parse_qs(urllib.parse.urlsplit(dsn).query).get("password", []):
            SECRETS.add(secret, "history DSN")  # postgresql://u@h/db?password=... is a password too
        if "://" in dsn and not dsn.startswith(POSTGRES_SCHEMES):
            scheme = dsn.split("://", 1)[0]
            raise pytest.UsageError(
                f"--history-dsn: {scheme}:// is not a history store: postgresql://... or a SQLite file"
            )
        return dsn if "://" in dsn else str(_path(config, dsn))
    return str(reports_dir(config) / HISTORY_FILE)


def _refuse_bad_url(url: str, option: str) -> None:
    """An http(s) URL with a host, or a usage error now (not a crash when the run ends)."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is no number
    except ValueError as exc:
        raise pytest.UsageError(f"{option}: {SECRETS.mask(url)!r} is not a URL ({exc})") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise pytest.UsageError(f"{option}: {SECRETS.mask(url)!r} is not an http(s) URL with a host")


def _keep_days(config: pytest.Config) -> float:
    value = config.getoption("runbook_keep_days")
    if value is None:
        try:
            value = float(config.getini("runbook_keep_days"))
        except ValueError:
            raise pytest.UsageError("ini runbook_keep_days: not a number of days") from None
    if not math.isfinite(value) or not 0 <= value <= MAX_KEEP_DAYS:
        raise pytest.UsageError(f"--keep-days: {value!r} is not 0 (keep all) to {MAX_KEEP_DAYS} days")
    return float(value)


def _from_ini_or_option(config: pytest.Config, name: str) -> Path | None:
    """An option's path (relative to where pytest started) or the ini's (relative to the rootdir)."""
    if config.getoption(name):
        return _path(config, config.getoption(name))
    value = config.getini(name)
    return (config.rootpath / Path(value).expanduser()) if value else None


def _path(config: pytest.Config, value: str | None) -> Path | None:
    if not value:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else config.invocation_params.dir / path
