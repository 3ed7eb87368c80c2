"""Masking secrets (runbook.secrets): what may never reach a report."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from runbook.hosts import Target
from runbook.loader import load_file
from runbook.secrets import MASK, MIN_SECRET_LENGTH, SECRETS, SecretRegistry


def test_mask_replaces_every_occurrence() -> None:
    registry = SecretRegistry()
    registry.add("hunter2-pass")
    assert registry.mask("a=hunter2-pass b=hunter2-pass") == f"a={MASK} b={MASK}"


def test_longest_secret_is_masked_whole() -> None:
    registry = SecretRegistry()
    registry.add("abcd")
    registry.add("abcdefgh")  # contains the shorter one
    assert registry.mask("x abcdefgh y abcd z") == "x *** y *** z"


def test_short_values_are_not_secrets() -> None:
    registry = SecretRegistry()
    short = "x" * (MIN_SECRET_LENGTH - 1)
    registry.add(short)
    registry.add("")
    assert registry.mask(f"value {short} stays") == f"value {short} stays"
    registry.add("y" * MIN_SECRET_LENGTH)
    assert registry.mask("yyyy") == MASK


def test_regex_characters_are_literal() -> None:
    registry = SecretRegistry()
    registry.add("p@ss.w*rd(1)")
    assert registry.mask("p@ss.w*rd(1)") == MASK
    assert registry.mask("p@ssXwwwrd1") == "p@ssXwwwrd1"


def test_values_added_after_a_mask_are_masked_too() -> None:
    registry = SecretRegistry()
    registry.add("first-secret")
    assert registry.mask("second-secret") == "second-secret"
    registry.add("second-secret")
    assert registry.mask("first-secret second-secret") == f"{MASK} {MASK}"


def test_empty_registry_and_empty_text() -> None:
    registry = SecretRegistry()
    assert registry.mask("nothing to hide") == "nothing to hide"
    registry.add("something")
    assert registry.mask("") == ""


def test_clear_forgets_everything() -> None:
    registry = SecretRegistry()
    registry.add("forget-me", "OLD_TOKEN")
    registry.clear()
    assert registry.mask("forget-me") == "forget-me"
    assert list(registry.names()) == []


@pytest.mark.parametrize(
    "name",
    [
        "TELEGRAM_BOT_TOKEN",
        "CALENDAR_BACKUP_PASSPHRASE",
        "GPG_PASSPHRASE_FILE_CONTENT",
        "DB_PASSWORD",
        "REDIS_PASSWD",
        "DJANGO_SECRET_KEY",
        "YANDEX_GPT_API_KEY",
        "OPENAI_APIKEY",
        "SSH_PRIVATE_KEY",
        "AWS_CREDENTIALS",
        "github_token",
    ],
)
def test_secret_names_from_the_environment(name: str) -> None:
    registry = SecretRegistry()
    registry.add_from_environment({name: "value-of-the-secret"})
    assert registry.mask("it is value-of-the-secret") == f"it is {MASK}"
    assert list(registry.names()) == [name]


@pytest.mark.parametrize("name", ["HOME", "PATH", "USER", "YANDEX_GPT_FOLDER_ID", "LANG", "RADICALE_URL"])
def test_ordinary_names_are_not_secrets(name: str) -> None:
    registry = SecretRegistry()
    registry.add_from_environment({name: "/usr/local/value"})
    assert registry.mask("/usr/local/value") == "/usr/local/value"
    assert list(registry.names()) == []


def test_environment_default_is_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RB_SELFTEST_API_TOKEN", "env-token-5521")
    registry = SecretRegistry()
    registry.add_from_environment()
    assert registry.mask("Bearer env-token-5521") == f"Bearer {MASK}"
    assert "RB_SELFTEST_API_TOKEN" in registry.names()


def test_value_read_through_env_reference_is_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An ordinary name: the value is a secret only because the description reads it with ${}.
    monkeypatch.setenv("RB_SELFTEST_BACKUP_KEY_FILE_VALUE", "kept-out-of-reports")
    description = {
        "system": "demo",
        "runbook": "runbook.md",
        "hosts": {"server": "local://"},
        "checks": {
            "backups": [
                {
                    "id": "backup-integrity",
                    "title": "backup decrypts",
                    "severity": "P2",
                    "section": "4.4",
                    "remedy": "make a new backup",
                    "directory": "/b",
                    "integrity": True,
                    "gpg_passphrase": "${RB_SELFTEST_BACKUP_KEY_FILE_VALUE}",
                }
            ]
        },
    }
    path = tmp_path / "demo.yml"
    path.write_text(yaml.safe_dump(description), encoding="utf-8")
    assert SECRETS.mask("gpg: kept-out-of-reports") == "gpg: kept-out-of-reports"
    load_file(path)
    assert SECRETS.mask("gpg: kept-out-of-reports") == f"gpg: {MASK}"
    assert list(SECRETS.names()) == ["RB_SELFTEST_BACKUP_KEY_FILE_VALUE"]


def test_target_display_hides_a_password_in_the_spec() -> None:
    target = Target(
        "db", "paramiko://admin:hunter2@db.example.com?timeout=3", command_timeout=5, connect_timeout=2
    )
    assert target.display == "paramiko://admin:***@db.example.com"
    assert "hunter2" not in repr(target)
    plain = Target("db", "ssh://root@db.example.com", command_timeout=5, connect_timeout=2)
    assert plain.display == "ssh://root@db.example.com"


def test_unreachable_reason_is_masked() -> None:
    SECRETS.add("hunter2-pass", "DB_PASSWORD")
    target = Target("db", "ssh://root@db.example.com", command_timeout=5, connect_timeout=2)
    error = target._mark_unreachable("auth failed for  hunter2-pass\n on db")
    assert str(error) == "host db (ssh://root@db.example.com) unreachable: auth failed for *** on db"
    assert target.unreachable is error
