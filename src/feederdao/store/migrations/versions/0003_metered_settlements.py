"""metered settlements: cumulative positions, the root and its fate on chain

Revision ID: 0003
Revises: 0002
Create Date: 2027-01-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metered_settlements",
        sa.Column("interval_id", sa.Integer(), nullable=False),
        sa.Column("root", sa.String(length=66), nullable=False),
        sa.Column("positions", sa.JSON(), nullable=False),
        sa.Column("rows", sa.JSON(), nullable=False),
        sa.Column("substituted", sa.JSON(), nullable=False),
        sa.Column("operator_units", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("posted_tx", sa.String(length=66), nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finalised_tx", sa.String(length=66), nullable=True),
        sa.Column("finalised_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["interval_id"], ["market_intervals.id"]),
        sa.PrimaryKeyConstraint("interval_id"),
    )


def downgrade() -> None:
    op.drop_table("metered_settlements")
