"""SSH into lab hosts: one client key, one ssh_config and one known_hosts for all of them.

The suite reaches lab hosts exactly as production ones, `ssh -F <lab ssh config> root@<addr>`,
so every host (network-namespace or systemd) pins its own host key here when it comes up.
"""

from __future__ import annotations

from pathlib import Path

from lab.core import file_lock, lab_dir, run, write_file

SSH_PORT = 22


def ssh_dir() -> Path:
    return lab_dir() / "ssh"


def ssh_config_path() -> Path:
    return ssh_dir() / "config"


def client_key() -> Path:
    """The lab's client key (made once); its .pub goes into every host's authorized_keys."""
    key = ssh_dir() / "id_ed25519"
    ssh_dir().mkdir(parents=True, exist_ok=True)
    ssh_dir().chmod(0o700)
    if not key.exists():
        make_key(key, comment="runbook-lab")
    return key


def make_key(path: Path, *, comment: str) -> Path:
    """An ed25519 key pair at `path` (and `path`.pub), unless one is there already."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return path


def pin_host(addr: str, host_key_pub: Path, *, label: str) -> None:
    """Add the host at `addr` to the lab's ssh_config and pin its key in the lab's known_hosts."""
    with file_lock(ssh_dir() / ".lock"):  # hosts of several systems come up at once
        _pin_host(addr, host_key_pub, label=label)


def _pin_host(addr: str, host_key_pub: Path, *, label: str) -> None:
    key_fields = host_key_pub.read_text().split()[:2]
    known = ssh_dir() / "known_hosts"
    lines = known.read_text().splitlines() if known.exists() else []
    lines = [line for line in lines if line.split(" ", 1)[0] != addr]
    lines.append(f"{addr} {' '.join(key_fields)}")
    write_file(known, "\n".join(lines) + "\n", 0o600)
    config = ssh_config_path()
    text = config.read_text() if config.exists() else "# runbook-lab hosts (generated)\n"
    if f"Host {addr}\n" in text:
        return
    text += "\n".join(
        [
            "",
            f"# {label}",
            f"Host {addr}",
            "    User root",
            f"    IdentityFile {client_key()}",
            "    IdentitiesOnly yes",
            f"    UserKnownHostsFile {known}",
            "    StrictHostKeyChecking accept-new",
            "    BatchMode yes",
            "    ConnectTimeout 5",
            "",
        ]
    )
    write_file(config, text, 0o600)


def ssh(addr: str, command: str, *, check: bool = True, timeout: float = 120) -> str:
    """Run a command on a lab host as an operator would: ssh root@<addr> '<command>'."""
    proc = run(["ssh", "-F", str(ssh_config_path()), f"root@{addr}", command], check=check, timeout=timeout)
    return str(proc.stdout)
