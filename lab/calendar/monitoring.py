"""The calendar's monitoring stack (docker-compose.monitoring.yml): Prometheus, Grafana, Loki.

Prometheus is the real one (Debian's `prometheus`, through the hostroot image's /usr), scraping
itself and the bot's /health port. Grafana and Loki have no Debian package: `standin.py` answers
their health endpoints (`/api/health`, `/ready`) as they do. All three publish the runbook's
ports (9090, 3000, 3100) on the server, where the checks curl them on localhost.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import docker

from lab.containers import ComposeProject, Spec, exec_output
from lab.core import write_file

HERE = Path(__file__).resolve().parent
CONFIG_FILE = "docker-compose.monitoring.yml"
PROMETHEUS, GRAFANA, LOKI = "prometheus", "grafana", "loki"
CONTAINERS = (PROMETHEUS, GRAFANA, LOKI)
STANDINS = {GRAFANA: 3000, LOKI: 3100}
DATA_VOLUME_KEY = "prometheus-data"
# Prometheus scrapes itself: what its own /-/healthy reports is real, not a stand-in's answer.
PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 15s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
"""


def project(working_dir: str) -> ComposeProject:
    return ComposeProject(name="ai-calendar-assistant", working_dir=working_dir, config_file=CONFIG_FILE)


def write_files(folder: Path) -> None:
    """The stack's compose file, Prometheus's config and the stand-in, in the project dir."""
    write_file(folder / CONFIG_FILE, (HERE / CONFIG_FILE).read_text())
    write_file(folder / "monitoring" / "prometheus.yml", PROMETHEUS_CONFIG)
    write_file(folder / "monitoring" / "standin.py", (HERE / "standin.py").read_text())


def standin_spec(role: str, port: int, common: dict[str, Any], binds: list[str]) -> Spec:
    """Grafana or Loki as `standin.py` plays it, on the real service's name and port."""
    return Spec(
        name=role,
        service=role,
        command=["/usr/bin/python3", "-u", "/etc/monitoring/standin.py", role, str(port)],
        binds=binds,
        mem_limit="128m",
        ports={port: port},
        content=hashlib.sha256((HERE / "standin.py").read_bytes()).hexdigest()[:16],
        **common,
    )


def specs(folder: Path, working_dir: str, network: str, usr: list[str]) -> dict[str, Spec]:
    """The three containers, on the calendar's network, as `docker compose up` makes them."""
    common = {"project": project(working_dir), "network": network, "working_dir": "/"}
    config = f"{folder / 'monitoring'}:/etc/monitoring:ro"
    return {
        PROMETHEUS: Spec(
            name=PROMETHEUS,
            service="prometheus",
            command=[
                "/usr/bin/prometheus",
                "--config.file=/etc/monitoring/prometheus.yml",
                "--storage.tsdb.path=/prometheus",
                "--web.listen-address=0.0.0.0:9090",
            ],
            binds=[config, f"{project(working_dir).volume_name(DATA_VOLUME_KEY)}:/prometheus:rw", *usr],
            mem_limit="512m",
            ports={9090: 9090},
            content=hashlib.sha256(PROMETHEUS_CONFIG.encode()).hexdigest()[:16],
            **common,
        ),
        **{role: standin_spec(role, port, common, [config, *usr]) for role, port in STANDINS.items()},
    }


def healthy(client: docker.DockerClient) -> bool:
    """All three answer their health endpoints inside their containers."""
    probes = {
        PROMETHEUS: "http://127.0.0.1:9090/-/healthy",
        GRAFANA: "http://127.0.0.1:3000/api/health",
        LOKI: "http://127.0.0.1:3100/ready",
    }
    return all(
        exec_output(client, name, ["/usr/bin/curl", "-fsS", "--max-time", "2", url])[0] == 0
        for name, url in probes.items()
    )
