"""Never leak: a run with secrets in a URL, in headers and in CI variables, at DEBUG log level.

One run of the suite (plugin on, in a subprocess, as an operator runs it) checks
a tiny system on `local://` whose two HTTP checks call an echo server in this
process: one from the runner with the password in the URL's userinfo (httpx
sends it as `Authorization: Basic`), one through curl on the host. The server
echoes every request header back: in a JSON body, HTML-escaped, as base64 at an
odd offset, and in response headers (which httpcore logs at DEBUG). Both checks
fail, so the bodies become evidence. CI variables (Jenkins' GIT_URL, GitLab's
CI_JOB_TOKEN) carry credentials into pytest-metadata's environment table.

No form of any secret may appear in report.html (also inside its attachments),
junit.xml (with captured logs), summary.json or the terminal (live logs on), nor in what
the readers get: incident.md, the bundle's every member, the Prometheus textfile, the
history database and the Telegram and webhook messages (received on loopback).
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from selftests.readers_kit import Receiver

# Every test here reads whole runs made by a module fixture (or is one): make test runs them.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

# Env names that do not look secret: these are secrets because the description reads them with ${}.
ROBOT_PASS = 'q7"Zebra<Lantern>&5521'  # the URL allows no whitespace
QUERY_KEY = 'Mango"Quay<77>&Fig'
HEADER_VALUE = 'it\'s "Falcon" <9034> & more'
API_TOKEN = "tok-Harbor-Violet-3317"  # registered by its name
GIT_TOKEN = "glpat-Otter-Maple-4410"  # only ever inside GIT_URL's userinfo
JOB_TOKEN = "cjt-Heron-Basalt-7782"
USER_TOKEN = "ghp-Fjord-Token-4411"  # a token as the user of a URL, no password
ENVIRONMENT = {
    "RB_SELFTEST_ROBOT_PASS": ROBOT_PASS,
    "RB_SELFTEST_QUERY_KEY": QUERY_KEY,
    "RB_SELFTEST_HEADER_VALUE": HEADER_VALUE,
    "RB_SELFTEST_API_TOKEN": API_TOKEN,
    "GIT_URL": f"https://ci-bot:{GIT_TOKEN}@git.example.com/x.git",
    "CI_JOB_TOKEN": JOB_TOKEN,
    "CI_PROJECT_URL": f"https://gitlab-ci-token:{JOB_TOKEN}@gitlab.example.com/x",
    "BUILD_URL": f"https://{USER_TOKEN}@ci.example.com/job/7/",
}
TELEGRAM_TOKEN = "987654:Tg-Token-Puffin-5530"  # the alert bot's token, from the environment
SECRETS = (ROBOT_PASS, QUERY_KEY, HEADER_VALUE, API_TOKEN, GIT_TOKEN, JOB_TOKEN, USER_TOKEN, TELEGRAM_TOKEN)

DESCRIPTION = """\
system: leak-probe
runbook: runbook.md
hosts:
  local: "local://"
checks:
  http:
    - id: echo-from-runner
      title: the echo service lets the robot in
      url: "http://robot:${{RB_SELFTEST_ROBOT_PASS}}@127.0.0.1:{port}/echo?key=${{RB_SELFTEST_QUERY_KEY}}"
      headers: {{X-Api-Key: "${{RB_SELFTEST_HEADER_VALUE}}"}}
      expect_json: {{status: ok}}
      severity: P2
      section: "1. Echo"
      remedy: rotate the robot's password
    - id: echo-from-host
      title: the echo service answers curl on the host
      url: "http://127.0.0.1:{port}/echo?key=${{RB_SELFTEST_QUERY_KEY}}"
      via: host
      headers:
        X-Api-Key: "${{RB_SELFTEST_HEADER_VALUE}}"
        Authorization: "Bearer ${{RB_SELFTEST_API_TOKEN}}"
      expect_json: {{status: ok}}
      severity: P3
      section: "1. Echo"
      remedy: rotate the API token
"""


class EchoHandler(BaseHTTPRequestHandler):
    """Says 'locked' and echoes the request in every encoding an API might use."""

    def do_GET(self) -> None:
        headers = dict(self.headers.items())
        secret_headers = f"{headers.get('Authorization', '')} {headers.get('X-Api-Key', '')}"
        body = json.dumps(
            {
                "status": "locked",
                "path": self.path,
                "headers": headers,
                "page": f"<p>denied: {html.escape(secret_headers)}</p>",
                "trace": base64.b64encode(f"x{secret_headers}".encode()).decode(),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Echo-Authorization", headers.get("Authorization", ""))
        self.send_header("X-Echo-Key", headers.get("X-Api-Key", ""))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str
    folder: Path
    received: list[str]  # the bodies the Telegram and webhook receiver got


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    yield from Receiver().serve()


@pytest.fixture(scope="module")
def run(echo_port: int, receiver: Receiver, tmp_path_factory: pytest.TempPathFactory) -> Run:
    base = tmp_path_factory.mktemp("never-leak")
    (base / "runbook.md").write_text("# Leak probe\n\n## 1. Echo\n", encoding="utf-8")
    description = base / "leak-probe.yml"
    description.write_text(DESCRIPTION.format(port=echo_port), encoding="utf-8")
    reports = base / "reports"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PYTEST_") and not key.lower().endswith("_proxy")
    }
    env.update(ENVIRONMENT)
    env.update(ALERT_TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN, ALERT_TELEGRAM_CHAT_ID="-100")
    command = [
        sys.executable,
        "-m",
        "pytest",
        "tests_health",
        "tests_backup",
        "tests_config",
        f"--systems={description}",
        f"--reports-dir={reports}",
        "--log-level=DEBUG",
        "--log-cli-level=DEBUG",
        "-o",
        "junit_logging=all",
        "-rA",
        "-v",
        "--metadata",
        "CI_JOB_TOKEN",
        JOB_TOKEN,
        "--incident",
        "--bundle",
        f"--metrics-textfile={base / 'runbook.prom'}",
        "--notify=always",
        f"--telegram-api={receiver.url('/tg')}",
        f"--webhook-url={receiver.url('/hook')}",
    ]
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    folders = [
        path
        for path in reports.iterdir()
        if path.is_dir() and not path.is_symlink() and not path.name.startswith(".")
    ]
    assert len(folders) == 1, done.stdout[-3000:] + done.stderr[-3000:]
    received = [request.body.decode("utf-8", errors="replace") for request in receiver.requests]
    return Run(done.returncode, done.stdout + done.stderr, folders[0], received)


def derived_forms(secret: str) -> set[str]:
    """The secret as the encodings on its way to a report would write it."""
    data = secret.encode()
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote(secret, safe="!$&'()*+,;=:"),  # httpx's userinfo and query
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        html.escape(secret),
        html.escape(secret, quote=False),
        shlex.quote(secret),
        repr(data + b"\"'")[2:-4],  # inside a bytes repr, as httpcore logs header values
        base64.b64encode(data).decode(),
        base64.b64encode(b"robot:" + data).decode(),
        data.hex(),
    }
    return {form for form in forms if len(form) >= 4}


def views(text: str) -> list[str]:
    """The text as stored, HTML-unescaped, and the attachments inside its data: URIs."""
    attached = re.findall(r"data:[\w/+.-]+(?:;charset=[\w-]+)?;base64,([A-Za-z0-9+/=]+)", text)
    decoded = [base64.b64decode(chunk).decode("utf-8", errors="replace") for chunk in attached]
    return [text, html.unescape(text), *decoded]


def assert_no_secret(name: str, text: str) -> None:
    for view in views(text):
        for secret in SECRETS:
            for form in derived_forms(secret):
                assert form not in view, f"{name} shows {secret!r} as {form!r}"


def artifact(run: Run, name: str) -> str:
    return (run.folder / name).read_text(encoding="utf-8")


def html_environment(run: Run) -> dict[str, str]:
    """report.html's environment table, name -> value as shown."""
    page = artifact(run, "report.html")
    table = page[
        page.index('<table id="environment">') : page.index("</table>", page.index('id="environment"'))
    ]
    rows = re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", table, re.S)
    return {html.unescape(name): html.unescape(value) for name, value in rows}


def test_the_run_exercised_every_path(run: Run) -> None:
    assert run.returncode == 1, run.output[-3000:]
    assert "2 failed" in run.output
    junit = artifact(run, "junit.xml")
    # httpx's request line (live log, captured log) and the echoed body (evidence) were there, masked.
    assert "HTTP Request: GET http://robot:***@127.0.0.1:" in run.output
    assert "HTTP Request: GET http://robot:***@127.0.0.1:" in junit
    assert "receive_response_headers.complete" in junit
    assert "Basic ***" in html.unescape(junit)
    summary = json.loads(artifact(run, "summary.json"))
    assert {check["outcome"] for check in summary["checks"] if check["kind"] == "http"} == {"failed"}


@pytest.mark.parametrize("name", ["report.html", "junit.xml", "summary.json"])
def test_no_form_of_a_secret_in_the_reports(run: Run, name: str) -> None:
    assert_no_secret(name, artifact(run, name))


def test_no_form_of_a_secret_on_the_terminal(run: Run) -> None:
    assert_no_secret("stdout/stderr", run.output)


def test_environment_table_has_no_credentials(run: Run) -> None:
    environment = html_environment(run)
    assert environment["GIT_URL"] == "https://ci-bot:***@git.example.com/x.git"
    assert environment["CI_PROJECT_URL"] == "https://gitlab-ci-token:***@gitlab.example.com/x"
    assert environment["BUILD_URL"] == "https://***@ci.example.com/job/7/"
    assert "CI_JOB_TOKEN" not in environment


def readers_artifacts(run: Run) -> dict[str, str]:
    """incident.md, every bundle member, the textfile, the history database's rows, the messages."""
    texts = {"incident.md": artifact(run, "incident.md")}
    with tarfile.open(run.folder / "bundle.tar.gz") as bundle:
        for member in bundle.getmembers():
            data = bundle.extractfile(member)
            assert data is not None
            texts[f"bundle:{member.name}"] = data.read().decode("utf-8", errors="replace")
    texts["runbook.prom"] = (run.folder.parent.parent / "runbook.prom").read_text(encoding="utf-8")
    history = sqlite3.connect(run.folder.parent / "history.sqlite")
    texts["history.sqlite"] = "\n".join(history.iterdump())
    history.close()
    texts["history.sqlite (bytes)"] = (run.folder.parent / "history.sqlite").read_bytes().decode("latin-1")
    for index, body in enumerate(run.received):
        texts[f"notification {index}"] = body
    return texts


def test_readers_got_everything(run: Run) -> None:
    texts = readers_artifacts(run)
    assert len(run.received) == 2  # one Telegram message, one webhook document
    assert "Basic ***" in html.unescape(texts["bundle:" + run.folder.name + "/junit.xml"])
    assert any(name.startswith(f"bundle:{run.folder.name}/evidence/") for name in texts)
    assert "echo-from-runner" in texts["history.sqlite"]


def test_no_form_of_a_secret_for_the_readers(run: Run) -> None:
    for name, text in readers_artifacts(run).items():
        assert_no_secret(name, text)
