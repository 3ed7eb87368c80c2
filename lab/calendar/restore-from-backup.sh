#!/bin/bash
# AI Calendar Assistant: restore from a backup archive (runbook 4.3, the steps "вручную" in one go).
#   ./restore-from-backup.sh /root/backups/calendar/<YYYYmmdd_HHMMSS>.tar.gz[.gpg]
# REPLACES all current data (Radicale, bot data, .env). A .gpg archive needs
# BACKUP_GPG_PASSPHRASE (environment or .env).
set -euo pipefail

PROJECT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ARCHIVE=${1:?usage: $0 BACKUP_FILE}
COMPOSE=(docker-compose -f "$PROJECT_DIR/docker-compose.secure.yml")
PASSPHRASE="${BACKUP_GPG_PASSPHRASE:-$(grep -E '^BACKUP_GPG_PASSPHRASE=' "$PROJECT_DIR/.env" | cut -d= -f2- || true)}"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
if [[ "$ARCHIVE" == *.gpg ]]; then
    printf '%s' "$PASSPHRASE" | gpg --batch --quiet --pinentry-mode loopback --passphrase-fd 0 \
        --decrypt "$ARCHIVE" > backup.tar.gz
else
    cp "$ARCHIVE" backup.tar.gz
fi
tar xzf backup.tar.gz
BACKUP_DIR=$(ls -d */ | head -1)

"${COMPOSE[@]}" down
docker volume rm ai-calendar-assistant_radicale-data 2>/dev/null || true
docker run --rm -v ai-calendar-assistant_radicale-data:/data -v "$WORK/$BACKUP_DIR":/backup \
    alpine sh -c "cd / && tar xzf /backup/radicale_data.tar.gz"
docker volume rm ai-calendar-assistant_bot-data 2>/dev/null || true
docker run --rm -v ai-calendar-assistant_bot-data:/var/lib/calendar-bot -v "$WORK/$BACKUP_DIR":/backup \
    alpine sh -c "cd / && tar xzf /backup/bot_data.tar.gz"
cp "$WORK/$BACKUP_DIR/.env.backup" "$PROJECT_DIR/.env"
"${COMPOSE[@]}" up -d
docker ps
curl -s http://localhost:8000/health
