"""History as data: a version, a change, a transaction's records, and their one JSON shape.

What :mod:`vestige.history.reading` returns. Each has a ``to_dict()``: the shape
``vestige history --json`` prints and integrations use, so that no caller writes its
own serialiser.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Change", "Operation", "Touched", "TransactionChanges", "Version", "changes_dict"]


class Operation(enum.StrEnum):
    """What a version records; Continuum stores it as ``operation_type`` 0, 1, 2."""

    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"

    @classmethod
    def from_type(cls, operation_type: int) -> Operation:
        return _OPERATIONS[operation_type]


_OPERATIONS = {0: Operation.INSERT, 1: Operation.UPDATE, 2: Operation.DELETE}


@dataclass(frozen=True)
class Change:
    """One field of a record that differs between two versions."""

    field: str
    old: Any
    new: Any


def changes_dict(changes: Sequence[Change]) -> dict[str, dict[str, Any]]:
    """Changes as data, ``{field: {"old": ..., "new": ...}}``: the one shape every
    ``to_dict()`` of this package, the command line's ``--json`` and integrations use."""
    return {change.field: {"old": change.old, "new": change.new} for change in changes}


@dataclass(frozen=True)
class Version:
    """One version of one record, with who wrote it and what it changed.

    Attributes:
        model: The mapped class (``Package``).
        key: The record's primary key values, in primary key order.
        transaction_id: The transaction that wrote this version.
        end_transaction_id: The transaction that superseded it (``None``: still current).
        issued_at: When that transaction ran (naive UTC, as Continuum stores it).
        user_id: ``transaction.user_id`` (``None`` when nobody was recorded).
        user: A label for the user: its ``username``, ``name`` or ``email``, else its id.
        remote_addr: ``transaction.remote_addr``, if recorded.
        operation: Insert, update or delete.
        values: The record's columns as they were after this transaction.
        changes: The fields that differ from the previous version (for an insert,
            including one that undoes a delete, every field that is not ``None``; for a
            delete, none).
        pruned_before: The versions before this one were pruned, so ``changes`` is
            empty because the previous state is unknown.
        context: The rest of the change context, ``transaction.context``: ``reason``,
            ``request_id`` and any extra values (empty when none was recorded).
    """

    model: type[Any]
    key: tuple[Any, ...]
    transaction_id: int
    end_transaction_id: int | None
    issued_at: datetime
    user_id: Any
    user: str
    remote_addr: str | None
    operation: Operation
    values: Mapping[str, Any]
    changes: tuple[Change, ...] = ()
    pruned_before: bool = False
    context: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The version as data, the shape ``vestige history --json`` prints.

        Values are as the database returned them (``datetime``, ``Decimal``, ``UUID``...):
        the caller's JSON encoder decides how to write them.
        """
        return {
            "transaction_id": self.transaction_id,
            "end_transaction_id": self.end_transaction_id,
            "issued_at": self.issued_at,
            "user_id": self.user_id,
            "user": self.user or None,
            "remote_addr": self.remote_addr,
            "context": dict(self.context),
            "operation": self.operation.value,
            "pruned_before": self.pruned_before,
            "changes": changes_dict(self.changes),
            "values": dict(self.values),
        }


@dataclass(frozen=True)
class Touched:
    """A record a transaction wrote a version of."""

    model: str
    key: tuple[Any, ...]
    operation: Operation

    def to_dict(self) -> dict[str, Any]:
        """The record as data: model name, key list and operation."""
        return {"model": self.model, "key": list(self.key), "operation": self.operation.value}


@dataclass(frozen=True)
class TransactionChanges:
    """A transaction, who ran it, and every versioned record it touched."""

    transaction_id: int
    issued_at: datetime
    user_id: Any
    user: str
    remote_addr: str | None
    touched: tuple[Touched, ...]
    context: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The transaction as data, with the same field names as :meth:`Version.to_dict`."""
        return {
            "transaction_id": self.transaction_id,
            "issued_at": self.issued_at,
            "user_id": self.user_id,
            "user": self.user or None,
            "remote_addr": self.remote_addr,
            "context": dict(self.context),
            "touched": [record.to_dict() for record in self.touched],
        }
