"""initial schema: the package index and its history

Base tables, their *_version tables (Continuum, validity strategy), the
package_maintainer association and its version table, transaction (with
issued_at indexed for retention) and transaction_changes.

Revision ID: cfb1554cb576
Revises: 
Create Date: 2026-11-21 23:57:21.731062

"""
from collections.abc import Sequence
from typing import Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = 'cfb1554cb576'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('license',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('spdx_id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('osi_approved', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_license')),
    sa.UniqueConstraint('spdx_id', name=op.f('uq_license_spdx_id'))
    )
    op.create_table('license_version',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('spdx_id', sa.String(length=64), autoincrement=False, nullable=True),
    sa.Column('name', sa.String(length=200), autoincrement=False, nullable=True),
    sa.Column('osi_approved', sa.Boolean(), autoincrement=False, nullable=True),
    sa.Column('transaction_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('end_transaction_id', sa.BigInteger(), nullable=True),
    sa.Column('operation_type', sa.SmallInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', 'transaction_id', name=op.f('pk_license_version'))
    )
    op.create_index(op.f('ix_license_version_end_transaction_id'), 'license_version', ['end_transaction_id'], unique=False)
    op.create_index(op.f('ix_license_version_operation_type'), 'license_version', ['operation_type'], unique=False)
    op.create_index('ix_license_version_pk_transaction_id', 'license_version', ['id', sa.literal_column('transaction_id DESC')], unique=False)
    op.create_index('ix_license_version_pk_validity', 'license_version', ['id', 'transaction_id', 'end_transaction_id'], unique=False)
    op.create_index(op.f('ix_license_version_transaction_id'), 'license_version', ['transaction_id'], unique=False)

    op.create_table('maintainer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('email', sa.String(length=200), nullable=False),
    sa.Column('full_name', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintainer')),
    sa.UniqueConstraint('username', name=op.f('uq_maintainer_username'))
    )
    op.create_table('maintainer_version',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('username', sa.String(length=80), autoincrement=False, nullable=True),
    sa.Column('email', sa.String(length=200), autoincrement=False, nullable=True),
    sa.Column('full_name', sa.String(length=200), autoincrement=False, nullable=True),
    sa.Column('transaction_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('end_transaction_id', sa.BigInteger(), nullable=True),
    sa.Column('operation_type', sa.SmallInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', 'transaction_id', name=op.f('pk_maintainer_version'))
    )
    op.create_index(op.f('ix_maintainer_version_end_transaction_id'), 'maintainer_version', ['end_transaction_id'], unique=False)
    op.create_index(op.f('ix_maintainer_version_operation_type'), 'maintainer_version', ['operation_type'], unique=False)
    op.create_index('ix_maintainer_version_pk_transaction_id', 'maintainer_version', ['id', sa.literal_column('transaction_id DESC')], unique=False)
    op.create_index('ix_maintainer_version_pk_validity', 'maintainer_version', ['id', 'transaction_id', 'end_transaction_id'], unique=False)
    op.create_index(op.f('ix_maintainer_version_transaction_id'), 'maintainer_version', ['transaction_id'], unique=False)

    op.create_table('package_maintainer_version',
    sa.Column('package_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('maintainer_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('transaction_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('end_transaction_id', sa.BigInteger(), nullable=True),
    sa.Column('operation_type', sa.SmallInteger(), nullable=False),
    sa.PrimaryKeyConstraint('package_id', 'maintainer_id', 'transaction_id', name=op.f('pk_package_maintainer_version'))
    )
    op.create_index(op.f('ix_package_maintainer_version_end_transaction_id'), 'package_maintainer_version', ['end_transaction_id'], unique=False)
    op.create_index(op.f('ix_package_maintainer_version_operation_type'), 'package_maintainer_version', ['operation_type'], unique=False)
    op.create_index('ix_package_maintainer_version_pk_transaction_id', 'package_maintainer_version', ['package_id', 'maintainer_id', sa.literal_column('transaction_id DESC')], unique=False)
    op.create_index('ix_package_maintainer_version_pk_validity', 'package_maintainer_version', ['package_id', 'maintainer_id', 'transaction_id', 'end_transaction_id'], unique=False)
    op.create_index(op.f('ix_package_maintainer_version_transaction_id'), 'package_maintainer_version', ['transaction_id'], unique=False)

    op.create_table('package_version',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('name', sa.String(length=100), autoincrement=False, nullable=True),
    sa.Column('summary', sa.String(length=500), autoincrement=False, nullable=True),
    sa.Column('homepage', sa.String(length=500), autoincrement=False, nullable=True),
    sa.Column('license_id', sa.Integer(), autoincrement=False, nullable=True),
    sa.Column('created_at', sa.DateTime(), autoincrement=False, nullable=True),
    sa.Column('transaction_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('end_transaction_id', sa.BigInteger(), nullable=True),
    sa.Column('operation_type', sa.SmallInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', 'transaction_id', name=op.f('pk_package_version'))
    )
    op.create_index(op.f('ix_package_version_end_transaction_id'), 'package_version', ['end_transaction_id'], unique=False)
    op.create_index(op.f('ix_package_version_license_id'), 'package_version', ['license_id'], unique=False)
    op.create_index(op.f('ix_package_version_operation_type'), 'package_version', ['operation_type'], unique=False)
    op.create_index('ix_package_version_pk_transaction_id', 'package_version', ['id', sa.literal_column('transaction_id DESC')], unique=False)
    op.create_index('ix_package_version_pk_validity', 'package_version', ['id', 'transaction_id', 'end_transaction_id'], unique=False)
    op.create_index(op.f('ix_package_version_transaction_id'), 'package_version', ['transaction_id'], unique=False)

    op.create_table('release_version',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('package_id', sa.Integer(), autoincrement=False, nullable=True),
    sa.Column('version', sa.String(length=64), autoincrement=False, nullable=True),
    sa.Column('requires_python', sa.String(length=64), autoincrement=False, nullable=True),
    sa.Column('yanked', sa.Boolean(), autoincrement=False, nullable=True),
    sa.Column('released_at', sa.DateTime(), autoincrement=False, nullable=True),
    sa.Column('transaction_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('end_transaction_id', sa.BigInteger(), nullable=True),
    sa.Column('operation_type', sa.SmallInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', 'transaction_id', name=op.f('pk_release_version'))
    )
    op.create_index(op.f('ix_release_version_end_transaction_id'), 'release_version', ['end_transaction_id'], unique=False)
    op.create_index(op.f('ix_release_version_operation_type'), 'release_version', ['operation_type'], unique=False)
    op.create_index(op.f('ix_release_version_package_id'), 'release_version', ['package_id'], unique=False)
    op.create_index('ix_release_version_pk_transaction_id', 'release_version', ['id', sa.literal_column('transaction_id DESC')], unique=False)
    op.create_index('ix_release_version_pk_validity', 'release_version', ['id', 'transaction_id', 'end_transaction_id'], unique=False)
    op.create_index(op.f('ix_release_version_transaction_id'), 'release_version', ['transaction_id'], unique=False)

    op.create_table('transaction_changes',
    sa.Column('transaction_id', sa.BigInteger(), nullable=False),
    sa.Column('entity_name', sa.Unicode(length=255), nullable=False),
    sa.PrimaryKeyConstraint('transaction_id', 'entity_name', name=op.f('pk_transaction_changes'))
    )
    op.create_table('package',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('summary', sa.String(length=500), nullable=True),
    sa.Column('homepage', sa.String(length=500), nullable=True),
    sa.Column('license_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['license_id'], ['license.id'], name=op.f('fk_package_license_id_license')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_package')),
    sa.UniqueConstraint('name', name=op.f('uq_package_name'))
    )
    op.create_index(op.f('ix_package_license_id'), 'package', ['license_id'], unique=False)

    op.create_table('transaction',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('remote_addr', sa.String(length=50), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('issued_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['maintainer.id'], name=op.f('fk_transaction_user_id_maintainer')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transaction'))
    )
    op.create_index('ix_transaction_issued_at', 'transaction', ['issued_at'], unique=False)
    op.create_index(op.f('ix_transaction_user_id'), 'transaction', ['user_id'], unique=False)

    op.create_table('package_maintainer',
    sa.Column('package_id', sa.Integer(), nullable=False),
    sa.Column('maintainer_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['maintainer_id'], ['maintainer.id'], name=op.f('fk_package_maintainer_maintainer_id_maintainer'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['package_id'], ['package.id'], name=op.f('fk_package_maintainer_package_id_package'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('package_id', 'maintainer_id', name=op.f('pk_package_maintainer'))
    )
    op.create_table('release',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('package_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.String(length=64), nullable=False),
    sa.Column('requires_python', sa.String(length=64), nullable=True),
    sa.Column('yanked', sa.Boolean(), nullable=False),
    sa.Column('released_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['package_id'], ['package.id'], name=op.f('fk_release_package_id_package'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_release')),
    sa.UniqueConstraint('package_id', 'version', name=op.f('uq_release_package_id_version'))
    )
    op.create_index(op.f('ix_release_package_id'), 'release', ['package_id'], unique=False)



def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f('ix_release_package_id'), table_name='release')

    op.drop_table('release')
    op.drop_table('package_maintainer')
    op.drop_index(op.f('ix_transaction_user_id'), table_name='transaction')
    op.drop_index('ix_transaction_issued_at', table_name='transaction')

    op.drop_table('transaction')
    op.drop_index(op.f('ix_package_license_id'), table_name='package')

    op.drop_table('package')
    op.drop_table('transaction_changes')
    op.drop_index(op.f('ix_release_version_transaction_id'), table_name='release_version')
    op.drop_index('ix_release_version_pk_validity', table_name='release_version')
    op.drop_index('ix_release_version_pk_transaction_id', table_name='release_version')
    op.drop_index(op.f('ix_release_version_package_id'), table_name='release_version')
    op.drop_index(op.f('ix_release_version_operation_type'), table_name='release_version')
    op.drop_index(op.f('ix_release_version_end_transaction_id'), table_name='release_version')

    op.drop_table('release_version')
    op.drop_index(op.f('ix_package_version_transaction_id'), table_name='package_version')
    op.drop_index('ix_package_version_pk_validity', table_name='package_version')
    op.drop_index('ix_package_version_pk_transaction_id', table_name='package_version')
    op.drop_index(op.f('ix_package_version_operation_type'), table_name='package_version')
    op.drop_index(op.f('ix_package_version_license_id'), table_name='package_version')
    op.drop_index(op.f('ix_package_version_end_transaction_id'), table_name='package_version')

    op.drop_table('package_version')
    op.drop_index(op.f('ix_package_maintainer_version_transaction_id'), table_name='package_maintainer_version')
    op.drop_index('ix_package_maintainer_version_pk_validity', table_name='package_maintainer_version')
    op.drop_index('ix_package_maintainer_version_pk_transaction_id', table_name='package_maintainer_version')
    op.drop_index(op.f('ix_package_maintainer_version_operation_type'), table_name='package_maintainer_version')
    op.drop_index(op.f('ix_package_maintainer_version_end_transaction_id'), table_name='package_maintainer_version')

    op.drop_table('package_maintainer_version')
    op.drop_index(op.f('ix_maintainer_version_transaction_id'), table_name='maintainer_version')
    op.drop_index('ix_maintainer_version_pk_validity', table_name='maintainer_version')
    op.drop_index('ix_maintainer_version_pk_transaction_id', table_name='maintainer_version')
    op.drop_index(op.f('ix_maintainer_version_operation_type'), table_name='maintainer_version')
    op.drop_index(op.f('ix_maintainer_version_end_transaction_id'), table_name='maintainer_version')

    op.drop_table('maintainer_version')
    op.drop_table('maintainer')
    op.drop_index(op.f('ix_license_version_transaction_id'), table_name='license_version')
    op.drop_index('ix_license_version_pk_validity', table_name='license_version')
    op.drop_index('ix_license_version_pk_transaction_id', table_name='license_version')
    op.drop_index(op.f('ix_license_version_operation_type'), table_name='license_version')
    op.drop_index(op.f('ix_license_version_end_transaction_id'), table_name='license_version')

    op.drop_table('license_version')
    op.drop_table('license')
