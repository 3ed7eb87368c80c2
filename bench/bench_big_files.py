"""Big files in bounded memory: the log check on a 1 GB json-file log, integrity of a 2 GB tar.gz.

Builds its fixtures in /var/tmp (deleted at the end): a docker json-file log of about 1 GB
(1 error line in 500) and a tar.gz of about 2 GB (compressible text, random-ish), then in
one run, side by side, each as its own process timed start to exit with its peak RSS
(/usr/bin/time -v):

- logs: `grep -c` on the file, against the log check's host-side pipeline reading the
  json-file (runbook.checks.logs, through a local:// Target, a stand-in `docker inspect`
  naming the file), and the count the check prints (only counts and last lines travel);
- archives: `gzip -t`, against the integrity check's streaming reader
  (runbook.checks.backups._list_tar) in a pytest-free Python process.

    .venv/bin/python bench/bench_big_files.py [--log-mb 1024] [--archive-mb 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = str(ROOT / ".venv" / "bin" / "python")
WORDS = [
    "request",
    "handled",
    "user",
    "calendar",
    "event",
    "redis",
    "radicale",
    "polling",
    "update",
    "sync",
    "token",
    "ok",
]


def make_log(path: Path, megabytes: int) -> int:
    """A json-file log as dockerd writes it; returns the number of error lines."""
    rng = random.Random(7)
    start = datetime.now(UTC) - timedelta(hours=12)
    errors = 0
    target = megabytes << 20
    with path.open("w", encoding="utf-8") as out:
        written, index = 0, 0
        while written < target:
            block = []
            for _ in range(5000):
                index += 1
                words = " ".join(rng.choice(WORDS) for _ in range(12))
                level = "ERROR" if index % 500 == 0 else "INFO"
                errors += level == "ERROR"
                stamp = (start + timedelta(milliseconds=index)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
                entry = {"log": f"{level} {words}\n", "stream": "stderr", "time": stamp}
                block.append(json.dumps(entry, separators=(",", ":")))
            text = "\n".join(block) + "\n"
            out.write(text)
            written += len(text)
    return errors


def make_archive(path: Path, megabytes: int, folder: Path) -> None:
    """A tar.gz of text files (about 4:1 compressible), built by tar | gzip."""
    source = folder / "data"
    source.mkdir()
    rng = random.Random(11)
    chunk = "\n".join(
        " ".join(rng.choice(WORDS) + str(rng.randint(0, 99999)) for _ in range(10)) for _ in range(20000)
    )
    per_file = len(chunk.encode()) * 8
    files = max(1, ((megabytes << 20) * 4) // per_file)
    for index in range(files):
        (source / f"part-{index:04d}.txt").write_text(chunk * 8)
        chunk = chunk[1:] + chunk[0]  # no two files alike
    subprocess.run(f"tar -C {folder} -cf - data | gzip -6 > {path}", shell=True, check=True)
    shutil.rmtree(source)


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """(wall seconds, peak RSS KB, stdout) of one process."""
    started = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", *argv], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    wall = time.perf_counter() - started
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} exit {proc.returncode}: {proc.stderr[-500:]}")
    return wall, int(match.group(1)) if match else 0, proc.stdout.strip()


LOG_CHECK = """
import sys
from runbook.checks import logs
from runbook.host.target import Target
from runbook.errors import CheckFailed
check = logs.LogCheck(id="e", title="errors", severity="P2", section="1", remedy="r", container="bot",
                      pattern="error|exception|traceback", since=86400, max_matches=0, show_lines=20)
target = Target("local", "local://", command_timeout=600, connect_timeout=5)
target.cached(("docker-inspect", "bot"), lambda: {"Name": "/bot"})
try:
    logs._verify_one(check, target, logs.Container("bot"))
    print(0)
except CheckFailed as failed:
    print(failed.found.split()[0])
"""

ARCHIVE_CHECK = """
import sys
from runbook.checks.backups import _list_tar
with open(sys.argv[1], "rb", buffering=0) as raw:
    print(len(_list_tar(raw, sys.argv[1])))
"""


def stand_in_docker(folder: Path, log: Path) -> dict[str, str]:
    binary = folder / "bin" / "docker"
    binary.parent.mkdir()
    binary.write_text(f"#!/bin/sh\necho 'json-file|{log}'\n")
    binary.chmod(0o755)
    return {**os.environ, "PATH": f"{binary.parent}:{os.environ['PATH']}"}


def row(
    what: str, ours: tuple[float, int, str], base: tuple[float, int, str], size: int, base_name: str
) -> None:
    mb = size / 2**20
    print(
        f"{what:<9} {'ours':<24} {ours[0]:>7.2f} {mb / ours[0]:>8.0f} {ours[1] / 1024:>8.1f}  {ours[2]}\n"
        f"{'':<9} {base_name:<24} {base[0]:>7.2f} {mb / base[0]:>8.0f} {base[1] / 1024:>8.1f}  {base[2]}\n"
        f"{'':<9} {'ours / baseline throughput':<24} {base[0] / ours[0]:>7.0%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--log-mb", type=int, default=1024)
    parser.add_argument("--archive-mb", type=int, default=2048)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-big-", dir="/var/tmp") as name:
        folder = Path(name)
        log = folder / "container-json.log"
        errors = make_log(log, args.log_mb)
        env = stand_in_docker(folder, log)
        subprocess.run(["cat", str(log)], stdout=subprocess.DEVNULL, check=True)  # both from page cache
        base = timed(["grep", "-c", "-i", "-E", "error|exception|traceback", str(log)])
        ours = timed([PYTHON, "-c", LOG_CHECK], env=env)
        print(f"log: {log.stat().st_size / 2**20:.0f} MB, {errors} error lines\n")
        print(f"{'what':<9} {'runner':<24} {'wall s':>7} {'MB/s':>8} {'peak MB':>8}  count")
        row("logs", ours, base, log.stat().st_size, "grep -c")
        log.unlink()
        archive = folder / "backup.tar.gz"
        make_archive(archive, args.archive_mb, folder)
        subprocess.run(["cat", str(archive)], stdout=subprocess.DEVNULL, check=True)
        size = archive.stat().st_size
        base = timed(["gzip", "-t", str(archive)])
        ours = timed([PYTHON, "-c", ARCHIVE_CHECK, str(archive)])
        print(f"\narchive: {size / 2**20:.0f} MB compressed")
        row("archive", ours, (base[0], base[1], "ok"), size, "gzip -t")
    print(f"\nmachine: {os.cpu_count()} CPUs, python {sys.version.split()[0]}; MB/s of the file as stored")


if __name__ == "__main__":
    main()
