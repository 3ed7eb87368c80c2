"""A real Prometheus server (Debian's `prometheus`) on loopback, scraping one target every second.

Started from a temporary folder (its config and TSDB) on a free port and stopped by the
fixture that started it, by its own process. The scrape sends the target's metrics token
as a bearer token, as a team's Prometheus would.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from selftests.data_servers import free_port, wait_for

BINARY = Path("/usr/bin/prometheus")
CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: loyalty-api
    authorization: {{credentials: "{token}"}}
    static_configs:
      - targets: ["{target}"]
"""


def start_prometheus(target: str, token: str) -> Iterator[str]:
    """Prometheus scraping http://TARGET/metrics; yields its base URL."""
    if not BINARY.exists():
        pytest.skip("prometheus is missing (apt-get install prometheus)")
    home = Path(tempfile.mkdtemp(prefix="runbook-prometheus-"))
    (home / "prometheus.yml").write_text(CONFIG.format(target=target, token=token))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(BINARY),
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(home / "log").open("wb"),
    )
    try:
        wait_for(lambda: _ready(base), "prometheus", seconds=30)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(home, ignore_errors=True)


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/-/ready", timeout=1, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False
