"""The head revision of an Alembic history, read without running the application's code against the DB.

Three sources, one per description: the revision written in the description;
`alembic heads` inside the web container (`container:` or compose `service:`;
it reads the scripts folder only, never the database); or the migration files on the host, read with `grep`
(`revision = ...` / `down_revision = ...`): the heads are the revisions no
other revision names as its parent.
"""

from __future__ import annotations

import re

from pydantic import Field, model_validator

from runbook.describe.model import ContainerName, ContainerRef, HostPath, InContainer
from runbook.errors import CheckError
from runbook.host import docker_host
from runbook.host.target import Target

REVISION = r"^[A-Za-z0-9_.-]{1,64}$"
HEADS_LINE = re.compile(r"^([A-Za-z0-9_.-]+)\b.*\(head\)\s*$")
ASSIGNMENT = r"^(revision|down_revision)[[:space:]]*(:[^=]*)?="
QUOTED = re.compile(r"""['"]([^'"]+)['"]""")


class AlembicHead(InContainer):
    """Where the expected head comes from: the revision, a container (or compose service), or a folder."""

    revision: str | None = Field(default=None, pattern=REVISION, description="the head, as written here")
    container: ContainerName | None = Field(default=None, description="`alembic heads` in this container")
    config: HostPath | None = Field(default=None, description="alembic -c PATH (in the container)")
    versions_dir: HostPath | None = Field(default=None, description="migration files on the host")

    @model_validator(mode="after")
    def _one_source(self) -> AlembicHead:
        sources = {
            "revision": self.revision,
            "container": self.container_ref,
            "versions_dir": self.versions_dir,
        }
        given = [name for name, value in sources.items() if value is not None]
        if len(given) != 1:
            raise ValueError(
                "set exactly one of: revision, container (or service), versions_dir "
                f"(found: {', '.join(given) or 'none'})"
            )
        if self.config is not None and self.container_ref is None:
            raise ValueError("config: is the alembic.ini inside the container: set container: or service:")
        return self

    def describe(self) -> str:
        if self.container_ref is not None:
            return f"`alembic heads` in {self.container_ref}"
        if self.versions_dir is not None:
            return f"the migrations in {self.versions_dir}"
        return "the description"


def heads(source: AlembicHead, target: Target) -> set[str]:
    """The head revision(s) the database should be at."""
    if source.revision is not None:
        return {source.revision}
    if source.container_ref is not None:
        return _alembic_heads(source, source.container_ref, target)
    assert source.versions_dir is not None
    return _heads_in_files(source.versions_dir, target)


def _alembic_heads(source: AlembicHead, ref: ContainerRef, target: Target) -> set[str]:
    container = docker_host.containers(target, ref)[0]  # every web replica has the same scripts
    if source.config is not None:
        result = docker_host.exec_in(target, container, "alembic -c %s heads", source.config)
    else:
        result = docker_host.exec_in(target, container, "alembic heads")
    found = {match.group(1) for line in result.stdout.splitlines() if (match := HEADS_LINE.match(line))}
    if result.rc != 0 or not found:
        said = (result.stderr or result.stdout).strip()[-300:] or f"exit {result.rc}"
        raise CheckError(f"`alembic heads` in {container} gave no head: {said}")
    return found


def _heads_in_files(folder: str, target: Target) -> set[str]:
    result = target.run("grep -r -H -Z -E --include='*.py' -e %s -- %s", ASSIGNMENT, folder)
    if result.rc not in (0, 1):
        raise CheckError(f"cannot read the migrations in {folder}: {result.stderr.strip()[:300]}")
    revisions: dict[str, str] = {}
    parents: set[str] = set()
    for line in result.stdout.splitlines():
        path, _, text = line.partition("\0")
        values = QUOTED.findall(text.split("=", 1)[-1])
        if text.startswith("down_revision"):
            parents.update(values)
        elif values:
            revisions[path] = values[0]
    if not revisions:
        raise CheckError(f"no Alembic revisions (revision = '...') in {folder}")
    return set(revisions.values()) - parents
