#!/bin/sh
# deploy/backup_db.sh (lab copy): a consistent copy of the live SQLite database, by cron.
# sqlite3's .backup takes the database's own lock, so a copy is never half a write.
set -eu
. /opt/magic-master/.env
DB="${MAGIC_MASTER_DB_PATH:-/opt/magic-master/backend/magic_master.db}"
DEST="${MAGIC_MASTER_BACKUP_DIR:-/opt/magic-master/backups}"
KEEP_DAYS=14
mkdir -p "$DEST"
target="$DEST/backup_$(date -u +%Y%m%d_%H%M).sqlite3"
sqlite3 "$DB" ".backup '$target.partial'"
mv -f "$target.partial" "$target"
find "$DEST" -name 'backup_*.sqlite3' -mtime +"$KEEP_DAYS" -delete
echo "$(date -u '+%F %T') backup written: $target"
