"""Tracker devices and the admin audit log (runbook: Admin audit, table admin_audit_log)."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_devices_audit"
down_revision = "0002_markers_chat"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tracker_devices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("last_seen", sa.DateTime, server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "admin_audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("details", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime, server_default=sa.func.now(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("admin_audit_log")
    op.drop_table("tracker_devices")
