"""vless-add-user / vless-del-user: the only way users change (runbook section 3).

    vless-add-user --name NAME [--days N]
    vless-del-user --name NAME

Edits the master's /usr/local/etc/xray/config.json, refusing a name that already exists in any
case (the `User <name> already exists` loop of section 2), checks it with `xray run -test`,
restarts hexenvpn-xray, then syncs every replica: the same config.json laid in its xray folder
and its hexenvpn-xray restarted. In production the sync goes over SSH; the lab's hosts share
this machine, so each replica's folder and docker socket are mounted under /replicas/<name>/.
"""

import argparse
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

CONFIG = Path("/usr/local/etc/xray/config.json")
REPLICAS = Path("/replicas")
XRAY = "hexenvpn-xray"


def clients(document: dict) -> list:
    return document["inbounds"][0]["settings"]["clients"]


def save(path: Path, document: dict) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n")
    os.replace(temporary, path)


def restart(docker_host: str | None) -> None:
    argv = ["docker", *(["-H", docker_host] if docker_host else []), "restart", "-t", "2", XRAY]
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


def main() -> int:
    adding = sys.argv[1] == "add"  # the vless-add-user / vless-del-user wrappers say which
    parser = argparse.ArgumentParser(prog=f"vless-{sys.argv[1]}-user")
    parser.add_argument("--name", required=True)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args(sys.argv[2:])
    document = json.loads(CONFIG.read_text())
    same = [entry for entry in clients(document) if entry.get("email", "").lower() == args.name.lower()]
    if adding:
        if same:
            print(f"User {same[0]['email']} already exists", file=sys.stderr)
            return 1
        user_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://vpn.example.com/users/{args.name.lower()}"))
        clients(document).append({"id": user_id, "email": args.name, "level": 0})
    else:
        if not same:
            print(f"User {args.name} not found", file=sys.stderr)
            return 1
        document["inbounds"][0]["settings"]["clients"] = [e for e in clients(document) if e not in same]
    save(CONFIG, document)
    test = subprocess.run(
        ["xray", "run", "-test", "-config", str(CONFIG)], capture_output=True, text=True, timeout=30
    )
    if test.returncode != 0:
        print(test.stdout[-500:], file=sys.stderr)
        return 1
    restart(None)
    for replica in sorted(REPLICAS.iterdir()) if REPLICAS.is_dir() else []:
        save(replica / "xray" / "config.json", document)
        restart(f"unix://{replica / 'docker.sock'}")
        print(f"synced {replica.name}")
    print(f"{'added' if adding else 'deleted'} {args.name} (days: {args.days})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
