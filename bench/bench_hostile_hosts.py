"""How long a hostile host or server takes to fail a check, and the runner's peak memory meanwhile.

Each case runs one check in a child process (so its peak RSS is its own) against
something on loopback or local:// that misbehaves: headers trickled a byte at a
time, an endless body, an endless command output, a background child holding the
output open, binary output. Prints one row per case: outcome, seconds, peak MB.

    .venv/bin/python bench/bench_hostile_hosts.py
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent(
    """
    import sys, time
    from runbook.host.target import Target
    from runbook.errors import CheckError, CheckFailed
    kind, argument = sys.argv[1], sys.argv[2]
    target = Target("local", "local://", command_timeout=5, connect_timeout=5)
    started = time.monotonic()
    try:
        if kind == "http":
            from runbook.checks.http import HttpCheck, verify
            timeout = float(sys.argv[3])
            check = HttpCheck(id="h", title="hostile", severity="P2", section="1", remedy="-",
                              url=argument, timeout=timeout, expect_json={"status": "ok"})
            verify(check, target)
            said = "passed"
        else:
            result = target.run(argument)
            said = f"exit {result.rc}, {len(result.stdout)} chars kept, {result.dropped} bytes dropped"
            if result.stderr:
                said += "; " + result.stderr.strip().splitlines()[-1][:70]
    except (CheckFailed, CheckError) as exc:
        said = (getattr(exc, "found", None) or str(exc))[:110]
    print(f"{time.monotonic() - started:.2f}|{said}")
    """
)


def serve(mode: str) -> int:
    """A loopback server that trickles headers or sends an endless body; returns its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def handle(connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)
            try:
                if mode == "trickle":
                    connection.sendall(b"HTTP/1.1 200 OK\r\n")
                    for _ in range(120):
                        connection.sendall(b"X")
                        time.sleep(1)
                else:
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n[")
                    chunk = b"1," * 65536
                    while True:
                        connection.sendall(chunk)
            except OSError:
                return

    def accept() -> None:
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return int(listener.getsockname()[1])


def run_case(*argv: str) -> tuple[str, str, float]:
    """One check in a child; GNU time reports the child's own peak RSS (KB) on its last line."""
    command = ["/usr/bin/time", "-f", "%M", sys.executable, "-c", CHILD, *argv]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    line = (done.stdout.strip().splitlines() or ["?|" + done.stderr.strip()[-100:]])[-1]
    seconds, _, said = line.partition("|")
    peak_kb = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "0"
    return seconds, said, int(peak_kb) / 1024 if peak_kb.isdigit() else 0.0


def main() -> None:
    trickle, endless = serve("trickle"), serve("endless")
    cases = [
        ("headers trickled 1 byte/s, timeout 3", "http", f"http://127.0.0.1:{trickle}/health", "3"),
        ("endless body, timeout 20", "http", f"http://127.0.0.1:{endless}/health", "20"),
        ("endless output (yes), deadline 5 s", "run", "yes"),
        ("3 GB of output (yes | head -c 3G)", "run", "yes | head -c 3000000000"),
        ("background child holds stdout", "run", "sleep 1000 & echo started"),
        ("binary output", "run", "printf '\\377\\376ok'"),
    ]
    print(f"{'case':40} {'seconds':>8} {'peak MB':>8}  what the check said")
    for name, *argv in cases:
        seconds, said, peak = run_case(*argv)
        print(f"{name:40} {seconds:>8} {peak:8.0f}  {said}")


if __name__ == "__main__":
    main()
