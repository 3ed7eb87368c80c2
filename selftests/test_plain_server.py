"""README's plain server on local://, run as written: nginx, an app, PostgreSQL, Redis, dumps, a log.

The description is the YAML block between README's `plain-server` markers, untouched; only
its params (ports, folders) and secrets come from here. Real parts on loopback: nginx in
front of a /health app, a PostgreSQL 15 cluster, redis-server, a `pg_dump -Fc` file and an
app log with timestamps. Green as set up; then broken for real (an ERROR line in the log, the
dump gone, nginx stopped), each red with its own message and nothing else red.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from selftests.data_servers import Postgres, Redis, free_port
from selftests.readers_kit import ROOT, Run, run_suite

README = ROOT / "README.md"


def readme_description() -> str:
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- plain-server:start -->", 1)[1].split("<!-- plain-server:end -->", 1)[0]
    return block.strip().removeprefix("```yaml").removesuffix("```").strip() + "\n"


@pytest.fixture
def nginx(tmp_path: Path, health: ThreadingHTTPServer) -> Iterator[int]:
    """A real nginx on loopback proxying to the /health app."""
    if shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists():
        pytest.skip("nginx is missing (apt-get install nginx)")
    home = tmp_path / "nginx"
    home.mkdir()
    port = free_port()
    temp = " ".join(
        f"{name}_temp_path {home}/{name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    app = f"http://127.0.0.1:{health.server_address[1]}"
    (home / "nginx.conf").write_text(
        f"daemon off; pid {home}/nginx.pid; error_log stderr;\n"
        "events {}\n"
        f"http {{ access_log off; {temp}\n"
        f"  server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass {app}; }} }} }}\n",
        encoding="utf-8",
    )
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    process = subprocess.Popen(
        [binary, "-p", str(home), "-e", "stderr", "-c", str(home / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while (
            subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout.strip()
            == ""
        ):
            assert process.poll() is None and time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def shop(
    tmp_path: Path, nginx: int, health: ThreadingHTTPServer, postgres_server: Postgres, redis_server: Redis
) -> tuple[Path, list[str], dict[str, str]]:
    """The README's description in a project folder, its params and its secrets."""
    (tmp_path / "systems").mkdir()
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "shop.md").write_text("# Shop runbook\n", encoding="utf-8")
    description = tmp_path / "systems" / "shop.yml"
    description.write_text(readme_description(), encoding="utf-8")
    backups, log = tmp_path / "backups", tmp_path / "log" / "app.log"
    backups.mkdir()
    log.parent.mkdir()
    stamp = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    log.write_text(f"{stamp} INFO started\n{stamp} INFO GET /health 200\n", encoding="utf-8")
    dump = backups / f"shop_{datetime.now():%Y%m%d}.dump"
    subprocess.run(
        ["pg_dump", "-Fc", "-f", str(dump), postgres_server.dsn()],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    params = {
        "nginx_url": f"http://127.0.0.1:{nginx}",
        "app_port": health.server_address[1],
        "pg_port": postgres_server.port,
        "pg_user": postgres_server.user,
        "pg_database": postgres_server.database,
        "redis_port": redis_server.port,
        "backups": backups,
        "app_log": log,
    }
    options = [f"--systems={description}", *(f"--param={name}={value}" for name, value in params.items())]
    secrets = {"SHOP_DB_PASSWORD": postgres_server.password, "SHOP_REDIS_PASSWORD": redis_server.password}
    return tmp_path, options, secrets


def red(run: Run) -> dict[str, str]:
    return {
        check["check_id"]: check["found"] or check["message"]
        for check in run.summary()["checks"]
        if check["outcome"] in {"failed", "error"}
    }


def test_the_readme_description_needs_no_commands() -> None:
    checks = yaml.safe_load(readme_description())["checks"]
    assert "commands" not in checks
    assert {"http", "sockets", "postgres", "redis", "backups", "logs"} <= set(checks)


@pytest.mark.slow
def test_the_readme_plain_server_green_then_red_where_broken(
    shop: tuple[Path, list[str], dict[str, str]], nginx: int
) -> None:
    project, options, secrets = shop
    reports = project / "reports"

    def daily() -> Run:
        return run_suite(
            "-m",
            "daily or smoke or incident",
            *options,
            f"--reports-dir={reports}",
            reports=reports,
            env=secrets,
        )

    green = daily()
    assert green.returncode == 0, green.output[-3000:]
    passed = {check["check_id"] for check in green.summary()["checks"] if check["outcome"] == "passed"}
    assert passed >= {
        "health",
        "app-local-only",
        "redis-local-only",
        "db-select-one",
        "redis-ping",
        "db-backup-fresh",
        "app-errors",
    }

    log = Path(next(option for option in options if option.startswith("--param=app_log=")).split("=", 2)[2])
    with log.open("a", encoding="utf-8") as out:
        out.write(f"{datetime.now():%Y-%m-%d %H:%M:%S} ERROR payment failed: card declined\n")
    dumps = Path(next(option for option in options if option.startswith("--param=backups=")).split("=", 2)[2])
    for dump in dumps.glob("*.dump"):
        dump.rename(dump.with_suffix(".old"))
    broken = daily()
    assert broken.returncode == 1
    found = red(broken)
    assert set(found) == {"app-errors", "db-backup-fresh", "db-backup-readable"}, found
    assert re.fullmatch(
        r"1 line of /\S+/app\.log match 'ERROR\|Traceback' in the last 24h > 0", found["app-errors"]
    )
    for backup in ("db-backup-fresh", "db-backup-readable"):
        assert re.fullmatch(r"no backups found: /\S+/backups/shop_\*\.dump matches nothing", found[backup])
