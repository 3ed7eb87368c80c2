"""The xray config of the lab's hosts: a real VLESS inbound, served by Debian's v2ray 4.34.

v2ray 4.34 and xray read the same config.json for VLESS, and refuse two clients whose
`email` differs only by case with the runbook's own error (`User <name> already exists`),
exiting 23: under `restart: unless-stopped` that is the restart loop of runbook section 2.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

PORT = 443
USERS = ("test1", "alice", "bob")
# What a probe through a replica fetches: a file served on the replica's own loopback, so the
# VLESS egress of that replica (not the runner's own network) is what answers.
PROBE_PORT = 8081
PROBE_PATH = "/generate_204.txt"
PROBE_BODY = "hexenvpn probe ok\n"


def user_id(name: str) -> str:
    """A stable UUID per user name, the same on every host (as the sync copies it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://vpn.example.com/users/{name.lower()}"))


def client(name: str) -> dict[str, Any]:
    return {"id": user_id(name), "email": name, "level": 0}


def config(clients: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "log": {"loglevel": "warning"},
        "inbounds": [
            {
                "tag": "vless-in",
                "listen": "0.0.0.0",
                "port": PORT,
                "protocol": "vless",
                "settings": {"clients": clients, "decryption": "none"},
                "streamSettings": {"network": "tcp"},
            }
        ],
        "outbounds": [{"protocol": "freedom", "tag": "direct"}],
    }


def healthy_config() -> dict[str, Any]:
    return config([client(name) for name in USERS])


def write(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def read(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def emails(document: dict[str, Any]) -> list[str]:
    return [entry.get("email", "") for entry in document["inbounds"][0]["settings"]["clients"]]


def with_clients(document: dict[str, Any], clients: list[dict[str, Any]]) -> dict[str, Any]:
    changed = json.loads(json.dumps(document))
    changed["inbounds"][0]["settings"]["clients"] = clients
    return changed
