#!/bin/bash
# AI Calendar Assistant: nightly backup (cron: 0 3 * * *), see runbook section 4.
#
# Archives the Radicale data, the bot data, .env and the compose file into
# /root/backups/calendar/<YYYYmmdd_HHMMSS>.tar.gz, encrypts it with gpg when
# BACKUP_GPG_PASSPHRASE is set (environment or .env), and keeps RETENTION_DAYS of history.
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ENV_FILE="$PROJECT_DIR/.env"
COMPOSE_FILE="$PROJECT_DIR/docker-compose.secure.yml"

env_value() {
    grep -E "^$1=" "$ENV_FILE" 2>/dev/null | tail -n 1 | cut -d= -f2- || true
}

BACKUP_ROOT="${BACKUP_DIR:-$(env_value BACKUP_DIR)}"
BACKUP_ROOT="${BACKUP_ROOT:-/root/backups/calendar}"
RETENTION_DAYS="${BACKUP_RETENTION_DAYS:-$(env_value BACKUP_RETENTION_DAYS)}"
RETENTION_DAYS="${RETENTION_DAYS:-30}"
PASSPHRASE="${BACKUP_GPG_PASSPHRASE:-$(env_value BACKUP_GPG_PASSPHRASE)}"

DATE=$(date +%Y%m%d_%H%M%S)
WORK="$BACKUP_ROOT/$DATE"
ARCHIVE="$BACKUP_ROOT/$DATE.tar.gz"

log() { echo "[$(date '+%Y-%m-%d %H:%M:%S')] $*"; }

cleanup() {
    rm -rf "$WORK"
    if [ -n "${GNUPGHOME:-}" ]; then
        gpgconf --kill gpg-agent 2>/dev/null || true
        rm -rf "$GNUPGHOME"
    fi
}
trap cleanup EXIT

# Stream a tarball out of a container. GNU tar exits 1 when a live file (the SQLite WAL)
# changed while it was read; that archive is still usable, anything else is a failure.
container_tar() {
    local out=$1 container=$2 path=$3 rc=0
    # shellcheck disable=SC2086 # $path: one or more paths
    docker exec "$container" tar czf - $path > "$out" || rc=$?
    if [ "$rc" -gt 1 ]; then
        log "ERROR: tar of $container:$path failed (exit $rc)"
        exit "$rc"
    fi
}

log "=== Backup started: $DATE ==="
mkdir -p "$WORK"
chmod 700 "$BACKUP_ROOT"

log "Radicale data (radicale-calendar:/data)"
container_tar "$WORK/radicale_data.tar.gz" radicale-calendar /data

log "Bot data (telegram-bot:/var/lib/calendar-bot, /app/data)"
container_tar "$WORK/bot_data.tar.gz" telegram-bot "/var/lib/calendar-bot /app/data"

log "Configs"
cp "$ENV_FILE" "$WORK/.env.backup"
cp "$COMPOSE_FILE" "$WORK/docker-compose.yml"

tar czf "$ARCHIVE" -C "$BACKUP_ROOT" "$DATE"
rm -rf "$WORK"

if [ -n "$PASSPHRASE" ]; then
    GNUPGHOME=$(mktemp -d)
    export GNUPGHOME
    chmod 700 "$GNUPGHOME"
    # The passphrase goes through a pipe from a builtin, never onto a command line.
    printf '%s' "$PASSPHRASE" | gpg --batch --yes --quiet --pinentry-mode loopback \
        --passphrase-fd 0 --symmetric --cipher-algo AES256 \
        --output "$ARCHIVE.gpg" "$ARCHIVE"
    rm -f "$ARCHIVE"
    ARCHIVE="$ARCHIVE.gpg"
fi
chmod 600 "$ARCHIVE"
log "Backup created: $ARCHIVE ($(stat -c %s "$ARCHIVE") bytes)"

log "Retention: removing archives older than $RETENTION_DAYS days"
find "$BACKUP_ROOT" -maxdepth 1 -name '*.tar.gz*' -mtime +"$RETENTION_DAYS" -print -delete \
    | sed 's/^/  removed: /'

log "=== Backup completed ==="
