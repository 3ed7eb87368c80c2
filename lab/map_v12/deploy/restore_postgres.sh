#!/bin/bash
# Map v12 restore (runbook: `... exec -T db bash -lc "/scripts/restore_postgres.sh /backups/pgdump_....dump"`).
set -euo pipefail
dump=${1:?usage: restore_postgres.sh /backups/pgdump_YYYYmmdd_HHMMSS.dump}
pg_restore --clean --if-exists --no-owner -U "$POSTGRES_USER" -d "$POSTGRES_DB" "$dump"
