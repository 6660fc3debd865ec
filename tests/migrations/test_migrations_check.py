"""Findings of ``vestige check``: one line each, with a fix (no database)."""

from __future__ import annotations

import pytest

from vestige.migrations.check import MESSAGES, Finding
from vestige.migrations.native import AuditTrigger, normalise_body


def test_finding_line_names_table_problem_and_fix() -> None:
    finding = Finding.of("stale-trigger", "package", function="package_audit", trigger="t")
    assert finding.line().startswith(
        "package: native versioning: audit function package_audit does not match"
    )
    assert "; fix: alembic revision --autogenerate" in finding.line()


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_every_message_has_a_fix(kind: str) -> None:
    message, fix = MESSAGES[kind]
    assert message and fix.startswith("alembic ")


def test_audit_trigger_sql_is_continuums() -> None:
    """The trigger a revision freezes is the one Continuum itself writes for the model."""
    from sqlalchemy_continuum.dialects.postgresql import CreateTriggerFunctionSQL, CreateTriggerSQL

    import models
    from vestige.versioning import versioning_manager

    table = models.Package.__table__
    frozen = AuditTrigger(
        table="package",
        columns=tuple(column.name for column in table.columns),
        primary_key=("id",),
    )
    stock = CreateTriggerFunctionSQL.for_manager(versioning_manager, models.Package)
    assert frozen.function_sql() == str(stock)
    assert frozen.trigger_sql() == str(
        CreateTriggerSQL.for_manager(versioning_manager, models.Package)
    )
    assert frozen.body() == normalise_body(str(stock))
    fewer = AuditTrigger("package", frozen.columns[:-1], ("id",))
    assert fewer.body() != frozen.body()
