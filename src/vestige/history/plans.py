"""What a restore would write and what it wrote: :class:`RestorePlan`, :class:`RestoreResult`.

A plan lists every row a restore changes (:class:`RowChange`, one :class:`Action` each);
it is made without writing anything, shown, and then carried out as it was shown.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vestige.history.reading import (
    Change,
    Operation,
    Version,
    changes_dict,
)

__all__ = ["Action", "RestorePlan", "RestoreResult", "RowChange"]


class Action(enum.StrEnum):
    """What a restore does to one row."""

    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class RowChange:
    """One row a restore inserts, updates or deletes.

    Attributes:
        action: Insert, update or delete.
        table: The table the row is in.
        model: The mapped class's name; ``None`` for a row of an association table.
        key: The row's primary key values (every column for a keyless association row).
        old: The row as it is now, every column (empty for an insert).
        new: The row as the restore writes it, every column (empty for a delete).
    """

    action: Action
    table: str
    model: str | None
    key: tuple[Any, ...]
    old: Mapping[str, Any] = field(default_factory=dict)
    new: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``Release 3``, or ``package_maintainer 1,2`` for an association row."""
        return f"{self.model or self.table} {','.join(str(part) for part in self.key)}"

    @property
    def changes(self) -> tuple[Change, ...]:
        """The columns that change: all of them for an insert or a delete."""
        if self.action is Action.INSERT:
            return tuple(Change(name, None, value) for name, value in self.new.items())
        if self.action is Action.DELETE:
            return tuple(Change(name, value, None) for name, value in self.old.items())
        return tuple(
            Change(name, self.old.get(name), value)
            for name, value in self.new.items()
            if self.old.get(name) != value
        )

    def to_dict(self) -> dict[str, Any]:
        """The row change as plain data (values as the database returned them)."""
        return {
            "action": self.action.value,
            "table": self.table,
            "model": self.model,
            "key": list(self.key),
            "old": dict(self.old) if self.action is not Action.INSERT else None,
            "new": dict(self.new) if self.action is not Action.DELETE else None,
            "changes": changes_dict(self.changes),
        }


@dataclass(frozen=True)
class RestorePlan:
    """What a restore will do, checked against the history it needs.

    Attributes:
        model: The mapped class.
        key: The record's primary key values.
        target: The version that will be brought back (in force at the time asked for).
        current: The record's newest version (its live state, or its delete).
        changes: Column changes from the current state to the target's.
        relations: The relationships restored with it.
        rows: Every row the restore inserts, updates or deletes: the record's first,
            then the related rows by table and key. Empty: nothing to restore.
    """

    model: type[Any]
    key: tuple[Any, ...]
    target: Version
    current: Version
    changes: tuple[Change, ...]
    relations: tuple[str, ...]
    rows: tuple[RowChange, ...] = ()

    @property
    def undeletes(self) -> bool:
        """Whether the record is deleted now and the restore brings it back."""
        return self.current.operation is Operation.DELETE

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain data: the record, the target version, and every row change."""
        return {
            "model": self.model.__name__,
            "key": list(self.key),
            "target": {
                "transaction_id": self.target.transaction_id,
                "issued_at": self.target.issued_at,
                "user_id": self.target.user_id,
                "user": self.target.user or None,
            },
            "current_transaction_id": self.current.transaction_id,
            "undeletes": self.undeletes,
            "relations": list(self.relations),
            "rows": [row.to_dict() for row in self.rows],
        }


@dataclass(frozen=True)
class RestoreResult:
    """What a restore wrote.

    Attributes:
        plan: The plan it carried out, made under the lock.
        record: The live object, restored.
        transaction_id: The transaction that wrote the restore, as Continuum recorded it
            at the flush; ``None`` when there was nothing to write.
    """

    plan: RestorePlan
    record: Any
    transaction_id: int | None

    def to_dict(self) -> dict[str, Any]:
        """The result as plain data."""
        return {"plan": self.plan.to_dict(), "transaction_id": self.transaction_id}
