#!/bin/sh
# A compose project's PostgreSQL 15 (Map v12's `db`, Loyalty API's `postgres`): the machine's,
# bind-mounted /usr, initialised on first start
# the way the postgres image's entrypoint does it: POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB,
# local socket trusted, network clients with scram-sha-256.
set -eu
BIN=/usr/lib/postgresql/15/bin
PGDATA=/var/lib/postgresql/data
AS_POSTGRES="setpriv --reuid=postgres --regid=postgres --init-groups"
mkdir -p "$PGDATA"
chown postgres:postgres "$PGDATA"
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  umask 077
  printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pwfile
  chown postgres /tmp/pwfile
  $AS_POSTGRES "$BIN/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=/tmp/pwfile \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
  rm -f /tmp/pwfile
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\";" \
    | $AS_POSTGRES "$BIN/postgres" --single -D "$PGDATA" -j postgres >/dev/null
  echo "db: initialised $PGDATA (database $POSTGRES_DB)"
fi
exec $AS_POSTGRES "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp
