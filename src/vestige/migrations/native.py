"""Native versioning (PostgreSQL triggers) kept in step with the schema.

With Continuum's ``native_versioning=True`` option, version rows are written by a
PL/pgSQL trigger on every versioned table, and ``transaction`` gets a trigger that
copies each new id into a temporary table the audit functions read. Continuum attaches
that DDL as ``after_create`` listeners, so tables created by Alembic get none, and a
trigger created once goes stale when columns change: it keeps copying the old columns.

This module builds the same SQL Continuum would (with its own classes), compares it with
what the database holds, and gives revisions a few calls that are frozen at the columns
of their time::

    from vestige.migrations import native

    native.install_transaction_trigger()
    native.sync_audit_trigger("package", ["id", "name"], primary_key=["id"])
    native.drop_audit_trigger("package")
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy_continuum.dialects.postgresql import (
    CreateTriggerFunctionSQL,
    CreateTriggerSQL,
    uses_property_mod_tracking,
)
from sqlalchemy_continuum.transaction import procedure_sql as transaction_procedure_sql

from vestige.catalogue import versioned_models

__all__ = [
    "AuditTrigger",
    "audit_function_name",
    "audit_trigger_name",
    "database_audit_trigger",
    "drop_audit_trigger",
    "expected_audit_triggers",
    "install_transaction_trigger",
    "native_models",
    "sync_audit_trigger",
    "transaction_trigger_present",
    "uninstall_transaction_trigger",
]

TRANSACTION_FUNCTION = "transaction_temp_table_generator"
TRANSACTION_TRIGGER = "transaction_trigger"
_BODY = re.compile(r"\$\$(.*)\$\$", re.DOTALL)


def audit_function_name(table: str) -> str:
    """The audit function Continuum names for ``table``."""
    return f"{table}_audit"


def audit_trigger_name(table: str) -> str:
    """The trigger Continuum names for ``table``."""
    return f"{table}_trigger"


@dataclass(frozen=True)
class AuditTrigger:
    """What an audit trigger copies: enough to rebuild it, and to compare it.

    Attributes:
        table: The versioned (base) table.
        columns: The base table's columns, in table order.
        primary_key: Its primary key columns.
        excluded: Columns the version table does not hold (``exclude``).
        validity: Whether the trigger closes the previous version (validity strategy).
        mod_tracking: Whether ``<column>_mod`` flags are written (PropertyModTracker).
        version_table: The version table's name.
    """

    table: str
    columns: tuple[str, ...]
    primary_key: tuple[str, ...]
    excluded: tuple[str, ...] = ()
    validity: bool = True
    mod_tracking: bool = False
    version_table: str | None = None

    def _construct(self) -> dict[str, Any]:
        metadata = sa.MetaData()
        table = sa.Table(
            self.table,
            metadata,
            *(
                sa.Column(name, sa.Integer, primary_key=name in self.primary_key)
                for name in self.columns
            ),
        )
        version_format = (self.version_table or f"{self.table}_version").replace(
            self.table, "%s", 1
        )
        return {
            "table": table,
            "update_validity_for_tables": [table] if self.validity else [],
            "transaction_column_name": "transaction_id",
            "operation_type_column_name": "operation_type",
            "end_transaction_column_name": "end_transaction_id",
            "version_table_name_format": version_format,
            "excluded_columns": list(self.excluded),
            "use_property_mod_tracking": self.mod_tracking,
        }

    def function_sql(self) -> str:
        """``CREATE OR REPLACE FUNCTION <table>_audit() ...``, as Continuum writes it."""
        return str(CreateTriggerFunctionSQL(**self._construct()))

    def trigger_sql(self) -> str:
        """``CREATE TRIGGER <table>_trigger ...``, as Continuum writes it."""
        return str(CreateTriggerSQL(**self._construct()))

    def body(self) -> str:
        """The function body (what PostgreSQL stores in ``pg_proc.prosrc``), normalised."""
        return normalise_body(self.function_sql())


def normalise_body(sql: str) -> str:
    """The text between ``$$`` markers (or all of it), whitespace collapsed."""
    match = _BODY.search(sql)
    return " ".join((match.group(1) if match else sql).split())


def native_models(metadata: sa.MetaData, manager: Any) -> Iterator[tuple[type[Any], sa.Table]]:
    """Versioned classes of ``metadata`` that use native versioning, with their tables."""
    seen: set[str] = set()
    for entry in versioned_models(manager).values():
        # a single-table subclass shares its base's table, and the base's trigger
        table = entry.table
        if entry.single or table.metadata is not metadata or table.name in seen:
            continue
        if manager.option(entry.model, "native_versioning"):
            seen.add(table.name)
            yield entry.model, table


def expected_audit_triggers(metadata: sa.MetaData, manager: Any) -> dict[str, AuditTrigger]:
    """The audit trigger of every native-versioned table of ``metadata``, by table name."""
    found: dict[str, AuditTrigger] = {}
    for cls, table in native_models(metadata, manager):
        mapper: orm.Mapper[Any] = sa.inspect(cls)
        excluded = tuple(
            column.name for column in mapper.columns if manager.is_excluded_column(cls, column)
        )
        found[table.name] = AuditTrigger(
            table=table.name,
            columns=tuple(column.name for column in table.columns),
            primary_key=tuple(column.name for column in table.primary_key.columns),
            excluded=tuple(name for name in excluded if name in table.c),
            validity=manager.option(cls, "strategy") == "validity",
            mod_tracking=uses_property_mod_tracking(manager),
            version_table=manager.option(cls, "table_name") % table.name,
        )
    return found


def database_audit_trigger(connection: sa.Connection, table: str) -> AuditTrigger | None:
    """Rebuild, from the database's columns, the trigger that matches them (or ``None``).

    The base table's columns and the version table's say what a trigger written for this
    schema copies; used to restore the previous trigger on downgrade.
    """
    inspector = sa.inspect(connection)
    version_table = f"{table}_version"
    if not inspector.has_table(table) or not inspector.has_table(version_table):
        return None
    columns = [column["name"] for column in inspector.get_columns(table)]
    version_columns = {column["name"] for column in inspector.get_columns(version_table)}
    primary_key = inspector.get_pk_constraint(table)["constrained_columns"]
    return AuditTrigger(
        table=table,
        columns=tuple(columns),
        primary_key=tuple(primary_key),
        excluded=tuple(name for name in columns if name not in version_columns),
        validity="end_transaction_id" in version_columns,
        mod_tracking=any(name.endswith("_mod") for name in version_columns),
        version_table=version_table,
    )


def database_function_body(connection: sa.Connection, function: str) -> str | None:
    """The normalised body of a function in the current schema, or ``None``."""
    source = connection.execute(
        sa.text(
            "SELECT p.prosrc FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE p.proname = :name AND n.nspname = current_schema()"
        ),
        {"name": function},
    ).scalar()
    return None if source is None else normalise_body(str(source))


def trigger_present(connection: sa.Connection, table: str, trigger: str) -> bool:
    """Whether ``trigger`` is attached to ``table`` in the current schema."""
    return bool(
        connection.execute(
            sa.text(
                "SELECT 1 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE t.tgname = :trigger AND c.relname = :table "
                "AND n.nspname = current_schema()"
            ),
            {"trigger": trigger, "table": table},
        ).scalar()
    )


def transaction_trigger_present(connection: sa.Connection, table: str = "transaction") -> bool:
    """Whether ``transaction`` has its trigger and function and hstore is installed."""
    hstore = connection.execute(
        sa.text("SELECT 1 FROM pg_extension WHERE extname = 'hstore'")
    ).scalar()
    return bool(
        hstore
        and trigger_present(connection, table, TRANSACTION_TRIGGER)
        and database_function_body(connection, TRANSACTION_FUNCTION) is not None
    )


def transaction_function_sql() -> str:
    """Continuum's ``transaction_temp_table_generator()`` function."""
    from sqlalchemy_continuum.dialects.postgresql import CreateTemporaryTransactionTableSQL

    return str(
        transaction_procedure_sql.format(
            temporary_transaction_sql=CreateTemporaryTransactionTableSQL()
        )
    )


def _execute(statements: Sequence[str]) -> None:
    from alembic import op

    for statement in statements:
        op.execute(statement)


def install_transaction_trigger(table: str = "transaction") -> None:
    """In a revision: hstore, and the trigger that publishes each new transaction id."""
    _execute(
        [
            "CREATE EXTENSION IF NOT EXISTS hstore",
            transaction_function_sql(),
            f'DROP TRIGGER IF EXISTS {TRANSACTION_TRIGGER} ON "{table}"',
            f'CREATE TRIGGER {TRANSACTION_TRIGGER} AFTER INSERT ON "{table}" '
            f"FOR EACH ROW EXECUTE PROCEDURE {TRANSACTION_FUNCTION}()",
        ]
    )


def uninstall_transaction_trigger(table: str = "transaction") -> None:
    """In a revision's downgrade: remove what :func:`install_transaction_trigger` made.

    hstore stays: other code may use it, and an extension is cheap to keep.
    """
    _execute(
        [
            f'DROP TRIGGER IF EXISTS {TRANSACTION_TRIGGER} ON "{table}"',
            f"DROP FUNCTION IF EXISTS {TRANSACTION_FUNCTION}()",
        ]
    )


def sync_audit_trigger(
    table: str,
    columns: Sequence[str],
    primary_key: Sequence[str],
    *,
    excluded: Sequence[str] = (),
    validity: bool = True,
    mod_tracking: bool = False,
    version_table: str | None = None,
) -> None:
    """In a revision: (re)create ``table``'s audit function and trigger for these columns.

    The arguments are frozen in the revision, so replaying it later builds the trigger of
    its time, not of today's models.
    """
    trigger = AuditTrigger(
        table=table,
        columns=tuple(columns),
        primary_key=tuple(primary_key),
        excluded=tuple(excluded),
        validity=validity,
        mod_tracking=mod_tracking,
        version_table=version_table,
    )
    _execute(
        [
            f'DROP TRIGGER IF EXISTS {audit_trigger_name(table)} ON "{table}"',
            trigger.function_sql(),
            trigger.trigger_sql(),
        ]
    )


def drop_audit_trigger(table: str) -> None:
    """In a revision: remove ``table``'s audit trigger and function (either may be gone)."""
    _execute(
        [
            f'DROP TRIGGER IF EXISTS {audit_trigger_name(table)} ON "{table}"',
            f"DROP FUNCTION IF EXISTS {audit_function_name(table)}()",
        ]
    )
