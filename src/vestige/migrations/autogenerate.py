"""Version-aware autogenerate: what Vestige changes in a revision Alembic proposes.

Run from :func:`vestige.migrations.process_revision_directives` once the guard passed:

- a column dropped from a versioned model keeps its ``*_version`` column (history stays,
  the revision says so in a comment), unless ``on_drop_column = "drop"``;
- a drop and an add of the same type on one versioned table is pointed out as a likely
  rename, with the call that keeps history (:func:`vestige.migrations.rename_column`);
- with native versioning on PostgreSQL, every audit trigger that does not match the
  models is (re)built, the ``transaction`` trigger installed, and the downgrade restores
  what was there before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

import sqlalchemy as sa
from alembic.autogenerate import renderers
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops

from vestige.config import ON_DROP_COLUMN, OnDropColumn
from vestige.errors import ConfigError
from vestige.migrations import native
from vestige.migrations.tables import version_tables_by_base
from vestige.versioning.setup import versioning_manager

KEPT_NOTE = (
    "vestige: {version_table}.{column} is kept: the history of {table}.{column} stays "
    '(nullable); set [tool.vestige.migrations] on_drop_column = "drop" to drop it too'
)
DROPPED_NOTE = (
    "vestige: {version_table}.{column} is dropped with {table}.{column}: its history goes"
)
RENAME_NOTE = (
    "vestige: {table}.{old} dropped and {table}.{new} added with the same type: if this "
    "is a rename, replace these operations on {table} and {version_table} with "
    "vestige.migrations.rename_column({table!r}, {old!r}, {new!r}), which renames both and "
    "keeps the values and their history"
)
DROPPED_TABLE_NOTE = (
    "vestige: {version_table} is dropped with {table}: the history of every {table} row goes; "
    "remove that drop_table to keep it, or, if {table} is renamed, use "
    "vestige.migrations.rename_table({table!r}, 'new_name')"
)
NOT_NULL_NOTE = "vestige: {version_table}.{column} becomes nullable, so new versions can omit it"


def on_drop_column_setting(context: Any, default: OnDropColumn = "keep") -> OnDropColumn:
    """``keep`` or ``drop``: ``-x on_drop_column=...`` wins over ``default``.

    ``default`` is the project's ``[tool.vestige.migrations] on_drop_column``, handed
    over by :func:`vestige.migrations.comparison_options` from the settings ``env.py``
    loaded.

    Raises:
        ConfigError: The ``-x`` value is neither.
    """
    value: Any = None
    environment = getattr(context, "environment_context", None)
    if environment is not None:
        value = environment.get_x_argument(as_dictionary=True).get("on_drop_column")
    if not isinstance(value, str):
        return default
    if value not in ON_DROP_COLUMN:
        raise ConfigError(f"-x on_drop_column must be 'keep' or 'drop', not {value!r}")
    return cast(OnDropColumn, value)


# --- operations that only render (notes) or call vestige.migrations.native -----------


class HistoryNoteOp(ops.MigrateOperation):
    """A comment in the revision: what Vestige did or suggests, and why."""

    def __init__(self, text: str) -> None:
        self.text = text

    def reverse(self) -> HistoryNoteOp:
        return self

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("vestige_note", self.text)


class SyncAuditTriggerOp(ops.MigrateOperation):
    """(Re)build a native audit trigger; the reverse restores ``previous`` (or drops it)."""

    def __init__(
        self,
        table: str,
        trigger: native.AuditTrigger | None,
        previous: native.AuditTrigger | None,
    ) -> None:
        self.table = table
        self.trigger = trigger
        self.previous = previous

    def reverse(self) -> SyncAuditTriggerOp:
        return SyncAuditTriggerOp(self.table, self.previous, self.trigger)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("vestige_sync_audit_trigger", self.table)


class TransactionTriggerOp(ops.MigrateOperation):
    """Install (or, reversed, remove) hstore's use and the ``transaction`` trigger."""

    def __init__(self, table: str, install: bool = True) -> None:
        self.table = table
        self.install = install

    def reverse(self) -> TransactionTriggerOp:
        return TransactionTriggerOp(self.table, not self.install)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("vestige_transaction_trigger", self.table, self.install)


def _comment(text: str) -> str:
    return "\n".join(f"# {line}" for line in _wrap(text))


def _wrap(text: str, width: int = 90) -> Iterable[str]:
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            yield line
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        yield line


@renderers.dispatch_for(HistoryNoteOp)
def _render_note(autogen_context: AutogenContext, op: HistoryNoteOp) -> str:
    return _comment(op.text)


@renderers.dispatch_for(SyncAuditTriggerOp)
def _render_sync(autogen_context: AutogenContext, op: SyncAuditTriggerOp) -> str:
    autogen_context.imports.add("from vestige.migrations import native")
    trigger = op.trigger
    if trigger is None:
        return f"native.drop_audit_trigger({op.table!r})"
    args = [repr(trigger.table), repr(list(trigger.columns))]
    args.append(f"primary_key={list(trigger.primary_key)!r}")
    if trigger.excluded:
        args.append(f"excluded={list(trigger.excluded)!r}")
    if not trigger.validity:
        args.append("validity=False")
    if trigger.mod_tracking:
        args.append("mod_tracking=True")
    if trigger.version_table and trigger.version_table != f"{trigger.table}_version":
        args.append(f"version_table={trigger.version_table!r}")
    return f"native.sync_audit_trigger({', '.join(args)})"


@renderers.dispatch_for(TransactionTriggerOp)
def _render_transaction(autogen_context: AutogenContext, op: TransactionTriggerOp) -> str:
    autogen_context.imports.add("from vestige.migrations import native")
    call = "install" if op.install else "uninstall"
    argument = "" if op.table == "transaction" else repr(op.table)
    return f"native.{call}_transaction_trigger({argument})"


# --- rewriting a proposed revision ------------------------------------------------------


@dataclass
class _TableChanges:
    dropped: list[ops.DropColumnOp]
    added: list[ops.AddColumnOp]


def _changes(upgrade_ops: ops.UpgradeOps) -> dict[str, _TableChanges]:
    found: dict[str, _TableChanges] = {}
    for item in upgrade_ops.ops:
        if not isinstance(item, ops.ModifyTableOps):
            continue
        changes = found.setdefault(item.table_name, _TableChanges([], []))
        for sub in item.ops:
            if isinstance(sub, ops.DropColumnOp):
                changes.dropped.append(sub)
            elif isinstance(sub, ops.AddColumnOp):
                changes.added.append(sub)
    return found


def _same_type(left: sa.types.TypeEngine[Any], right: sa.types.TypeEngine[Any]) -> bool:
    return left._type_affinity is right._type_affinity and getattr(left, "length", None) == getattr(
        right, "length", None
    )


def _modify_ops(upgrade_ops: ops.UpgradeOps, table: str, schema: str | None) -> ops.ModifyTableOps:
    for item in upgrade_ops.ops:
        if isinstance(item, ops.ModifyTableOps) and item.table_name == table:
            return item
    created = ops.ModifyTableOps(table, [], schema=schema)
    upgrade_ops.ops.append(created)
    return created


def rewrite(
    context: Any,
    script: ops.MigrationScript,
    metadata: sa.MetaData,
    on_drop_column: OnDropColumn = "keep",
) -> None:
    """Apply Vestige's rules to one proposed revision (see the module docstring).

    ``on_drop_column`` is the project's setting; ``-x on_drop_column=...`` wins over it.
    """
    upgrade_ops = getattr(script, "upgrade_ops", None)
    if not isinstance(upgrade_ops, ops.UpgradeOps):
        return
    versioned = version_tables_by_base(metadata)
    mode = on_drop_column_setting(context, on_drop_column)
    bind = getattr(context, "bind", None)
    connection = bind if isinstance(bind, sa.Connection) else None
    inspector = sa.inspect(connection) if connection is not None else None
    notes: list[HistoryNoteOp] = []
    before = repr(upgrade_ops.as_diffs())
    for table, changes in _changes(upgrade_ops).items():
        version_table = versioned.get(table)
        if version_table is None:
            continue
        _handle_drops(upgrade_ops, inspector, table, version_table, changes, mode, notes)
        _point_out_renames(table, version_table, changes, notes)
    notes += _dropped_histories(upgrade_ops)
    upgrade_ops.ops[:0] = notes
    if connection is not None and connection.dialect.name == "postgresql":
        # Drops go first (their reverse must follow the table's re-creation on downgrade),
        # creates and rebuilds last (after the columns they copy exist).
        for item in _native_ops(connection, metadata):
            if isinstance(item, SyncAuditTriggerOp) and item.trigger is None:
                upgrade_ops.ops.insert(0, item)
            else:
                upgrade_ops.ops.append(item)
    if not notes and repr(upgrade_ops.as_diffs()) == before:
        return  # nothing of ours: leave Alembic's downgrade as it is
    downgrade_ops = upgrade_ops.reverse()
    # the notes explain the upgrade; repeating them under downgrade() is noise
    downgrade_ops.ops = [op for op in downgrade_ops.ops if not isinstance(op, HistoryNoteOp)]
    script.downgrade_ops = downgrade_ops


def _handle_drops(
    upgrade_ops: ops.UpgradeOps,
    inspector: sa.Inspector | None,
    table: str,
    version_table: str,
    changes: _TableChanges,
    mode: str,
    notes: list[HistoryNoteOp],
) -> None:
    if not changes.dropped:
        return
    existing: dict[str, Any] = {}
    if inspector is not None and inspector.has_table(version_table):
        existing = {column["name"]: column for column in inspector.get_columns(version_table)}
    version_ops = _modify_ops(upgrade_ops, version_table, changes.dropped[0].schema)
    names = {"table": table, "version_table": version_table}
    for dropped in changes.dropped:
        column = dropped.column_name
        if column not in existing:
            continue
        reflected = existing[column]
        if mode == "drop":
            kept = sa.Column(column, reflected["type"], nullable=True)
            version_ops.ops.append(
                ops.DropColumnOp.from_column_and_tablename(dropped.schema, version_table, kept)
            )
            notes.append(HistoryNoteOp(DROPPED_NOTE.format(column=column, **names)))
            continue
        notes.append(HistoryNoteOp(KEPT_NOTE.format(column=column, **names)))
        if not reflected["nullable"]:
            notes.append(HistoryNoteOp(NOT_NULL_NOTE.format(column=column, **names)))
            version_ops.ops.append(
                ops.AlterColumnOp(
                    version_table,
                    column,
                    schema=dropped.schema,
                    existing_type=reflected["type"],
                    existing_nullable=False,
                    modify_nullable=True,
                )
            )
    if not version_ops.ops:
        upgrade_ops.ops.remove(version_ops)


def _dropped_histories(upgrade_ops: ops.UpgradeOps) -> list[HistoryNoteOp]:
    """Notes for version tables dropped together with their table (a model removed)."""
    dropped = {item.table_name for item in upgrade_ops.ops if isinstance(item, ops.DropTableOp)}
    return [
        HistoryNoteOp(DROPPED_TABLE_NOTE.format(table=name, version_table=f"{name}_version"))
        for name in sorted(dropped)
        if f"{name}_version" in dropped
    ]


def _point_out_renames(
    table: str, version_table: str, changes: _TableChanges, notes: list[HistoryNoteOp]
) -> None:
    for dropped in changes.dropped:
        old_column = dropped.to_column()
        for added in changes.added:
            if _same_type(old_column.type, added.column.type):
                notes.append(
                    HistoryNoteOp(
                        RENAME_NOTE.format(
                            table=table,
                            version_table=version_table,
                            old=dropped.column_name,
                            new=added.column.name,
                        )
                    )
                )


def _native_ops(connection: sa.Connection, metadata: sa.MetaData) -> list[ops.MigrateOperation]:
    expected = native.expected_audit_triggers(metadata, versioning_manager)
    if not expected:
        return []
    found: list[ops.MigrateOperation] = []
    transaction_table = versioning_manager.transaction_cls.__table__.name
    if not native.transaction_trigger_present(connection, transaction_table):
        found.append(TransactionTriggerOp(transaction_table))
    for name, trigger in sorted(expected.items()):
        body = native.database_function_body(connection, native.audit_function_name(name))
        attached = native.trigger_present(connection, name, native.audit_trigger_name(name))
        if body == trigger.body() and attached:
            continue
        previous = native.database_audit_trigger(connection, name) if body else None
        found.append(SyncAuditTriggerOp(name, trigger, previous))
    for name in _stale_audit_functions(connection, set(expected)):
        previous = native.database_audit_trigger(connection, name)
        if previous is not None:
            found.append(SyncAuditTriggerOp(name, None, previous))
    return found


def _stale_audit_functions(connection: sa.Connection, expected: set[str]) -> list[str]:
    """Tables whose audit function exists though no native model has that table any more."""
    names = connection.execute(
        sa.text(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE p.proname LIKE '%\\_audit' AND n.nspname = current_schema()"
        )
    ).scalars()
    tables = {str(name)[: -len("_audit")] for name in names}
    return sorted(tables - expected)
