"""One outage, one story: a failure whose cause also fails is shown under it, with one remedy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runbook.checks.containers import ContainerCheck
from runbook.checks.tcp import TcpCheck
from runbook.describe.loader import DescriptionError, load_file
from runbook.record import CheckRecord, link_causes

FIELDS = {"title": "a check", "severity": "P2", "section": "1.", "remedy": "fix it"}

ROOT = Path(__file__).resolve().parents[1]
DOWN = """\
system: shop
runbook: runbook.md
hosts: {local: "local://"}
checks:
  files:
    - {id: redis-ping, title: redis answers, path: /nonexistent/redis.sock, severity: P1, section: "1.",
       remedy: start redis}
    - {id: ready, title: /ready says redis=ok, path: /nonexistent/ready, severity: P1, section: "2.",
       remedy: look at /ready, after: [redis-ping]}
    - {id: bot, title: the bot answers, path: /nonexistent/bot, severity: P1, section: "3.",
       remedy: restart the bot, after: [redis-ping]}
    - {id: etc, title: etc exists, path: /etc, type: directory, severity: P3, section: "4.", remedy: fix,
       after: [redis-ping]}
"""


@pytest.mark.slow
def test_symptoms_are_shown_under_their_cause_with_one_remedy(tmp_path: Path) -> None:
    description = tmp_path / "shop.yml"
    description.write_text(DOWN, encoding="utf-8")
    reports = tmp_path / "reports"
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--systems={description}"]
    command += [f"--reports-dir={reports}", "--incident", "--incident-lang=en", "-q"]
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "RUNBOOK_"))}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout[-2000:]
    summary = json.loads((reports / "latest" / "summary.json").read_text(encoding="utf-8"))
    causes = {check["check_id"]: check["cause"] for check in summary["checks"]}
    assert causes["ready"] == causes["bot"] == "shop:redis-ping"
    assert causes["redis-ping"] is None and causes["etc"] is None  # etc passed: no story to tell
    incident = (reports / "latest" / "incident.md").read_text(encoding="utf-8")
    assert "  - [P1] /ready says redis=ok (shop:ready)" in incident
    assert "also failing because of redis answers (shop:redis-ping)" in incident
    required = incident.split("start redis", 1)[1]
    assert "look at /ready" not in required and "restart the bot" not in required
    html = (reports / "latest" / "report.html").read_text(encoding="utf-8")
    assert "(also failing because shop:redis-ping fails)" in html


def test_after_names_another_check_of_the_system(tmp_path: Path) -> None:
    description = tmp_path / "shop.yml"
    description.write_text(DOWN.replace("after: [redis-ping]}", "after: [redis]}", 1), encoding="utf-8")
    with pytest.raises(
        DescriptionError, match=r"checks.files\[1\].after: redis is no other check of this system"
    ):
        load_file(description)


# -- causes inferred from what a check needs -----------------------------------------------------


def _record(
    check_id: str, *, provides: tuple[str, ...] = (), needs: tuple[str, ...] = (), **more: Any
) -> CheckRecord:
    fields: dict[str, Any] = {"host": "server", "outcome": "failed", "severity": "P2"} | more
    return CheckRecord(
        system="calendar", check_id=check_id, kind="x", title=check_id, nodeid=check_id,
        provides=list(provides), needs=list(needs), **fields,
    )  # fmt: skip


def test_a_failing_running_check_explains_the_checks_of_its_container() -> None:
    """redis-down on the calendar: redis-running fails, and so do a check of that container and a
    probe of it from the bot; they are its symptoms without an `after:` in the description."""
    running = _record(
        "redis-running", provides=("container calendar-redis",), needs=("container calendar-redis",)
    )
    memory = _record("redis-memory", needs=("container calendar-redis",))
    probe = _record("bot-to-redis", needs=("container telegram-bot", "container calendar-redis"))
    other_host = _record("redis-memory-2", needs=("container calendar-redis",), host="replica")
    green_provider = _record("bot-running", provides=("container telegram-bot",), outcome="passed")
    unrelated = _record("disk", needs=())
    records = [running, memory, probe, other_host, green_provider, unrelated]
    link_causes(records)
    assert [record.cause for record in records] == [
        None, "calendar:redis-running", "calendar:redis-running", None, None, None,
    ]  # fmt: skip


def test_what_checks_need_and_provide_comes_from_their_fields() -> None:
    running = ContainerCheck(**FIELDS, id="redis-running", container="calendar-redis", state="running")
    assert running.provides == ("container calendar-redis",) and running.needs == running.provides
    memory = ContainerCheck(**FIELDS, id="redis-memory", container="calendar-redis", max_memory_percent=80)
    assert memory.provides == () and memory.needs == ("container calendar-redis",)
    probe = TcpCheck(
        **FIELDS, id="web-port", address="web", port=8000, from_service="nginx", project="map-v12"
    )
    assert probe.needs == ("service map-v12/nginx", "container web", "service map-v12/web")
    runner = TcpCheck(**FIELDS, id="ssh", port=22)
    assert runner.needs == ()
