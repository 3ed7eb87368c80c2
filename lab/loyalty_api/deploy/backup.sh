#!/bin/bash
# Loyalty API backup (runbook: ./scripts/backup.sh .env.production docker-compose.production.yml),
# run in the postgres container: a plain pg_dump, gzip-ed, as backup_YYYYMMDD.sql.gz in /backups.
set -euo pipefail
target="/backups/backup_$(date -u +%Y%m%d).sql.gz"
pg_dump -U "$POSTGRES_USER" -d "$POSTGRES_DB" | gzip -c > "$target.partial"
mv -f "$target.partial" "$target"
echo "backup: $target ($(stat -c %s "$target") bytes)"
