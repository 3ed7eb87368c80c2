"""A `docker` stand-in for the compose kinds' tests: containers from a JSON file, exec runs locally.

Put first on PATH by the `docker` fixture (selftests/compose_fixtures.py), it answers the
commands runbook.host.docker_host sends: `ps -a --filter label=K=V ...`, `inspect --type container
[--format T] -- NAME` (the slim JSON, the environment or the network lines), `exec NAME CMD...` (run on
this machine, as if inside), `cp [-L] NAME:PATH -` (this machine's file as a tar stream, in any
state), `logs ... -- NAME`. The state file is $FAKE_DOCKER_STATE:
{"containers": [{"name", "labels", "state", "env", "networks", "logs", "restart_policy", "memory",
"ports", "mounts", "stats", "id", "path"}]}; `stats --no-stream` prints the running containers' "stats" rows.
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
from typing import Any

ENV_TEMPLATE = '{{range .Config.Env}}{{printf "%q" .}}{{println}}{{end}}'
SLIM_TEMPLATE = '{"Id":{{json .Id}},"Name":{{json .Name}},'
NETWORKS_TEMPLATE = (
    "{{range $name, $net := .NetworkSettings.Networks}}{{$name}} {{$net.IPAddress}}{{println}}{{end}}"
)


def load() -> list[dict[str, Any]]:
    with open(os.environ["FAKE_DOCKER_STATE"], encoding="utf-8") as file:
        return json.load(file)["containers"]  # type: ignore[no-any-return]


def find(name: str) -> dict[str, Any] | None:
    return next((container for container in load() if container["name"] == name), None)


def no_such(name: str) -> int:
    print(f"Error: No such container: {name}", file=sys.stderr)
    return 1


def go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def ps(args: list[str]) -> int:
    wanted = [args[i + 1] for i, arg in enumerate(args) if arg == "--filter"]
    for container in load():
        labels = container.get("labels", {})
        running = container.get("state", {}).get("Status") == "running"
        ok = True
        for condition in wanted:
            key, _, value = condition.partition("=")
            if key == "label":
                label, _, label_value = value.partition("=")
                ok &= labels.get(label) == label_value
            elif key == "status":
                ok &= (value == "running") == running
        if ok:
            print(container["name"])
    return 0


def inspect(args: list[str]) -> int:
    name = args[-1]
    container = find(name)
    if container is None:
        return no_such(name)
    template = args[args.index("--format") + 1] if "--format" in args else ""
    # The argv the host's shell made of runbook.host.docker_host's templates, exactly.
    assert template in ("", ENV_TEMPLATE, NETWORKS_TEMPLATE) or template.startswith(SLIM_TEMPLATE), template
    if template == ENV_TEMPLATE:
        for line in container.get("env", []):
            print(go_quote(line))
        return 0
    if template == NETWORKS_TEMPLATE:  # runbook.host.routes: a container's address, "NETWORK ADDRESS" lines
        for network, address in sorted(container.get("networks", {}).items()):
            print(f"{network} {address}")
        return 0
    info = {
        "Id": container.get("id", f"id-{name}"),
        "Name": f"/{name}",
        "RestartCount": container.get("restart_count", 0),
        "State": container.get("state", {"Status": "running"}),
        "HostConfig": {
            "RestartPolicy": {"Name": container.get("restart_policy", "unless-stopped")},
            "Memory": container.get("memory", 0),
            "LogConfig": container.get("log_config", {"Type": "json-file", "Config": {}}),
            "PortBindings": container.get("ports", {}),
        },
        "Mounts": container.get("mounts", []),
        "Config": {"Image": "map-v12", "Labels": container.get("labels", {})},
    }
    print(json.dumps(info if template else [info]))
    return 0


def exec_(args: list[str]) -> int:
    name, command = args[0], args[1:]
    container = find(name)
    if container is None:
        return no_such(name)
    if container.get("state", {}).get("Status") != "running":
        print(f"Error response from daemon: container {name} is not running", file=sys.stderr)
        return 1
    sys.stdout.flush()
    if "path" in container:  # the container's PATH: what its image carries
        os.environ["PATH"] = container["path"]
    try:
        os.execvp(command[0], command)
    except FileNotFoundError:  # docker's own answer for a program the image does not have
        said = f'exec: "{command[0]}": executable file not found in $PATH: unknown'
        print(
            f"OCI runtime exec failed: exec failed: unable to start container process: {said}",
            file=sys.stderr,
        )
        return 126
    return 127  # not reached


def cp(args: list[str]) -> int:
    """`cp [-L] NAME:PATH -`: PATH of this machine as a tar stream, whatever the container's state."""
    source = next(arg for arg in args if arg not in {"-L", "-"})
    name, _, path = source.partition(":")
    if find(name) is None:
        return no_such(name)
    if not os.path.exists(path):
        said = f"Error response from daemon: Could not find the file {path} in container {name}"
        print(said, file=sys.stderr)
        return 1
    with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as tar:
        tar.add(os.path.realpath(path), arcname=os.path.basename(path))
    return 0


def logs(args: list[str]) -> int:
    name = args[-1]
    container = find(name)
    if container is None:
        return no_such(name)
    lines = container.get("logs", "").splitlines()
    if "--tail" in args:
        lines = lines[-int(args[args.index("--tail") + 1]) :]
    for line in lines:
        print(f"2026-01-02T03:00:00.000000000Z {line}" if "-t" in args else line)
    return 0


def stats(args: list[str]) -> int:
    """`stats --no-stream --format '{{json .}}'`: a container's "stats" row (Name, MemPerc, MemUsage)."""
    for container in load():
        if "stats" in container and container.get("state", {}).get("Status") == "running":
            print(json.dumps({"Name": container["name"], **container["stats"]}))
    return 0


def main(argv: list[str]) -> int:
    command, args = argv[0], argv[1:]
    handlers = {"ps": ps, "inspect": inspect, "exec": exec_, "cp": cp, "logs": logs, "stats": stats}
    if command not in handlers:
        print(f"fake docker: {command} not supported", file=sys.stderr)
        return 2
    return handlers[command](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
