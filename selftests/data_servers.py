"""Real servers on loopback for the data kinds' tests: PostgreSQL 15, Redis, and a docker stand-in.

Each runs from a temporary folder on a free 127.0.0.1 port and is stopped by the
fixture that started it (by its own process, never by name). PostgreSQL is a
throwaway cluster (`initdb` + `pg_ctl`, as the postgres user when run as root),
with password logins on TCP so a wrong password really fails. The docker
stand-in is selftests/fake_docker.py (inspect, compose labels, `docker exec NAME
CMD...` run here): Docker is not what these tests are about. (Tunnels use the
loopback sshd of selftests/sshd.py.)
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER_PASSWORD = "runbook-selftest-superuser"


# free_port's ports: a block per pytest-xdist worker (gw0, gw1, ...; block 0 without xdist),
# all below the kernel's ephemeral range (32768 and up), so a port picked here and bound a
# moment later by its server is never handed meanwhile to another worker or to a bind(0).
PORT_BASE, PORT_BLOCK = 20000, 500
_next_port = [0]


def free_port() -> int:
    """A 127.0.0.1 port nothing listens on, for a server to start on (or to find closed)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    block = int(worker[2:]) + 1 if worker.startswith("gw") and worker[2:].isdigit() else 0
    for _ in range(PORT_BLOCK):
        port = PORT_BASE + block * PORT_BLOCK + _next_port[0] % PORT_BLOCK
        _next_port[0] += 1
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in block {block} ({PORT_BASE + block * PORT_BLOCK}+{PORT_BLOCK})")


def wait_for(ready: Callable[[], bool], what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start within {seconds:g}s")


# -- PostgreSQL ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Postgres:
    port: int
    socket_dir: Path
    user: str = "map"
    password: str = "map-db-pass-4711"
    database: str = "map"

    def dsn(self, *, password: str | None = None, port: int | None = None, host: str = "127.0.0.1") -> str:
        secret = self.password if password is None else password
        return f"postgresql://{self.user}:{secret}@{host}:{port or self.port}/{self.database}"

    def superuser(self, dbname: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user="postgres",
            dbname=dbname or self.database,
            autocommit=True,
        )

    def owner(self) -> psycopg.Connection[tuple[object, ...]]:
        """The application's own login (what a test changes in its data, as the app would)."""
        return psycopg.connect(self.dsn(), autocommit=True)

    def databases(self) -> list[str]:
        with self.superuser("postgres") as connection:
            return [row[0] for row in connection.execute("SELECT datname FROM pg_database").fetchall()]


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def start_postgres() -> Iterator[Postgres]:
    """A PostgreSQL 15 cluster with the Map v12 database `map` (owner `map`, a password login)."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL 15 server binaries are missing (apt-get install postgresql-15)")
    home = Path(tempfile.mkdtemp(prefix="runbook-pg-"))
    if os.geteuid() == 0:
        postgres = pwd.getpwnam("postgres")
        os.chown(home, postgres.pw_uid, postgres.pw_gid)
    password_file = home / "superuser-password"
    password_file.write_text(SUPERUSER_PASSWORD)
    if os.geteuid() == 0:
        os.chown(password_file, postgres.pw_uid, postgres.pw_gid)
    data, port = home / "data", free_port()
    run = _as_postgres()
    subprocess.run(
        [
            *run,
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={password_file}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {home} -c fsync=off -c full_page_writes=off"
    subprocess.run(
        [
            *run,
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(home / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = Postgres(port, home)
    try:
        _create_map_database(server)
        yield server
    finally:
        subprocess.run(
            [*run, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(home, ignore_errors=True)


def _create_map_database(server: Postgres) -> None:
    with server.superuser("postgres") as admin:
        admin.execute(f"CREATE ROLE {server.user} LOGIN CREATEDB PASSWORD '{server.password}'")
        admin.execute(f"CREATE DATABASE {server.database} OWNER {server.user}")
    with server.owner() as owner:
        owner.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        owner.execute("INSERT INTO alembic_version VALUES ('3f2a1b9c0d4e')")
        owner.execute("CREATE TABLE admin_audit_log (id serial PRIMARY KEY, action text, actor text)")
        owner.execute(
            "INSERT INTO admin_audit_log (action, actor) SELECT 'login', 'admin' FROM generate_series(1, 40)"
        )
        owner.execute("CREATE TABLE users (id serial PRIMARY KEY, name text)")
        owner.execute("INSERT INTO users (name) SELECT md5(g::text) FROM generate_series(1, 1000) g")
        owner.execute("CREATE TABLE markers (id serial PRIMARY KEY, user_id int REFERENCES users)")
        owner.execute("INSERT INTO markers (user_id) SELECT g FROM generate_series(1, 50) g")
        owner.execute("CREATE VIEW recent_markers AS SELECT * FROM markers")


def pg_dump(server: Postgres, path: Path) -> Path:
    """A real `pg_dump -Fc` of the map database, as backup_postgres.sh makes it."""
    environment = {**os.environ, "PGPASSWORD": server.password}
    with path.open("wb") as out:
        subprocess.run(
            ["pg_dump", "-Fc", "-h", "127.0.0.1", "-p", str(server.port), "-U", server.user, server.database],
            stdout=out,
            env=environment,
            check=True,
            timeout=120,
        )
    return path


# -- Redis -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redis:
    port: int
    password: str = "redis-pass-0815"

    def url(self, *, password: str | None = None, port: int | None = None) -> str:
        secret = self.password if password is None else password
        return f"redis://:{secret}@127.0.0.1:{port or self.port}/0"

    def subscribe(self, channel: str) -> socket.socket:
        """A subscriber, as the worker is: it stays subscribed while the socket is open."""
        connection = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        connection.sendall(f"AUTH {self.password}\r\nSUBSCRIBE {channel}\r\n".encode())
        received = b""
        while received.count(b"\r\n") < 4:  # +OK, then the 3-element subscribe confirmation
            received += connection.recv(4096)
        return connection


def start_redis() -> Iterator[Redis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is missing (apt-get install redis-server)")
    home = Path(tempfile.mkdtemp(prefix="runbook-redis-"))
    server = Redis(free_port())
    process = subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(server.port),
            "--requirepass",
            server.password,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(home),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _answers(server.port), "redis-server")
        yield server
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(home, ignore_errors=True)


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


# -- a docker stand-in -------------------------------------------------------------------------

COMPOSE_PROJECT = "map-v12"


class FakeDocker:
    """The containers selftests/fake_docker.py answers for (`inspect`, `ps` by compose labels, `exec`)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.state = folder / "docker-state.json"
        self.state.write_text(json.dumps({"containers": []}))

    def add(
        self, name: str, *, service: str | None = None, status: str = "running", address: str = "127.0.0.1"
    ) -> None:
        """A container (replacing one of that name) on network map_default, of compose project map-v12."""
        containers = [c for c in json.loads(self.state.read_text())["containers"] if c["name"] != name]
        labels = {}
        if service is not None:
            labels = {
                "com.docker.compose.project": COMPOSE_PROJECT,
                "com.docker.compose.service": service,
                "com.docker.compose.oneoff": "False",
            }
        state = {"Status": status, "ExitCode": 0 if status == "running" else 1}
        containers.append(
            {"name": name, "labels": labels, "state": state, "networks": {"map_default": address}}
        )
        self.state.write_text(json.dumps({"containers": containers}))

    def program(self, name: str, script: str) -> None:
        """A command the containers run (`alembic`), as a script on PATH (exec runs it here)."""
        path = self.folder / name
        path.write_text(script)
        path.chmod(0o755)


def install_fake_docker(folder: Path, monkeypatch: pytest.MonkeyPatch) -> FakeDocker:
    """selftests/fake_docker.py first on PATH as `docker`, with an empty set of containers."""
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "docker"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} {Path(__file__).with_name("fake_docker.py")} "$@"\n')
    shim.chmod(0o755)
    docker = FakeDocker(folder)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_STATE", str(docker.state))
    return docker
