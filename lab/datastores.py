"""The PostgreSQL + Redis pair of a compose project (Map v12's db/redis, Loyalty API's postgres/redis).

Both run the machine's own binaries (bind-mounted /usr). PostgreSQL 15 is initialised on first
start by `shared/db-entrypoint.sh`, laid in the project's deploy folder (mounted at /scripts),
as the postgres image's entrypoint does it from POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB;
its data is the compose volume `pgdata`, its backups folder is mounted at /backups. Redis keeps
nothing on disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from lab.containers import ComposeProject, Spec, exec_output
from lab.core import LabError, write_file
from lab.trees import tree_digest

ENTRYPOINT = Path(__file__).resolve().parent / "shared" / "db-entrypoint.sh"
PG_PATH = "/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PGDATA_VOLUME = "pgdata"
USR = "/usr:/usr:ro"


@dataclass(frozen=True)
class Datastores:
    project: ComposeProject
    postgres: str  # container names
    postgres_service: str
    redis: str
    database: str  # POSTGRES_USER and POSTGRES_DB: the app's role owns its database

    @property
    def network(self) -> str:
        return self.project.network_name("default")

    def lay_entrypoint(self, deploy: Path) -> None:
        """The shared entrypoint at deploy/db-entrypoint.sh (the host's folder mounted at /scripts)."""
        write_file(deploy / ENTRYPOINT.name, ENTRYPOINT.read_bytes(), 0o755)

    def ensure_volume(self, client: docker.DockerClient) -> None:
        self.project.ensure_volume(client, PGDATA_VOLUME)

    def specs(self, *, env: dict[str, str], deploy: Path, backups: Path, scripts: Path) -> dict[str, Spec]:
        """The two containers. `env` is the project's .env (its POSTGRES_* keys go to PostgreSQL);
        `deploy` and `backups` are the host's folders; `scripts` the system's own deploy scripts
        in this repository (with the entrypoint, their digest redeploys PostgreSQL)."""
        common: dict[str, Any] = {"project": self.project, "network": self.network, "mem_limit": ""}
        db_env = {key: value for key, value in env.items() if key.startswith("POSTGRES_")}
        return {
            self.postgres: Spec(
                name=self.postgres,
                service=self.postgres_service,
                command=["/scripts/db-entrypoint.sh"],
                binds=[
                    f"{self.project.volume_name(PGDATA_VOLUME)}:/var/lib/postgresql/data:rw",
                    f"{deploy}:/scripts:ro",
                    f"{backups}:/backups:rw",
                    USR,
                ],
                env={**db_env, "PATH": PG_PATH, "PGHOST": "/tmp"},
                content=tree_digest(scripts) + tree_digest(ENTRYPOINT.parent),
                **common,
            ),
            self.redis: Spec(
                name=self.redis,
                service="redis",
                command=[
                    "/usr/bin/redis-server",
                    "--protected-mode",
                    "no",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ],
                binds=[USR],
                working_dir="/data",
                **common,
            ),
        }

    def psql(self, client: docker.DockerClient, sql: str) -> str:
        """psql as the app's role in PostgreSQL's container (local socket, trusted), stopping at
        the first error; the output unaligned, tuples only."""
        argv = ["psql", "-U", self.database, "-d", self.database, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
        code, output = exec_output(client, self.postgres, [*argv, "-c", sql])
        if code != 0:
            raise LabError(f"psql in {self.postgres} exited {code}: {output[-500:]}")
        return output

    def migrate(self, client: docker.DockerClient, container: str, argv: list[str]) -> bool:
        """The app's migrations (`argv` in `container`). A database they cannot bring up to date
        (its migrations table edited with psql, tables dropped, behind the lab's back) is made
        anew and migrated again: True when it was, so the caller dumps its backups anew."""
        code, output = exec_output(client, container, argv)
        remade = code != 0
        if remade:
            self.psql(client, "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            code, output = exec_output(client, container, argv)
        if code != 0:
            raise LabError(f"{' '.join(argv)} in {container} exited {code}: {output[-1000:]}")
        return remade

    def redis_pong(self, client: docker.DockerClient) -> bool:
        """PING answered PONG without a password, as the lab's Redis is set up."""
        return exec_output(client, self.redis, ["redis-cli", "ping"]) == (0, "PONG")

    def answers(self, client: docker.DockerClient) -> bool:
        """pg_isready on the local socket."""
        argv = ["pg_isready", "-h", "/tmp", "-U", self.database, "-d", self.database]
        return exec_output(client, self.postgres, argv)[0] == 0
