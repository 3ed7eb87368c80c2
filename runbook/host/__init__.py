"""Reaching hosts and the services on them: facts, no verdicts.

Transports and the `Target` seam (commands with deadlines), processes on the runner, and the
readers built on them: docker, systemd units, backup folders, SQLite and PostgreSQL, HTTP
endpoints, Prometheus, users files. Kinds (runbook.checks) judge what these read.
"""
