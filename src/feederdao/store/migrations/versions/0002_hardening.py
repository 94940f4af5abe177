"""the book at gate closure, anchor blocks, step reason codes, key revocation reasons

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("market_intervals") as t:
        t.add_column(sa.Column("gate_closed_at", sa.DateTime(timezone=True), nullable=True))
        t.add_column(sa.Column("book_bids", sa.Integer(), nullable=True))
        t.add_column(sa.Column("book_hash", sa.String(length=64), nullable=True))
    with op.batch_alter_table("clearing_results") as t:
        t.add_column(sa.Column("anchor_block_hash", sa.String(length=66), nullable=True))
        t.add_column(sa.Column("anchor_registry", sa.String(length=42), nullable=True))
    with op.batch_alter_table("operator_steps") as t:
        t.add_column(sa.Column("reason", sa.String(length=32), nullable=False, server_default=""))
    with op.batch_alter_table("api_keys") as t:
        t.add_column(sa.Column("revoked_why", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as t:
        t.drop_column("revoked_why")
    with op.batch_alter_table("operator_steps") as t:
        t.drop_column("reason")
    with op.batch_alter_table("clearing_results") as t:
        t.drop_column("anchor_registry")
        t.drop_column("anchor_block_hash")
    with op.batch_alter_table("market_intervals") as t:
        t.drop_column("book_hash")
        t.drop_column("book_bids")
        t.drop_column("gate_closed_at")
