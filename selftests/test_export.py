"""Prometheus: the textfile parsed by prometheus_client, and a push read back from a real Pushgateway.

The Pushgateway is Debian's `prometheus-pushgateway`, started on a free loopback port for the
module and stopped by its own process.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from selftests.data_servers import free_port, wait_for
from selftests.readers_kit import SYSTEM, ReadersApp

PUSHGATEWAY = shutil.which("prometheus-pushgateway") or "/usr/bin/prometheus-pushgateway"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def success(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], check: str) -> float | None:
    for (name, labels), value in found.items():
        if name == "runbook_check_success" and dict(labels).get("check") == check:
            return value
    return None


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not Path(PUSHGATEWAY).exists():
        pytest.skip("prometheus-pushgateway is not installed (apt-get install prometheus-pushgateway)")
    port = free_port()
    log = (tmp_path_factory.mktemp("pushgateway") / "log").open("w")
    process = subprocess.Popen(
        [PUSHGATEWAY, f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, "prometheus-pushgateway")
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest.mark.slow
def test_textfile_for_node_exporter(tmp_path: Path, health: ThreadingHTTPServer) -> None:
    app = ReadersApp(tmp_path, health.server_address[1]).write()
    app.break_("worker")
    prom = tmp_path / "textfile" / "runbook-daily.prom"
    prom.parent.mkdir()
    before = time.time()
    run = app.run(f"--metrics-textfile={prom}")
    assert run.returncode == 1
    found = samples(prom.read_text(encoding="utf-8"))
    assert success(found, "worker-queue") == 0
    assert success(found, "api-config") == 1
    assert success(found, "prometheus-healthy") is None  # skipped: nothing learnt
    labels = (("check", "worker-queue"), ("severity", "P2"), ("system", SYSTEM))
    assert found[("runbook_check_success", labels)] == 0
    assert found[("runbook_run_failures", (("markers", "daily"), ("severity", "P2")))] == 1
    assert 0 < found[("runbook_run_duration_seconds", (("markers", "daily"),))] < 300
    assert before <= found[("runbook_last_run_timestamp_seconds", (("markers", "daily"),))] <= time.time()
    assert [path.name for path in prom.parent.iterdir()] == ["runbook-daily.prom"]  # no temporary left
    assert f"runbook metrics: {prom}" in run.output


@pytest.mark.slow
def test_push_read_back_from_a_real_pushgateway(
    tmp_path: Path, health: ThreadingHTTPServer, pushgateway: str
) -> None:
    app = ReadersApp(tmp_path, health.server_address[1]).write()
    app.break_("cache")
    run = app.run(f"--pushgateway={pushgateway}", marker="daily")
    assert run.returncode == 1, run.output[-3000:]
    assert f"metrics pushed to {pushgateway}" in run.output
    found = samples(httpx.get(f"{pushgateway}/metrics", timeout=5).text)
    pushed = {
        (name, dict(labels).get("check")): value
        for (name, labels), value in found.items()
        if dict(labels).get("job") == "runbook" and dict(labels).get("markers") == "daily"
    }
    assert pushed[("runbook_check_success", "cache-warm")] == 0
    assert pushed[("runbook_check_success", "health")] == 1
    assert ("runbook_last_run_timestamp_seconds", None) in pushed


@pytest.mark.slow
def test_unreachable_pushgateway_is_reported(tmp_path: Path, health: ThreadingHTTPServer) -> None:
    app = ReadersApp(tmp_path, health.server_address[1]).write()
    run = app.run("--pushgateway=http://127.0.0.1:9")
    assert run.returncode == 0, run.output[-3000:]
    assert "runbook reports: pushgateway http://127.0.0.1:9: not pushed:" in run.output
