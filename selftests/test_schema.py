"""The description schema (runbook.describe.schema): units, aspects, validation messages."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from runbook.checks.backups import BackupCheck
from runbook.checks.commands import CommandCheck
from runbook.checks.containers import ContainerCheck
from runbook.checks.cron import CronCheck
from runbook.checks.env_files import DEFAULT_PLACEHOLDERS, EnvFileCheck
from runbook.checks.http import HttpCheck
from runbook.checks.logs import LogCheck
from runbook.checks.resources import ResourceCheck
from runbook.checks.tcp import TcpCheck
from runbook.describe.model import parse_duration, parse_size
from runbook.describe.schema import CHECK_KINDS, Checks, System

COMMON: dict[str, Any] = {"title": "a check", "severity": "P2", "section": "1.", "remedy": "fix it"}


def backup(**fields: Any) -> BackupCheck:
    return BackupCheck(**{**COMMON, "id": "backup", "directory": "/backups", **fields})


def command(check_id: str, **fields: Any) -> dict[str, Any]:
    return {**COMMON, "id": check_id, "run": "true", **fields}


def system(**fields: Any) -> System:
    data: dict[str, Any] = {"system": "demo", "runbook": "rb.md", "hosts": {"server": "local://"}}
    data.update(fields)
    data.setdefault("checks", {})
    return System.model_validate(data)


# -- units ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1000", 1000),
        (1000, 1000),
        ("512M", 512 * 1024**2),
        ("1G", 1024**3),
        ("1g", 1024**3),
        ("1GiB", 1024**3),
        ("1gb", 1024**3),
        ("1.5k", 1536),
        (" 2 t ", 2 * 1024**4),
        ("10b", 10),
    ],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "G", "1X", "-1", "1 G B", "lots"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", 86400.0),
        ("30m", 1800.0),
        ("90s", 90.0),
        ("2d", 172800.0),
        ("1.5h", 5400.0),
        ("100", 100.0),
        (5, 5.0),
        (2.5, 2.5),
        ("24H", 86400.0),
    ],
)
def test_parse_duration(text: str | float, expected: float) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "h", "1w", "-5m", "1h30m", "soon"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


# -- aspects: one fact per check ------------------------------------------------------------


def test_one_aspect_is_accepted_and_named() -> None:
    check = backup(min_bytes=1000)
    assert check.aspect == "min_bytes"
    assert backup(integrity=True).aspect == "integrity"


def test_two_aspects_are_rejected_naming_both() -> None:
    with pytest.raises(ValidationError) as info:
        backup(max_age_hours=25, min_bytes=1000)
    assert (
        "set exactly one of: max_age_hours, min_bytes, integrity, retention_days, copy_on "
        "(found: max_age_hours, min_bytes)" in str(info.value)
    )


def test_no_aspect_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"set exactly one of: disk, min_available_mb \(found: none\)"):
        ResourceCheck(**COMMON, id="res")


def test_kind_without_aspects_needs_none() -> None:
    check = CommandCheck(**command("ping"))
    assert check.aspect == "commands"


# -- field validation ---------------------------------------------------------------


@pytest.mark.parametrize("severity", ["P0", "P5", "p1", "high", ""])
def test_severity_is_p1_to_p4(severity: str) -> None:
    with pytest.raises(ValidationError, match="Input should be 'P1', 'P2', 'P3' or 'P4'"):
        backup(min_bytes=1, severity=severity)


@pytest.mark.parametrize("check_id", ["Backup", "-backup", "back up", "backup!", "x" * 81])
def test_check_id_pattern(check_id: str) -> None:
    with pytest.raises(ValidationError):
        backup(min_bytes=1, id=check_id)


def test_unknown_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        backup(min_bytes=1, min_byts=1000)


def test_models_are_frozen() -> None:
    check = backup(min_bytes=1)
    with pytest.raises(ValidationError):
        check.min_bytes = 2  # type: ignore[misc]


@pytest.mark.parametrize("pattern", ["(unclosed", "[a-", "*error"])
def test_log_pattern_must_be_a_regex(pattern: str) -> None:
    with pytest.raises(ValidationError, match="not a regular expression"):
        LogCheck(**COMMON, id="errors", container="bot", pattern=pattern, max_matches=0)


def test_placeholder_pattern_must_be_a_regex() -> None:
    with pytest.raises(ValidationError, match="not a regular expression"):
        EnvFileCheck(**COMMON, id="env", path="/.env", required=["A"], placeholder_pattern="(x")


def test_log_since_must_be_a_duration() -> None:
    with pytest.raises(ValidationError, match="not a duration: '1 week'"):
        LogCheck(**COMMON, id="errors", container="bot", pattern="error", max_matches=0, since="1 week")


@pytest.mark.parametrize(
    ("value", "parsed"), [("set", "set"), ("1G", 1 << 30), ("512m", 512 << 20), ("lots", None)]
)
def test_container_memory_limit(value: str, parsed: str | int | None) -> None:
    def build() -> ContainerCheck:
        return ContainerCheck(**COMMON, id="limit", container="bot", memory_limit=value)

    if parsed is not None:
        assert build().memory_limit == parsed
    else:
        with pytest.raises(ValidationError, match="not a size: 'lots'"):
            build()


def test_container_windows_are_durations() -> None:
    with pytest.raises(ValidationError, match="not a duration"):
        ContainerCheck(**COMMON, id="crash", container="bot", no_crash_within="1w")
    with pytest.raises(ValidationError, match="not a duration"):
        ContainerCheck(**COMMON, id="restarts", container="bot", max_restarts=0, within="yesterday")


@pytest.mark.parametrize(
    ("schedule", "ok"),
    [("0 3 * * *", True), ("@daily", True), ("*/5 * * * 1-5", True), ("0 3 * *", False), ("", False)],
)
def test_cron_schedule_shape(schedule: str, ok: bool) -> None:
    def build() -> CronCheck:
        return CronCheck(**COMMON, id="cron", schedule=schedule, command_contains="backup.sh")

    if ok:
        assert build().schedule == schedule
    else:
        with pytest.raises(ValidationError, match="String should match pattern"):
            build()


@pytest.mark.parametrize(("port", "ok"), [(1, True), (65535, True), (0, False), (65536, False)])
def test_tcp_port_range(port: int, ok: bool) -> None:
    def build() -> TcpCheck:
        return TcpCheck(**COMMON, id="tcp", address="localhost", port=port)

    if ok:
        assert build().port == port
    else:
        with pytest.raises(ValidationError):
            build()


def test_http_with_container_goes_through_the_host() -> None:
    inside = HttpCheck(**COMMON, id="radicale", url="http://localhost:5232", container="radicale")
    assert inside.via == "host"
    outside = HttpCheck(**COMMON, id="health", url="http://example.com/health")
    assert outside.via == "runner"


def test_markers_default_per_kind_and_explicit() -> None:
    assert backup(min_bytes=1).effective_markers == ("daily",)
    assert HttpCheck(**COMMON, id="h", url="http://x/").effective_markers == ("daily", "smoke", "incident")
    assert backup(min_bytes=1, markers=["incident"]).effective_markers == ("incident",)
    assert backup(min_bytes=1, markers=[]).effective_markers == ()
    with pytest.raises(ValidationError):
        backup(min_bytes=1, markers=["weekly"])


@pytest.mark.parametrize(
    "value", ["your_token_here", "changeme", "CHANGEME", "...", "<token>", "xxxx", "***", "example-key"]
)
def test_default_placeholders_match(value: str) -> None:
    assert re.search(DEFAULT_PLACEHOLDERS, value.lower())


@pytest.mark.parametrize("value", ["8123456:AAHk-real", "b1g2d3", "my_token_is_real", "yes"])
def test_default_placeholders_leave_real_values(value: str) -> None:
    assert not re.search(DEFAULT_PLACEHOLDERS, value.lower())


# -- the system ---------------------------------------------------------------------


def test_every_kind_has_its_group() -> None:
    assert set(CHECK_KINDS) == set(Checks.model_fields)
    for kind, model in CHECK_KINDS.items():
        assert model.kind == kind


def test_checks_all_in_kind_order() -> None:
    checks = Checks.model_validate(
        {"commands": [command("b")], "backups": [{**COMMON, "id": "a", "directory": "/", "min_bytes": 1}]}
    )
    assert [check.id for check in checks.all()] == ["a", "b"]  # kinds in name order: backups, commands


@pytest.mark.parametrize("spec", ["calendar.example.com", "root@calendar", "/var/run/docker.sock"])
def test_host_spec_needs_a_scheme(spec: str) -> None:
    with pytest.raises(ValidationError, match=f"host 'server': '{spec}' is not a host spec"):
        system(hosts={"server": spec})


def test_hosts_must_not_be_empty() -> None:
    with pytest.raises(ValidationError):
        system(hosts={})


@pytest.mark.parametrize("name", ["Calendar", "-calendar", "calendar_assistant"])
def test_system_name_pattern(name: str) -> None:
    with pytest.raises(ValidationError):
        system(system=name)


def test_duplicate_check_id_names_both_places() -> None:
    with pytest.raises(ValidationError) as info:
        duplicate = backup(min_bytes=1, id="ping").model_dump()
        system(checks={"commands": [command("ping")], "backups": [duplicate]})
    message = str(info.value)
    assert "check id 'ping' is used twice" in message
    assert "checks.backups[0] (id ping)" in message
    assert "checks.commands[0]" in message


def test_check_host_must_be_declared() -> None:
    with pytest.raises(ValidationError) as info:
        system(checks={"commands": [command("ok"), command("ping", host="db")]})
    message = str(info.value)
    assert "host 'db' is not one of ['server']" in message
    assert "checks.commands[1] (id ping).host" in message


def test_host_of_defaults_to_the_first_host() -> None:
    model = system(
        hosts={"app": "local://", "db": "ssh://root@db"},
        checks={"commands": [command("a"), command("b", host="db")]},
    )
    first, second = model.checks.commands
    assert model.host_of(first) == "app"
    assert model.host_of(second) == "db"
