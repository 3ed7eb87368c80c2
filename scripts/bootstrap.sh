#!/usr/bin/env bash
# Install what runbook-suite and its lab need on a fresh Debian 12 machine, idempotently:
# Debian packages (docker engine, redis, radicale, sshd, cron, gpg, chromium for the
# report test) and a virtualenv with the project installed. Safe to run every time.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  docker.io          # dockerd for the lab's servers (started by python -m lab, not systemd)
  redis-server       # real Redis in the calendar-redis container (host binary, bind-mounted /usr)
  redis-tools        # the runner's redis-cli (redis kind: via runner / tunnel)
  postgresql-client-15  # the runner's pg_restore (pg_custom backups, restore test)
  postgresql-15      # a throwaway PostgreSQL 15 cluster in the project's own tests (initdb, pg_ctl)
  radicale           # real Radicale in radicale-calendar
  nginx              # Map v12: real nginx in front of web (lab/map_v12)
  gunicorn           # Map v12: web is a Flask app under gunicorn
  python3-flask      # Map v12: the stand-in web app
  python3-flask-limiter  # Map v12: /login's real limiter (moving window in Redis, in-memory fallback)
  alembic            # Map v12: `alembic upgrade head` / `alembic heads` in web (python3-alembic)
  python3-psycopg2   # Map v12: web and alembic talk to PostgreSQL
  python3-redis      # Map v12: /ready, the limiter, the worker's Pub/Sub subscription
  python3-prometheus-client  # Map v12: /metrics
  openssh-server     # each lab server's sshd, in its own network namespace
  openssh-client     # testinfra's ssh:// backend
  cron               # the crontab command (runbook 4.1: crontab -l | grep backup)
  gpg                # encrypted backups (runbook 4.3/4.4)
  curl               # runbook's curl, inside containers and on hosts
  iproute2           # ip netns / veth for the lab hosts
  procps             # ps/pgrep used by the lab
  tini               # init for lab containers
  sudo               # ?sudo=true specs, proven over a loopback sshd (selftests/test_persistent.py)
  debootstrap        # the Debian root of the lab's systemd hosts (lab/systemd_host.py)
  chromium           # headless rendering of report.html in the project's own tests
  prometheus-pushgateway  # a real Pushgateway: the run's metrics pushed and read back in selftests
  time               # GNU time: peak memory in bench/ (bench_hostile_*.py)
  prometheus         # a real Prometheus server: the rates kind's PromQL source, proven in selftests
  v2ray              # the VPN lab's xray (VLESS inbound) and the runner's probe client (v2ray 4.34 speaks VLESS)
)

missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "bootstrap: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The lab starts its own servers in its own namespaces: packages must not start the machine's
  # nginx, redis, PostgreSQL or Prometheus on its loopback (policy-rc.d 101: "not now").
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
# Reinstall only when pyproject.toml or the pinned versions changed since the last install.
stamp=.venv/.runbook-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  echo "bootstrap: installing runbook-suite and its dependencies into .venv (versions from constraints.txt)"
  .venv/bin/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import runbook, testinfra, pytest_html, httpx, docker, psycopg, pydantic" 
  touch "$stamp"
fi
