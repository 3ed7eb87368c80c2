"""A release's new migration (the lab's `migration-pending` fault lays it, nobody upgrades)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_marker_status"
down_revision = "0003_devices_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("markers", sa.Column("status", sa.String(20), nullable=False, server_default="open"))


def downgrade() -> None:
    op.drop_column("markers", "status")
