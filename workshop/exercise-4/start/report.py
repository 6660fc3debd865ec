"""What history there is: each package's versions, oldest first.

python report.py
"""

from __future__ import annotations

import sqlalchemy as sa
from db import engine
from sqlalchemy.orm import Session
from sqlalchemy_continuum import version_class

from models import Package

OPERATIONS = {0: "insert", 1: "update", 2: "delete"}


def main() -> None:
    PackageVersion = version_class(Package)
    with Session(engine) as session:
        versions = session.scalars(
            sa.select(PackageVersion).order_by(PackageVersion.id, PackageVersion.transaction_id)
        ).all()
        print(f"package_version: {len(versions)} rows")
        for version in versions:
            issued = version.transaction.issued_at.date()
            operation = OPERATIONS[version.operation_type]
            current = version.end_transaction_id is None and operation != "delete"
            line = f"  {version.name:<10} {issued}  {operation:<7} {version.summary!r:<26}"
            print(f"{line} current" if current else line.rstrip())


if __name__ == "__main__":
    main()
