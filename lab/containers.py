"""Containers in a lab host's dockerd, made as `docker compose up` would make them.

No registry can be reached, so stand-in services run the machine's own binaries from a
bind-mounted /usr on a near-empty image (`hostroot`). Containers, networks and volumes carry
compose's labels, so checks that read them see what they would see in production. Each
container is described by a `Spec`; its digest, kept in a label, tells when to recreate it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import tarfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import IPAMConfig, IPAMPool

from lab.addresses import Subnet
from lab.core import Component, LabError, wait_until

if TYPE_CHECKING:
    from lab.dockerd import Dockerd

HOSTROOT_REPOSITORY, HOSTROOT_TAG = "runbook-lab/hostroot", "1"
HOSTROOT_IMAGE = f"{HOSTROOT_REPOSITORY}:{HOSTROOT_TAG}"
SPEC_LABEL = "runbook-lab.spec"
# Directories of the hostroot image, with their modes; /usr comes from the machine.
HOSTROOT_DIRS = {
    "usr": 0o755,
    "etc": 0o755,
    "tmp": 0o1777,
    "proc": 0o555,
    "sys": 0o555,
    "dev": 0o755,
    "root": 0o700,
    "run": 0o755,
    "var": 0o755,
    "var/tmp": 0o1777,
    "app": 0o755,
    "data": 0o755,
}
HOSTROOT_LINKS = {"bin": "usr/bin", "lib": "usr/lib", "lib64": "usr/lib64", "sbin": "usr/sbin"}
HOSTROOT_FILES = ("etc/passwd", "etc/group", "etc/nsswitch.conf")


def ensure_hostroot_image(client: docker.DockerClient) -> None:
    """Import a near-empty root whose programs are the machine's (bind-mount /usr:/usr:ro)."""
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.get(HOSTROOT_IMAGE)
        return
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, mode in HOSTROOT_DIRS.items():
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, int(time.time())
            tar.addfile(info)
        for name, target in HOSTROOT_LINKS.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        for name in HOSTROOT_FILES:
            tar.add(f"/{name}", arcname=name)
    client.api.import_image_from_data(
        buffer.getvalue(),
        repository=HOSTROOT_REPOSITORY,
        tag=HOSTROOT_TAG,
        changes=[
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            'CMD ["/bin/bash"]',
        ],
    )


# Docker's DNS forwards names it does not know (a stopped container's) to upstream servers, and
# the lab has none: with glibc's defaults each such lookup waits 10 s (5 s x 2 attempts), where
# production's upstream answers NXDOMAIN at once. Containers that look up a sibling that may be
# stopped get this file as /etc/resolv.conf.
SHORT_DNS_RESOLV_CONF = "nameserver 127.0.0.11\noptions ndots:0 timeout:1 attempts:1\n"


@dataclass(frozen=True)
class ComposeProject:
    """A compose project as `docker compose` labels it: name, working dir and file."""

    name: str
    working_dir: str
    config_file: str

    def network_name(self, key: str) -> str:
        return f"{self.name}_{key}"

    def volume_name(self, key: str) -> str:
        return f"{self.name}_{key}"

    def container_labels(self, service: str, number: int) -> dict[str, str]:
        return {
            "com.docker.compose.project": self.name,
            "com.docker.compose.service": service,
            "com.docker.compose.container-number": str(number),
            "com.docker.compose.oneoff": "False",
            "com.docker.compose.project.working_dir": self.working_dir,
            "com.docker.compose.project.config_files": f"{self.working_dir}/{self.config_file}",
        }

    def ensure_network(self, client: docker.DockerClient, key: str, subnet: Subnet) -> None:
        name = self.network_name(key)
        if any(network.name == name for network in client.networks.list(names=[name])):
            return
        pool = IPAMPool(subnet=str(subnet.subnet), gateway=str(subnet.gateway))
        client.networks.create(
            name,
            driver="bridge",
            ipam=IPAMConfig(pool_configs=[pool]),
            labels={"com.docker.compose.project": self.name, "com.docker.compose.network": key},
        )

    def ensure_volume(self, client: docker.DockerClient, key: str) -> None:
        name = self.volume_name(key)
        with contextlib.suppress(docker.errors.NotFound):
            client.volumes.get(name)
            return
        client.volumes.create(
            name, labels={"com.docker.compose.project": self.name, "com.docker.compose.volume": key}
        )


@dataclass(frozen=True)
class Spec:
    """What `docker compose up` would create for one container; its digest detects drift."""

    name: str
    service: str
    project: ComposeProject
    network: str  # the full network name; the container joins it aliased as service and name
    command: list[str]
    binds: list[str]
    mem_limit: str  # "" for none: what a hand-made `docker run` gets
    memswap_limit: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[int, int] = field(default_factory=dict)
    working_dir: str = "/"
    number: int = 1
    content: str = ""  # digest of mounted code, so editing it redeploys the container
    restart_policy: str = "unless-stopped"  # "no": what a hand-made `docker run` gets
    image: str = HOSTROOT_IMAGE
    # compose's `logging:` (driver json-file and its options); None: the daemon's default.
    log_options: dict[str, str] | None = None

    def digest(self) -> str:
        fields = asdict(self)
        if fields["log_options"] is None:  # specs written before the field keep their digest
            del fields["log_options"]
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

    @property
    def host_network(self) -> bool:
        """compose's `network_mode: host`: the host's own interfaces, no ports to publish."""
        return self.network == "host"


def create_container(client: docker.DockerClient, spec: Spec) -> None:
    """Create and start the container of `spec`."""
    api = client.api
    logging = {"Type": "json-file", "Config": spec.log_options} if spec.log_options is not None else None
    host_config = api.create_host_config(
        binds=spec.binds,
        port_bindings={port: ("0.0.0.0", host_port) for port, host_port in spec.ports.items()},
        mem_limit=spec.mem_limit or None,
        memswap_limit=spec.memswap_limit if spec.mem_limit else None,
        restart_policy={"Name": spec.restart_policy, "MaximumRetryCount": 0},
        network_mode=spec.network,
        log_config=logging,
    )
    networking = None
    if not spec.host_network:
        networking = api.create_networking_config(
            {spec.network: api.create_endpoint_config(aliases=[spec.service, spec.name])}
        )
    api.create_container(
        spec.image,
        command=spec.command,
        name=spec.name,
        environment=[f"{key}={value}" for key, value in spec.env.items()],
        labels={**spec.project.container_labels(spec.service, spec.number), SPEC_LABEL: spec.digest()},
        working_dir=spec.working_dir,
        ports=list(spec.ports),
        host_config=host_config,
        networking_config=networking,
    )
    api.start(spec.name)


def get_container(client: docker.DockerClient, name: str) -> Container | None:
    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        return None


def existing_container(client: docker.DockerClient, name: str) -> Container:
    """The container `name`, or a LabError telling to bring the lab up."""
    container = get_container(client, name)
    if container is None:
        raise LabError(f"container {name} does not exist; run `python -m lab up`")
    return container


def pristine(container: Container, spec: Spec) -> bool:
    """Running from the current spec with no crash or restart on record."""
    return (
        container.status == "running"
        and container.labels.get(SPEC_LABEL) == spec.digest()
        and container.attrs.get("RestartCount", 0) == 0
        and not container.attrs["State"].get("OOMKilled")
    )


def limits_changed(container: Container, spec: Spec) -> bool:
    """CPU or memory limits set by hand (`docker update --cpus 0.05 web`): the spec sets no CPU
    limit, and a memory limit only where it names one. The digest label cannot see this."""
    host = container.attrs.get("HostConfig") or {}
    cpu = bool(host.get("NanoCpus") or host.get("CpuQuota"))
    return cpu or (not spec.mem_limit and bool(host.get("Memory")))


def networks_changed(container: Container, spec: Spec) -> bool:
    """Disconnected from its network or joined to another (`docker network disconnect`) behind the
    lab's back: the digest label cannot see this either."""
    if spec.host_network:
        return False
    joined = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
    return set(joined) != {spec.network}


def remove_container(client: docker.DockerClient, name: str) -> None:
    """Stop (SIGTERM, exit 0) then remove: `rm -f` would SIGKILL, and its `die` event with
    exit code 137 would look like a crash to a check reading `docker events`."""
    container = get_container(client, name)
    if container is None:
        return
    if container.status in ("running", "restarting", "paused"):
        container.stop(timeout=5)
    container.remove(v=False)


def reconcile(
    client: docker.DockerClient,
    specs: Iterable[Spec],
    *,
    strict: bool,
    recreate: Iterable[str] = (),
    answers: Mapping[str, Callable[[docker.DockerClient], bool]] | None = None,
) -> None:
    """Create missing or drifted containers; `strict` also replaces any that are not pristine, or
    running but not answering its probe in `answers` (state changed at run time behind the lab's
    back, such as `redis-cli CONFIG SET requirepass`: nothing in docker shows it)."""
    forced = set(recreate)
    probes = answers or {}
    for spec in specs:
        container = get_container(client, spec.name)
        probe = probes.get(spec.name)
        if container is not None and (
            spec.name in forced
            or container.labels.get(SPEC_LABEL) != spec.digest()
            or limits_changed(container, spec)
            or networks_changed(container, spec)
            or (strict and not pristine(container, spec))
            # asked last: a container already found drifted is not asked
            or (strict and probe is not None and container.status == "running" and not probe(client))
        ):
            remove_container(client, spec.name)
            container = None
        if container is None:
            create_container(client, spec)
        elif container.status == "paused":  # `docker pause` behind the lab's back
            container.unpause()
        elif container.status != "running":
            container.start()


def exec_output(client: docker.DockerClient, name: str, argv: list[str]) -> tuple[int, str]:
    """`docker exec name argv...`: exit code and output; (-1, "") if it is not running."""
    container = get_container(client, name)
    if container is None or container.status != "running":
        return -1, ""
    result = container.exec_run(argv)
    return result.exit_code, result.output.decode(errors="replace").strip()


def logs(client: docker.DockerClient, name: str) -> str:
    """`docker logs name` (both streams); "" if there is no such container."""
    container = get_container(client, name)
    return container.logs(stdout=True, stderr=True).decode(errors="replace") if container else ""


def inspect(client: docker.DockerClient, name: str) -> dict[str, Any]:
    """`docker inspect name`, as a dict."""
    return dict(existing_container(client, name).attrs)


def stop_and_wait(client: docker.DockerClient, name: str) -> None:
    """`docker stop name`, returning once docker reports it exited."""
    existing_container(client, name).stop(timeout=10)
    wait_until(
        lambda: inspect(client, name)["State"]["Status"] == "exited", timeout=20, what=f"{name} to stop"
    )


def wait_restarted(dockerd: Dockerd, name: str, times: int, *, timeout: float = 60) -> None:
    """Until docker's restart policy has restarted `name` at least `times` times: a crash loop
    that a checklist run can observe."""

    def restarted() -> bool:
        with dockerd.session() as client:
            return int(existing_container(client, name).attrs.get("RestartCount") or 0) >= times

    wait_until(restarted, timeout=timeout, what=f"{name} to be restarted {times} times", interval=0.5)


def container_components(
    client: docker.DockerClient, expected: Iterable[str], unwanted: Iterable[str] = ()
) -> list[Component]:
    """Status lines: each expected container (ok when running), and any unwanted one that exists."""
    present_unwanted = [name for name in unwanted if get_container(client, name) is not None]
    lines = []
    for name in [*expected, *present_unwanted]:
        container = get_container(client, name)
        if container is None:
            lines.append(Component(f"container {name}", False, "missing"))
            continue
        detail = f"{container.status}, restarts {container.attrs.get('RestartCount', 0)}"
        if container.attrs["State"].get("OOMKilled"):
            detail += ", OOMKilled"
        ok = container.status == "running" and name not in present_unwanted
        lines.append(Component(f"container {name}", ok, detail))
    return lines
