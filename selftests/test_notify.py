"""Notifications: Telegram and the webhook, received on loopback; nothing sent when nothing changed.

A `Receiver` stands in for the Telegram Bot API (`--telegram-api`) and for the webhook.
Three runs: the first with failures sends one message to each; the second, identical, sends
nothing; the third, after a heal, says what was resolved. A Bot API that refuses, or
nobody listening, is reported on the terminal without the token and changes no exit status.
"""

from __future__ import annotations

from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from selftests.readers_kit import SECRET, SYSTEM, ReadersApp, Receiver

TOKEN = "123456:Bot-Token-Otter-9911"
CHAT = "-100777"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from Receiver().serve()


@pytest.fixture
def app(tmp_path: Path, health: ThreadingHTTPServer) -> ReadersApp:
    return ReadersApp(tmp_path, health.server_address[1]).write()


def channels(receiver: Receiver) -> tuple[list[str], dict[str, str]]:
    args = [
        f"--telegram-api={receiver.url('/tg')}",
        f"--webhook-url={receiver.url('/hook')}",
        "--notify=changes",
    ]
    env = {"ALERT_TELEGRAM_BOT_TOKEN": TOKEN, "ALERT_TELEGRAM_CHAT_ID": CHAT}
    return args, env


@pytest.mark.slow
def test_one_message_per_change_and_none_without(app: ReadersApp, receiver: Receiver) -> None:
    args, env = channels(receiver)
    app.break_("api")
    app.break_("worker")
    first = app.run(*args, "--report-url=https://ci.example.com/job/7/report.html", env=env)
    assert first.returncode == 1
    telegram = [r for r in receiver.requests if r.path.startswith("/tg/")]
    hooks = [r for r in receiver.requests if r.path == "/hook"]
    assert len(telegram) == 1 and len(hooks) == 1
    assert telegram[0].path == f"/tg/bot{TOKEN}/sendMessage"
    message = telegram[0].json()
    assert message["chat_id"] == CHAT
    text = message["text"]
    assert text.startswith(f"FAILED, worst P1 — Daily checklist — {SYSTEM}")
    assert "New failures (2):" in text
    assert f"• [P1] the API's config is in place ({SYSTEM}:api-config): stdout 'broken' != 'ok'" in text
    assert "Report: https://ci.example.com/job/7/report.html" in text
    document = hooks[0].json()
    assert document["format"] == "runbook-notification/1"
    assert document["worst_severity"] == "P1"
    assert [c["check_id"] for c in document["changes"]["new"]] == ["api-config", "worker-queue"]
    assert "notify: telegram message sent to chat -100777" in first.output

    second = app.run(*args, env=env)
    assert len(receiver.requests) == 2, "an unchanged run sent something"
    assert "notify: nothing changed since the previous run, nothing sent (--notify=changes)" in second.output

    app.heal("api")
    third = app.run(*args, env=env)
    assert third.returncode == 1
    text = [r for r in receiver.requests if r.path.startswith("/tg/")][-1].json()["text"]
    assert text.startswith("FAILED, worst P2")
    assert "Resolved (1):" in text and f"({SYSTEM}:api-config), red since" in text
    assert "Still failing (1):" in text and "(since " in text
    for run in (first, second, third):
        assert TOKEN not in run.output


@pytest.mark.slow
def test_always_sends_even_when_green(app: ReadersApp, receiver: Receiver) -> None:
    args, env = channels(receiver)
    app.run(*args[:2], "--notify=always", env=env)
    app.run(*args[:2], "--notify=always", env=env)
    texts = [r.json()["text"] for r in receiver.requests if r.path.startswith("/tg/")]
    assert len(texts) == 2 and all(text.startswith("OK — Daily checklist") for text in texts)


@pytest.mark.slow
def test_refused_delivery_is_reported_without_the_token(app: ReadersApp, receiver: Receiver) -> None:
    receiver.status, receiver.answer = 401, {"ok": False, "description": "Unauthorized"}
    args, env = channels(receiver)
    app.break_("token", "revoked")
    run = app.run(*args, "--notify=always", "--log-level=DEBUG", "--log-cli-level=DEBUG", env=env)
    assert run.returncode == 1
    assert "runbook reports: telegram: not delivered: HTTP 401 Unauthorized" in run.output
    assert "runbook reports: webhook: not delivered: HTTP 401 Unauthorized" in run.output
    assert TOKEN not in run.output and TOKEN.split(":")[1] not in run.output
    assert SECRET not in receiver.requests[0].body.decode()  # the failing command printed it


@pytest.mark.slow
def test_nobody_listening_changes_nothing(app: ReadersApp) -> None:
    env = {"ALERT_TELEGRAM_BOT_TOKEN": TOKEN, "ALERT_TELEGRAM_CHAT_ID": CHAT}
    run = app.run("--telegram-api=http://127.0.0.1:9", "--notify=always", env=env)
    assert run.returncode == 0, run.output[-3000:]
    assert "runbook reports: telegram: not delivered: ConnectError" in run.output
    assert TOKEN not in run.output and "Traceback" not in run.output


@pytest.mark.slow
def test_notify_without_a_channel_is_exit_4(app: ReadersApp) -> None:
    run = app.run("--notify=changes")
    assert run.returncode == 4
    assert (
        "--notify=changes: no channel: set ALERT_TELEGRAM_BOT_TOKEN and ALERT_TELEGRAM_CHAT_ID" in run.output
    )
