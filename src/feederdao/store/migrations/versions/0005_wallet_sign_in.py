"""wallet sign-in: single-use login nonces, session keys that expire; the stored price grid

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_nonces",
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("nonce"),
    )
    op.create_index("ix_login_nonces_expires_at", "login_nonces", ["expires_at"])
    with op.batch_alter_table("api_keys") as t:
        t.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("clearing_results") as t:
        t.add_column(sa.Column("price_grid_gz", sa.LargeBinary(), nullable=True))
        t.add_column(sa.Column("dlmp_grid_gz", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clearing_results") as t:
        t.drop_column("dlmp_grid_gz")
        t.drop_column("price_grid_gz")
    with op.batch_alter_table("api_keys") as t:
        t.drop_column("expires_at")
    op.drop_index("ix_login_nonces_expires_at", table_name="login_nonces")
    op.drop_table("login_nonces")
