"""Masking secrets (runbook.secrets): what may never reach a report."""

from __future__ import annotations

import base64
import html
import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode

import markupsafe
import pytest
import yaml

from runbook.describe.loader import load_file
from runbook.host.target import Target
from runbook.secrets import MASK, MIN_SECRET_LENGTH, SECRETS, SecretRegistry


def test_mask_replaces_every_occurrence() -> None:
    registry = SecretRegistry()
    registry.add("hunter2-pass")
    assert registry.mask("a=hunter2-pass b=hunter2-pass") == f"a={MASK} b={MASK}"


def test_a_long_secret_with_quotes_is_masked_in_every_form() -> None:
    """A JWT or a key of thousands of characters, and a token with quotes (whose shell-quoted
    forms are longer still), used to exceed Python's recursion limit building the masking
    pattern: the run ended in INTERNALERROR before any check."""
    registry = SecretRegistry()
    token = "eyJ" + "x" * 5000 + "'q\"z"
    registry.add(token)
    assert registry.mask(f"a {token} b") == f"a {MASK} b"
    for form in (shlex.quote(token), json.dumps({"t": token})):
        masked = registry.mask(f"a {form} b")
        assert MASK in masked and "xxxx" not in masked and "q" not in masked, masked


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
    assert registry.mask("second-secret") == MASK  # remembered unmasked before: not used again
    registry.add_url_credentials("https://u:third-secret@example.com")
    assert registry.mask("third-secret") == MASK


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


# -- derived forms: the secret as it looks after an encoding ---------------------------------

SPECIAL = 'q7 "Zebra" <Lantern> & 5521'
QUOTED = 'it\'s "Falcon" <9034> & more'


def special_registry() -> SecretRegistry:
    registry = SecretRegistry()
    registry.add(SPECIAL, "RB_SELFTEST_SPECIAL")
    registry.add(QUOTED, "RB_SELFTEST_QUOTED")
    return registry


def assert_masked(registry: SecretRegistry, text: str, *secrets: str) -> None:
    masked = registry.mask(text)
    assert MASK in masked, (text, masked)
    for secret in secrets:
        for word in ("Zebra", "Lantern", "Falcon", "9034", "5521"):
            if word in secret:
                assert word not in masked, (text, masked)


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: quote(s, safe=""),
        lambda s: quote(s),
        lambda s: quote_plus(s),
        lambda s: quote(s, safe="!$&'()*+,;=:"),  # httpx's userinfo
        lambda s: re.sub("%[0-9A-F]{2}", lambda hex: hex[0].lower(), quote(s, safe="")),
        lambda s: urlencode({"key": s}),
    ],
)
def test_url_encoded_forms_are_masked(encode: Callable[[str], str]) -> None:
    registry = special_registry()
    for secret in (SPECIAL, QUOTED):
        assert_masked(registry, f"GET /echo?{encode(secret)} 200", secret)


@pytest.mark.parametrize(
    "encode",
    [
        json.dumps,
        lambda s: json.dumps(s, ensure_ascii=False),
        lambda s: json.dumps({"headers": {"X-Api-Key": s}}),
        lambda s: json.dumps(s).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"),
    ],
)
def test_json_escaped_forms_are_masked(encode: Callable[[str], str]) -> None:
    registry = special_registry()
    for secret in (SPECIAL, QUOTED):
        assert_masked(registry, f"body: {encode(secret)}", secret)


@pytest.mark.parametrize(
    "encode",
    [
        html.escape,
        lambda s: html.escape(s, quote=False),
        lambda s: str(markupsafe.escape(s)),
        lambda s: json.dumps(html.escape(s)),  # an HTML error page inside a JSON body
    ],
)
def test_html_escaped_forms_are_masked(encode: Callable[[str], str]) -> None:
    registry = special_registry()
    for secret in (SPECIAL, QUOTED):
        assert_masked(registry, f"<p>{encode(secret)}</p>", secret)


@pytest.mark.parametrize(
    "encode",
    [
        shlex.quote,
        lambda s: shlex.quote(shlex.quote(s)),  # the argument, then `sh -c` around the line
        lambda s: f"sh -c {shlex.quote('curl -H ' + shlex.quote('X-Api-Key: ' + s))}",
        lambda s: "'" + s.replace("'", "'\\''") + "'",
        lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"',
        # testinfra's `RUN CommandResult(command=b'...')` debug line: bytes repr of a quoted line
        lambda s: repr(f"timeout -k 2 5 sh -c {shlex.quote('echo ' + shlex.quote(s))}".encode()),
        lambda s: repr(s),
    ],
)
def test_shell_quoted_forms_are_masked(encode: Callable[[str], str]) -> None:
    registry = special_registry()
    for secret in (SPECIAL, QUOTED):
        assert_masked(registry, f"RUN {encode(secret)}", secret)


@pytest.mark.parametrize("prefix", ["", "x", "xy", "robot:", "Authorization header of user "])
def test_base64_of_a_secret_anywhere_in_a_blob_is_masked(prefix: str) -> None:
    registry = SecretRegistry()
    registry.add("hunter2-Lantern-pass")
    blob = base64.b64encode(f"{prefix}hunter2-Lantern-pass and more".encode()).decode()
    assert registry.mask(f"blob {blob} end") == f"blob {MASK} end"
    urlsafe = base64.urlsafe_b64encode(f"{prefix}hunter2-Lantern-pass".encode()).decode()
    assert registry.mask(urlsafe) == MASK


def test_basic_auth_of_a_url_password_is_masked() -> None:
    registry = SecretRegistry()
    registry.add_url_credentials("http://robot:q7%22Zebra%3C@127.0.0.1:8080/echo")
    header = base64.b64encode(b'robot:q7"Zebra<').decode()  # httpx decodes the userinfo first
    assert registry.mask(f'{{"X-Echo": "{header}"}}') == f'{{"X-Echo": "{MASK}"}}'
    assert registry.mask('password q7"Zebra< in clear') == f"password {MASK} in clear"
    assert registry.mask("q7%22Zebra%3C") == MASK


def test_short_secrets_mask_their_basic_auth_through_the_url() -> None:
    # Five characters give no base64 core long enough to mask on its own; the URL names the user.
    registry = SecretRegistry()
    registry.add("k3y!x")
    registry.add_url_credentials("https://ops:k3y!x@host/")
    assert registry.mask(base64.b64encode(b"ops:k3y!x").decode()) == MASK


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "GET https://ci-bot:glpat-123@git.example.com/x.git",
            "GET https://ci-bot:***@git.example.com/x.git",
        ),
        ("redis://:p%40ss@cache:6379/0", "redis://:***@cache:6379/0"),
        ("ssh://root@db.example.com", "ssh://root@db.example.com"),
        ("http://127.0.0.1:8080/health", "http://127.0.0.1:8080/health"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ***"),
        ('{"authorization": "Bearer abc.def.ghi"}', '{"authorization": "Bearer ***"}'),
        ("[(b'Authorization', b'Basic dXNlcjpwYXNz')]", "[(b'Authorization', b'Basic ***')]"),
        ("proxy-authorization: Negotiate YIIabcd", "proxy-authorization: Negotiate ***"),
        ("curl -H 'Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig'", "curl -H 'Bearer ***'"),
        ("echo Basic dXNlcjpwYXNz", f"echo Basic {MASK}"),
        ("Basic information stays", "Basic information stays"),
        ("Bearer tokens are described here", "Bearer tokens are described here"),
    ],
)
def test_credentials_are_masked_without_being_registered(text: str, expected: str) -> None:
    assert SecretRegistry().mask(text) == expected


def test_passwords_of_urls_in_the_environment_are_secrets() -> None:
    registry = SecretRegistry()
    registry.add_from_environment(
        {"GIT_URL": "https://ci-bot:glpat-Otter-4410@git.example.com/x.git", "HOME": "/root"}
    )
    assert registry.mask("pushed with glpat-Otter-4410") == f"pushed with {MASK}"
    assert list(registry.names()) == ["GIT_URL"]


def test_masking_is_idempotent_and_keeps_the_text_around() -> None:
    registry = special_registry()
    text = f"a {SPECIAL} b {quote(SPECIAL)} c https://u:{quote(QUOTED)}@h/ d"
    once = registry.mask(text)
    assert once == "a *** b *** c https://u:***@h/ d"
    assert registry.mask(once) == once


def test_a_value_that_is_a_url_registers_its_password_alone() -> None:
    registry = SecretRegistry()
    registry.add("postgres://app:db-Heron-77@db/app", "DATABASE_PASSWORD_URL")
    assert registry.mask("auth failed for db-Heron-77") == f"auth failed for {MASK}"


def test_a_number_read_as_a_limit_is_not_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`slower_than_ms: ${ALERT_HTTP_SLOW_THRESHOLD_MS}` (1000) masked every 1000 in the reports;
    a number under a secret's name, or inside a longer value, stays a secret."""
    monkeypatch.setenv("RB_SELFTEST_SLOW_MS", "1000")  # a field that is one number
    monkeypatch.setenv("RB_SELFTEST_DB_PASSWORD", "4711")
    monkeypatch.setenv("RB_SELFTEST_PORT_IN_URL", "8443")
    description = {
        "system": "demo",
        "runbook": "runbook.md",
        "hosts": {"server": "local://"},
        "checks": {
            "http": [
                {
                    "id": "health",
                    "title": "health answers",
                    "severity": "P2",
                    "section": "1",
                    "remedy": "restart",
                    "url": "https://example.com:${RB_SELFTEST_PORT_IN_URL}/health",
                    "max_seconds": 5,
                    "body_matches": "${RB_SELFTEST_SLOW_MS}",
                    "headers": {"X-Pin": "${RB_SELFTEST_DB_PASSWORD}"},
                }
            ]
        },
    }
    path = tmp_path / "demo.yml"
    path.write_text(yaml.safe_dump(description), encoding="utf-8")
    load_file(path)
    assert SECRETS.mask("took 1000 ms; 4711; 8443") == f"took 1000 ms; {MASK}; {MASK}"
