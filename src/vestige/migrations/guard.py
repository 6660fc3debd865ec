"""Alembic integration: the guard that keeps version tables in the comparison.

``migrations/env.py`` calls :func:`check_version_tables` before it runs anything, and
passes :func:`process_revision_directives` to ``context.configure`` so that a custom
``env.py`` that forgets the first call is still covered on autogenerate::

    from vestige.migrations import check_version_tables, process_revision_directives

    check_version_tables(target_metadata)
    context.configure(..., process_revision_directives=process_revision_directives)

On top of the guard, :func:`comparison_options` gives ``context.configure`` everything
Vestige adds to autogenerate (kept history columns are not proposed for dropping; see
:mod:`vestige.migrations.autogenerate` for what happens to a proposed revision), and
:func:`rename_column` / :func:`rename_table` rename a versioned model's table or column
together with its version table, history intact.

Why the guard: Continuum builds the ``*_version`` tables only when the mappers are configured.
An autogenerate run against metadata without them sees every version table in the
database as unknown and proposes ``DROP TABLE`` for each: the whole history gone in
one reviewed-looking revision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import sqlalchemy as sa

from vestige.config import MigrationSettings, OnDropColumn, Settings
from vestige.errors import VersionTablesMissing
from vestige.migrations.autogenerate import rewrite
from vestige.migrations.tables import expected_version_tables, missing_version_tables

__all__ = [
    "check_version_tables",
    "comparison_options",
    "kept_history_column",
    "process_revision_directives",
    "rename_column",
    "rename_table",
]


def check_version_tables(metadata: sa.MetaData | Iterable[sa.MetaData] | None) -> None:
    """Refuse to go on when a versioned model's version table is missing from the metadata.

    Args:
        metadata: The target metadata (or several) of the migration environment.

    Raises:
        VersionTablesMissing: Naming every missing table and the fix.
    """
    if metadata is None:
        return
    collection = [metadata] if isinstance(metadata, sa.MetaData) else list(metadata)
    missing = [name for item in collection for name in missing_version_tables(item)]
    if missing:
        raise VersionTablesMissing(missing)


def process_revision_directives(
    context: Any, revision: Any, directives: list[Any], on_drop_column: OnDropColumn = "keep"
) -> None:
    """Alembic hook: run :func:`check_version_tables`, then make the revision history-aware.

    After the guard, each proposed revision goes through
    :func:`vestige.migrations.autogenerate.rewrite`: dropped columns keep their history
    (unless ``on_drop_column`` is ``drop``), likely renames are pointed out, and native
    audit triggers follow the columns. :func:`comparison_options` binds
    ``on_drop_column`` from the project's settings.
    """
    metadata = context.opts.get("target_metadata")
    check_version_tables(metadata)
    if not isinstance(metadata, sa.MetaData):
        return
    for script in directives:
        rewrite(context, script, metadata, on_drop_column)


def kept_history_column(metadata: sa.MetaData) -> Callable[..., bool]:
    """An ``include_object`` hook that leaves kept history columns out of the comparison.

    A nullable column of a version table that the models no longer have is history kept
    on purpose (see ``on_drop_column``): autogenerate must not propose dropping it, and
    ``vestige check`` accepts it.
    """
    version_tables = set(expected_version_tables(metadata)) - {"transaction"}

    def include_object(
        obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
    ) -> bool:
        if type_ != "column" or not reflected or compare_to is not None:
            return True
        table = obj.table
        key = f"{table.schema}.{table.name}" if table.schema else table.name
        return not (key in version_tables and obj.nullable)

    return include_object


def comparison_options(
    metadata: sa.MetaData, settings: Settings | MigrationSettings | None = None
) -> dict[str, Any]:
    """The ``context.configure`` options Vestige needs, for ``env.py`` and ``vestige check``::

        settings = load_settings(database_url=config.get_main_option("sqlalchemy.url"))
        context.configure(connection=..., target_metadata=target_metadata,
                          **comparison_options(target_metadata, settings))

    Args:
        metadata: The target metadata, version tables included.
        settings: The project's settings (or their ``migrations`` section): where
            ``on_drop_column`` comes from. Without them, dropped columns keep their history.
    """
    section = settings.migrations if isinstance(settings, Settings) else settings
    on_drop_column = section.on_drop_column if section is not None else "keep"
    return {
        "compare_type": True,
        "include_object": kept_history_column(metadata),
        "process_revision_directives": partial(
            process_revision_directives, on_drop_column=on_drop_column
        ),
    }


def _batch(table: str) -> Any:
    from alembic import op

    return op.batch_alter_table(table)


def _has_table(name: str) -> bool:
    from alembic import op

    if op.get_context().as_sql:  # offline (--sql): nothing to inspect, assume it is there
        return True
    return bool(sa.inspect(op.get_bind()).has_table(name))


def rename_column(table: str, old: str, new: str, *, version_table: str | None = None) -> None:
    """In a revision: rename a column of a versioned table and of its version table.

    Values and their history stay (a drop and an add would lose both). On PostgreSQL with
    native versioning, keep the audit trigger rebuild autogenerate wrote beside it.

    Args:
        table: The versioned (base) table.
        old: The column's current name.
        new: Its new name.
        version_table: The version table (default ``<table>_version``).
    """
    for name in (table, version_table or f"{table}_version"):
        if name != table and not _has_table(name):
            continue
        with _batch(name) as batch:
            batch.alter_column(old, new_column_name=new)


def rename_table(old: str, new: str, *, version_suffix: str = "_version") -> None:
    """In a revision: rename a versioned table and its version table together.

    Indexes named after the old table (``ix_<old>_...``, the naming convention's) are
    renamed too, so the next autogenerate finds nothing to do; other constraint names stay.
    On PostgreSQL the old audit trigger and function (native versioning) are dropped: they
    write to the old version table; keep the trigger autogenerate wrote for the new table.
    """
    from alembic import op

    if op.get_context().dialect.name == "postgresql":
        from vestige.migrations import native

        native.drop_audit_trigger(old)
    pairs = [(old, new)]
    if _has_table(f"{old}{version_suffix}"):
        pairs.append((f"{old}{version_suffix}", f"{new}{version_suffix}"))
    for before, after in pairs:
        op.rename_table(before, after)
        _rename_indexes(after, before, after)


def _rename_indexes(table: str, old: str, new: str) -> None:
    from alembic import op

    if op.get_context().as_sql:
        return
    prefix = f"ix_{old}_"
    for index in sa.inspect(op.get_bind()).get_indexes(table):
        name = index["name"]
        columns = [column for column in index["column_names"] if column is not None]
        if not name or not name.startswith(prefix) or len(columns) != len(index["column_names"]):
            continue
        renamed = f"ix_{new}_{name[len(prefix) :]}"
        if op.get_context().dialect.name == "postgresql":
            op.execute(f'ALTER INDEX "{name}" RENAME TO "{renamed}"')
        else:
            op.drop_index(name, table_name=table)
            op.create_index(renamed, table, columns, unique=bool(index["unique"]))
