"""``vestige history`` and ``vestige restore``: thin commands over :mod:`vestige.history`.

Model names are looked up in the mapped registry and keys are converted to the key
column's Python type before anything reaches SQL.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click
from rich import box
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from sqlalchemy import orm

from vestige.cli.output import echo_json, echo_table, stdin_is_terminal
from vestige.cli.parsing import INT64_MAX, parse_key, parse_user, parse_when, show
from vestige.cli.support import Project, models_option, pass_project
from vestige.errors import ConfigError, RecordNotFound, exit_codes_help
from vestige.history.archived import use_archive
from vestige.history.plans import Action, RestorePlan, RowChange
from vestige.history.reading import (
    NO_HISTORY,
    Change,
    Operation,
    Version,
    at,
    changes_dict,
    describe_when,
    diff,
    history,
    record_label,
)
from vestige.history.restore import plan_restore, restore
from vestige.registry import resolve_model
from vestige.versioning.setup import actor

__all__ = ["archive_option", "history_command", "restore_command"]

#: ``--archive URL``: read the history a pruner archived there too.
archive_option = click.option(
    "--archive",
    "archive_url",
    metavar="URL",
    default=None,
    help="Read archived history there too, a directory or fsspec URL "
    "(default: VESTIGE_ARCHIVE_URL, else [tool.vestige] archive_url).",
)
BAD_LIMIT_WITH = "--limit applies to the version list only, not to --as-of or --diff"
AS_OF_AND_DIFF = "--as-of and --diff cannot be combined; use one"
DELETED = "(record deleted)"
PRUNED = "(earlier history pruned)"
NO_CHANGE = "(no column changed)"
NOTHING_TO_RESTORE = "{record} already is as it was at {when}: nothing to restore"
WOULD_RESTORE = "would restore {record} to its version of transaction {tx} ({issued}, {user})"
RESTORING = "restore {record} to its version of transaction {tx} ({issued}, {user})"
RESTORED = "restored {record} to its version of transaction {tx}, in transaction {new_tx}"
WITH_RELATIONS = "  with relations: {names} (as they were at transaction {tx})"
CONFIRM = "Restore?"
RESTORE_NEEDS_YES = (
    "refusing to restore without confirmation: not on a terminal, so pass --yes "
    "(or --dry-run to see the plan)"
)


@click.command("history", epilog=exit_codes_help("history"))
@click.argument("model_name", metavar="MODEL")
@click.argument("key_text", metavar="PK")
@click.option(
    "--as-of",
    "when_text",
    metavar="WHEN",
    help="Show the record as it was at a transaction id or an ISO time (UTC).",
)
@click.option(
    "--diff",
    "diff_between",
    nargs=2,
    metavar="TX1 TX2",
    help="Show what differs between the record at two transactions (or times).",
)
@click.option("--json", "as_json", is_flag=True, help="Write JSON instead of a table.")
@click.option(
    "--limit", type=click.IntRange(min=1), metavar="N", help="Only the newest N versions."
)
@archive_option
@models_option
@pass_project
def _history(
    project: Project,
    model_name: str,
    key_text: str,
    when_text: str | None,
    diff_between: tuple[str, str] | None,
    as_json: bool,
    limit: int | None,
    archive_url: str | None,
    models_module: str | None,
) -> None:
    """Show who changed a record, when, and how; or the record as it was.

    PK is the primary key (comma-separated for composite keys). Times are UTC.

    \b
    Examples:
        vestige history Package 1
        vestige history Package 1 --as-of 2026-01-31T12:00:00
        vestige history Package 1 --diff 3 9 --json
        vestige history Package 1 --archive ./archive
    """
    if when_text is not None and diff_between:
        raise ConfigError(AS_OF_AND_DIFF)
    if limit is not None and (when_text is not None or diff_between):
        raise ConfigError(BAD_LIMIT_WITH)
    project.load_models(models_module)
    model = resolve_model(model_name).model
    key = parse_key(model, key_text)
    with _session(project, archive_url) as session:
        if when_text is not None:
            version = at(session, model, key, parse_when(when_text))
            heading = _as_of_heading(version)
            _emit(as_json, version.to_dict(), heading, _values_table(version))
        elif diff_between:
            moments = [parse_when(text) for text in diff_between]
            older, newer = (at(session, model, key, moment) for moment in moments)
            found = diff(older, newer)
            heading = _diff_heading(older, newer)
            table = _diff_table(older, newer, found)
            _emit(as_json, _diff_json(older, newer, found), heading, table)
        else:
            # a limit beyond any table's size means "all", and must not overflow SQL
            newest = None if limit is None else min(limit, INT64_MAX - 1)
            versions = history(session, model, key, limit=newest)
            if not versions:
                raise RecordNotFound(NO_HISTORY.format(record=record_label(model, key)))
            payload = {
                "model": model.__name__,
                "key": list(key),
                "versions": [v.to_dict() for v in versions],
            }
            heading = f"History of {record_label(model, key)}"
            _emit(as_json, payload, heading, _history_table(versions))


@click.command("restore", epilog=exit_codes_help("restore"))
@click.argument("model_name", metavar="MODEL")
@click.argument("key_text", metavar="PK")
@click.option(
    "--to", "to_text", required=True, metavar="TX", help="Transaction id (or ISO time, UTC)."
)
@click.option(
    "--with",
    "relations",
    multiple=True,
    metavar="RELATION",
    help="Also restore this relationship (repeatable), e.g. --with releases.",
)
@click.option(
    "--user",
    "user_text",
    metavar="ID",
    help="Record the restore as made by this user (transaction.user_id).",
)
@click.option("--dry-run", is_flag=True, help="Show what would be restored; change nothing.")
@click.option(
    "--yes", "-y", is_flag=True, help="Do not ask for confirmation (needed off a terminal)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the plan and the result as JSON.")
@archive_option
@models_option
@pass_project
def _restore(
    project: Project,
    model_name: str,
    key_text: str,
    to_text: str,
    relations: tuple[str, ...],
    user_text: str | None,
    dry_run: bool,
    yes: bool,
    as_json: bool,
    archive_url: str | None,
    models_module: str | None,
) -> None:
    """Bring a record back to its state at a transaction, or undelete it.

    The plan lists every row of the record and of each --with relation that the
    restore inserts, updates or deletes. Refuses, changing nothing, when the history
    the restore needs has been pruned, or when the record changed after the plan was
    shown. The restore is written as a new version, like any other change.

    \b
    Examples:
        vestige restore Package 1 --to 5 --dry-run
        vestige restore Package 1 --to 5 --with releases --user 3 --yes
        vestige restore Package 1 --to 2 --archive ./archive --dry-run
    """
    project.load_models(models_module)
    model = resolve_model(model_name).model
    key = parse_key(model, key_text)
    to = parse_when(to_text)
    user_id = None if user_text is None else parse_user(user_text)
    if not dry_run and not yes and not stdin_is_terminal():
        raise ConfigError(RESTORE_NEEDS_YES)
    with _session(project, archive_url) as session:
        # With --yes the plan shown is the one written: the record stays locked between.
        plan = plan_restore(
            session, model, key, to=to, relations=relations, lock=yes and not dry_run
        )
        record = record_label(model, plan.key)
        if not plan.rows or dry_run:
            nothing = NOTHING_TO_RESTORE.format(record=record, when=describe_when(to))
            text = _plan_text(plan, WOULD_RESTORE) if plan.rows else nothing
            _emit_restore(as_json, plan, None, text)
            return
        text = _plan_text(plan, RESTORING)
        if not as_json:
            click.echo(text)
        if not yes:
            if as_json:
                click.echo(text, err=True)
            # Nobody holds the record while a person reads the plan; the restore checks
            # under its lock that the plan is still true.
            session.rollback()
            click.confirm(CONFIRM, abort=True, err=as_json)
        with actor(user_id=user_id):
            result = restore(session, model, key, to=to, relations=relations, expected=plan)
            session.commit()
        done = RESTORED.format(
            record=record, tx=plan.target.transaction_id, new_tx=result.transaction_id
        )
        _emit_restore(as_json, plan, result.transaction_id, done)


history_command: click.Command = _history
restore_command: click.Command = _restore


@contextmanager
def _session(project: Project, archive_url: str | None = None) -> Iterator[orm.Session]:
    """A session reading across the archive, if one is given or configured."""
    archive = archive_url or project.settings.archive_url
    with project.engine() as engine, orm.Session(engine) as session:
        reader = use_archive(session, archive) if archive else None
        try:
            yield session
        finally:
            if reader is not None:
                reader.close()


def _change_lines(version: Version) -> str:
    if version.operation is Operation.DELETE:
        return DELETED
    if version.pruned_before:
        return PRUNED
    if not version.changes:
        return NO_CHANGE
    return "\n".join(_change_line(change) for change in version.changes)


def _change_line(change: Change) -> str:
    return f"{change.field}: {show(change.old)} -> {show(change.new)}"


def _history_table(versions: Sequence[Version]) -> Table:
    """One row per version; a context column only when some version recorded one."""
    with_context = any(version.context for version in versions)
    headers = ["transaction", "time (UTC)", "user", "operation", "changes"]
    if with_context:
        headers.insert(3, "context")
    table = Table(box=box.SIMPLE_HEAD, show_lines=True)
    for header in headers:
        table.add_column(header, no_wrap=header not in ("changes", "context"), overflow="fold")
    for version in versions:
        cells = [
            Text(str(version.transaction_id)),
            Text(show(version.issued_at)),
            Text(version.user),
            Text(version.operation.value),
            Text(_change_lines(version)),
        ]
        if with_context:
            cells.insert(3, Text(_context_lines(version)))
        table.add_row(*cells)
    return table


def _context_lines(version: Version) -> str:
    return "\n".join(f"{key}={show(value)}" for key, value in version.context.items())


def _as_of_heading(version: Version) -> str:
    return (
        f"{record_label(version.model, version.key)} as of transaction "
        f"{version.transaction_id} ({show(version.issued_at)}, {version.user or 'no user'})"
    )


def _diff_heading(older: Version, newer: Version) -> str:
    return (
        f"{record_label(older.model, older.key)}: transaction {older.transaction_id} "
        f"-> {newer.transaction_id}"
    )


def _values_table(version: Version) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("field", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in version.values.items():
        table.add_row(Text(name), Text(show(value)))
    return table


def _diff_table(older: Version, newer: Version, changes: Sequence[Change]) -> Table:
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("field", no_wrap=True)
    table.add_column(f"at {older.transaction_id}", overflow="fold")
    table.add_column(f"at {newer.transaction_id}", overflow="fold")
    for change in changes:
        table.add_row(Text(change.field), Text(show(change.old)), Text(show(change.new)))
    if not changes:
        table.add_row(Text(NO_CHANGE), Text(""), Text(""))
    return table


def _plan_text(plan: RestorePlan, template: str) -> str:
    target = plan.target
    lines = [
        template.format(
            record=record_label(plan.model, plan.key),
            tx=target.transaction_id,
            issued=show(target.issued_at),
            user=target.user or "no user",
        )
    ]
    for row in plan.rows:
        lines.append(f"  {row.action.value} {row.label}")
        lines += [f"    {_row_change_line(row, change)}" for change in row.changes]
    if plan.relations:
        lines.append(
            WITH_RELATIONS.format(names=", ".join(plan.relations), tx=target.transaction_id)
        )
    return "\n".join(lines)


def _row_change_line(row: RowChange, change: Change) -> str:
    """``name: old -> new`` for an update; the one value for an insert or a delete."""
    if row.action is Action.UPDATE:
        return _change_line(change)
    value = change.old if row.action is Action.DELETE else change.new
    return f"{change.field}: {show(value)}"


def _emit_restore(as_json: bool, plan: RestorePlan, new_tx: int | None, text: str) -> None:
    """The plan and what was written: one JSON object, or the text."""
    if not as_json:
        click.echo(text)
        return
    written = None if new_tx is None else {"restored": True, "transaction_id": new_tx}
    payload = {"plan": plan.to_dict(), "result": written}
    echo_json(payload)


def _emit(as_json: bool, payload: Any, heading: str, table: RenderableType) -> None:
    if as_json:
        echo_json(payload)
        return
    click.echo(heading)
    echo_table(table)


def _diff_json(older: Version, newer: Version, changes: Sequence[Change]) -> dict[str, Any]:
    return {
        "model": older.model.__name__,
        "key": list(older.key),
        "from_transaction_id": older.transaction_id,
        "to_transaction_id": newer.transaction_id,
        "changes": changes_dict(changes),
    }
