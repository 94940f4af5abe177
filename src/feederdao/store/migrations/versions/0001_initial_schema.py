"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "applied_parameters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("alarms", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "command_audit",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("cycle", sa.String(length=64), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "participants",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("requested_bus", sa.Integer(), nullable=False),
        sa.Column("requested_devices", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("bus", sa.Integer(), nullable=True),
        sa.Column("devices", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("address"),
    )
    op.create_table(
        "state",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("participant_id", sa.String(length=64), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_table(
        "market_intervals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("periods", sa.Integer(), nullable=False),
        sa.Column("period_minutes", sa.Integer(), nullable=False),
        sa.Column("gate_closure", sa.DateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parameters_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["parameters_id"],
            ["applied_parameters.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("start"),
    )
    op.create_table(
        "bids",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("interval_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("bus", sa.Integer(), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("blocks", sa.JSON(), nullable=False),
        sa.Column("auth", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.String(length=140), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("accepted_mw", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["interval_id"],
            ["market_intervals.id"],
        ),
        sa.ForeignKeyConstraint(
            ["participant_id"],
            ["participants.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("participant_id", "idempotency_key", name="uq_bid_idempotency"),
    )
    with op.batch_alter_table("bids", schema=None) as batch_op:
        batch_op.create_index("ix_bids_interval", ["interval_id", "participant_id"], unique=False)

    op.create_table(
        "clearing_results",
        sa.Column("interval_id", sa.Integer(), nullable=False),
        sa.Column("result_json", sa.Text(), nullable=False),
        sa.Column("result_hash", sa.String(length=66), nullable=False),
        sa.Column("welfare_eur", sa.Float(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ac_feasible", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("anchor_tx", sa.String(length=66), nullable=True),
        sa.Column("anchor_block", sa.BigInteger(), nullable=True),
        sa.Column("anchor_chain_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["interval_id"],
            ["market_intervals.id"],
        ),
        sa.PrimaryKeyConstraint("interval_id"),
    )
    op.create_table(
        "dispatch",
        sa.Column("interval_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("bus", sa.Integer(), nullable=False),
        sa.Column("p_mw", sa.Float(), nullable=False),
        sa.Column("q_mvar", sa.Float(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["interval_id"],
            ["market_intervals.id"],
        ),
        sa.PrimaryKeyConstraint("interval_id", "period", "device_id"),
    )
    op.create_table(
        "operator_steps",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("interval_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["interval_id"],
            ["market_intervals.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("operator_steps", schema=None) as batch_op:
        batch_op.create_index("ix_steps_interval", ["interval_id", "step"], unique=False)

    op.create_table(
        "prices",
        sa.Column("interval_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("bus", sa.Integer(), nullable=False),
        sa.Column("dlmp", sa.Float(), nullable=False),
        sa.Column("energy", sa.Float(), nullable=False),
        sa.Column("loss", sa.Float(), nullable=False),
        sa.Column("congestion", sa.Float(), nullable=False),
        sa.Column("voltage", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["interval_id"],
            ["market_intervals.id"],
        ),
        sa.PrimaryKeyConstraint("interval_id", "period", "bus"),
    )
    op.create_table(
        "settlements",
        sa.Column("interval_id", sa.Integer(), nullable=False),
        sa.Column("participant_id", sa.String(length=64), nullable=False),
        sa.Column("bus", sa.Integer(), nullable=False),
        sa.Column("bought_mwh", sa.Float(), nullable=False),
        sa.Column("sold_mwh", sa.Float(), nullable=False),
        sa.Column("energy_payment_eur", sa.Float(), nullable=False),
        sa.Column("fee_eur", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["interval_id"],
            ["market_intervals.id"],
        ),
        sa.PrimaryKeyConstraint("interval_id", "participant_id"),
    )


def downgrade() -> None:

    op.drop_table("settlements")
    op.drop_table("prices")
    with op.batch_alter_table("operator_steps", schema=None) as batch_op:
        batch_op.drop_index("ix_steps_interval")

    op.drop_table("operator_steps")
    op.drop_table("dispatch")
    op.drop_table("clearing_results")
    with op.batch_alter_table("bids", schema=None) as batch_op:
        batch_op.drop_index("ix_bids_interval")

    op.drop_table("bids")
    op.drop_table("market_intervals")
    op.drop_table("api_keys")
    op.drop_table("state")
    op.drop_table("participants")
    op.drop_table("command_audit")
    op.drop_table("applied_parameters")
