"""`prisma migrate deploy` for the lab's stand-in: apply every shipped migration not yet applied.

Each folder of /app/prisma/migrations holds migration.sql; an applied one is a row of Prisma's
own `_prisma_migrations` table (checksum = sha256 of the file, finished_at set), as Prisma keeps it.
"""

from __future__ import annotations

import hashlib
import os
import sys
import uuid
from pathlib import Path

import psycopg2

MIGRATIONS = Path("/app/prisma/migrations")
TABLE = """
CREATE TABLE IF NOT EXISTS _prisma_migrations (
    id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL, finished_at timestamptz,
    migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz,
    started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count integer NOT NULL DEFAULT 0
)"""


def main() -> None:
    db = psycopg2.connect(os.environ["DATABASE_URL"], connect_timeout=5)
    with db, db.cursor() as cursor:
        cursor.execute(TABLE)
        cursor.execute("SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL")
        applied = {row[0] for row in cursor.fetchall()}
    for folder in sorted(path for path in MIGRATIONS.iterdir() if path.is_dir()):
        if folder.name in applied:
            continue
        sql = (folder / "migration.sql").read_text()
        with db, db.cursor() as cursor:
            cursor.execute(sql)
            cursor.execute(
                "INSERT INTO _prisma_migrations "
                "(id, checksum, finished_at, migration_name, applied_steps_count) "
                "VALUES (%s, %s, now(), %s, 1)",
                (str(uuid.uuid4()), hashlib.sha256(sql.encode()).hexdigest(), folder.name),
            )
        print(f"applied {folder.name}")
    db.close()


if __name__ == "__main__":
    sys.exit(main())
