"""transaction context: the change context beside user_id and remote_addr

transaction.context (JSON; JSONB on PostgreSQL) holds what vestige.context(...)
records beyond the user and the client address: reason, request_id and any
extra values (see docs/versioning.md, Change context).

Revision ID: e4767685b210
Revises: cfb1554cb576
Create Date: 2026-12-02 07:42:57.028991

"""
from collections.abc import Sequence
from typing import Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = 'e4767685b210'
down_revision: Union[str, Sequence[str], None] = 'cfb1554cb576'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    json_type = sa.JSON(none_as_null=True).with_variant(
        postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'
    )
    with op.batch_alter_table('transaction', schema=None) as batch_op:
        batch_op.add_column(sa.Column('context', json_type, nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('transaction', schema=None) as batch_op:
        batch_op.drop_column('context')
