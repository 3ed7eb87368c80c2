"""The fleet benchmark's fixtures: one description, and its equivalents for testinfra and ansible.

Every host gets the host-level checks of the calendar runbook that need no containers
(disk, memory, files, commands), the same shell lines in all three runners:

| check | our kind | command on the host |
| --- | --- | --- |
| reachable | hosts (made by the suite) | `true` |
| disk-root | resources disk: / | `df -P -k -- /` |
| memory-free | resources min_available_mb | `grep -E '^(MemAvailable|MemTotal):' /proc/meminfo` |
| passwd | files /etc/passwd root 644 | `stat -L -c '%F|%U|%a' -- /etc/passwd` |
| root-home | files /root directory | `stat -L -c '%F|%U|%a' -- /root` |
| kernel | commands expect_stdout Linux | `uname -s` |
| loadavg | commands | `test -r /proc/loadavg` |
"""

from __future__ import annotations

from pathlib import Path

import yaml

CHECKS_PER_HOST = 7  # the six below and the suite's own reachable-<host>
COMMANDS = {
    "reachable": "true",
    "disk-root": "df -P -k -- /",
    "memory-free": "grep -E '^(MemAvailable|MemTotal):' /proc/meminfo",
    "passwd": "stat -L -c '%F|%U|%a' -- /etc/passwd",
    "root-home": "stat -L -c '%F|%U|%a' -- /root",
    "kernel": "uname -s",
    "loadavg": "test -r /proc/loadavg",
}
COMMON = {"severity": "P3", "section": "1. Daily Health Check", "remedy": "see the runbook"}


def host_checks(name: str) -> dict[str, list[dict[str, object]]]:
    def check(check_id: str, title: str, **fields: object) -> dict[str, object]:
        return {"id": f"{check_id}-{name}", "title": title, "host": name, **COMMON, **fields}

    return {
        "resources": [
            check("disk-root", "disk / under 90% used", disk="/", max_used_percent=90),
            check("memory-free", "more than 100 MB memory available", min_available_mb=100),
        ],
        "files": [
            check("passwd", "/etc/passwd is root's, 644", path="/etc/passwd", owner="root", mode="644"),
            check("root-home", "/root is a directory", path="/root", type="directory"),
        ],
        "commands": [
            check("kernel", "the kernel is Linux", run="uname -s", expect_stdout="Linux"),
            check("loadavg", "/proc/loadavg is readable", run="test -r /proc/loadavg"),
        ],
    }


def write_description(folder: Path, specs: dict[str, str], runbook: Path) -> Path:
    """A system `fleet` with these hosts (name -> spec) and the checks above on each."""
    checks: dict[str, list[dict[str, object]]] = {}
    for name in specs:
        for kind, listed in host_checks(name).items():
            checks.setdefault(kind, []).extend(listed)
    description = {
        "system": "fleet",
        "runbook": str(runbook),
        "hosts": specs,
        "connect_timeout": 20,
        "checks": checks,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fleet.yml"
    path.write_text(yaml.safe_dump(description, sort_keys=False))
    return path


TESTINFRA_MODULE = '''"""The fleet checks in stock testinfra: a test per command and --hosts entry."""
import pytest

COMMANDS = {commands!r}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_check(host, name):
    result = host.run(COMMANDS[name])
    assert result.rc == 0, result.stderr
    if name == "kernel":
        assert result.stdout.strip() == "Linux"
    if name == "disk-root":
        assert int(result.stdout.splitlines()[-1].split()[4].rstrip("%")) <= 90
    if name == "memory-free":
        assert int(result.stdout.split("MemAvailable:")[1].split()[0]) > 100 * 1024
    if name == "passwd":
        assert result.stdout.strip() == "regular file|root|644"
    if name == "root-home":
        assert result.stdout.startswith("directory|")
'''


def write_testinfra_module(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "test_fleet_testinfra.py"
    path.write_text(TESTINFRA_MODULE.format(commands=COMMANDS))
    return path


def write_ansible_inventory(folder: Path, addresses: dict[str, tuple[str, int]], ssh_config: Path) -> Path:
    """An INI inventory: each host by its address and port, ssh reading the fleet's ssh_config."""
    lines = ["[fleet]"]
    for name, (address, port) in addresses.items():
        lines.append(f"{name} ansible_host={address} ansible_port={port}")
    lines += [
        "",
        "[fleet:vars]",
        "ansible_user=root",
        f"ansible_ssh_common_args='-F {ssh_config}'",
        "ansible_python_interpreter=/usr/bin/python3",
        "",
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "inventory.ini"
    path.write_text("\n".join(lines))
    return path
