#!/bin/bash
# Map v12 backup (runbook: `docker compose -f docker-compose.prod.full.yml exec -T db bash -lc
# "/scripts/backup_postgres.sh"`): a pg_dump custom-format archive in /backups (./backups).
set -euo pipefail
target="/backups/pgdump_$(date +%Y%m%d_%H%M%S).dump"
pg_dump -Fc -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f "$target.partial"
mv "$target.partial" "$target"
echo "backup: $target ($(stat -c %s "$target") bytes)"
