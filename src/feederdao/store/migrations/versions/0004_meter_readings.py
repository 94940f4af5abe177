"""meters, their devices, accepted readings and conflicting readings

Revision ID: 0004
Revises: 0003
Create Date: 2027-01-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _reading_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("imported_wh", sa.BigInteger(), nullable=False),
        sa.Column("exported_wh", sa.BigInteger(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.String(length=200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "meters",
        sa.Column("meter", sa.String(length=42), nullable=False),
        sa.Column("participant_id", sa.String(length=64), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["participant_id"], ["participants.id"]),
        sa.PrimaryKeyConstraint("meter"),
    )
    op.create_table(
        "meter_devices",
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("meter", sa.String(length=42), nullable=False),
        sa.Column("max_import_w", sa.Float(), nullable=False),
        sa.Column("max_export_w", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["meter"], ["meters.meter"]),
        sa.PrimaryKeyConstraint("device_id"),
    )
    op.create_table(
        "meter_readings",
        sa.Column("meter", sa.String(length=42), nullable=False),
        sa.Column("interval_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(length=200), nullable=False),
        *_reading_columns(),
        sa.ForeignKeyConstraint(["interval_id"], ["market_intervals.id"]),
        sa.PrimaryKeyConstraint("meter", "interval_id", "period", "device"),
    )
    op.create_table(
        "reading_conflicts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("meter", sa.String(length=42), nullable=False),
        sa.Column("interval_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("device", sa.String(length=200), nullable=False),
        *_reading_columns(),
        sa.ForeignKeyConstraint(["interval_id"], ["market_intervals.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("reading_conflicts") as t:
        t.create_index("ix_reading_conflicts_interval", ["interval_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reading_conflicts") as t:
        t.drop_index("ix_reading_conflicts_interval")
    op.drop_table("reading_conflicts")
    op.drop_table("meter_readings")
    op.drop_table("meter_devices")
    op.drop_table("meters")
