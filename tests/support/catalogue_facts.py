"""Print what the catalogue knows of the model zoo, and which tables a database has.

    python -m tests.support.catalogue_facts DATABASE_URL FACTS.json

Runs in a process of its own, like :mod:`tests.support.zoo_scenario`: the zoo declares
its own versioned models. The zoo's tables are created in the database first, so that
``tests/test_catalogue.py`` can hold the catalogue's version tables against real ones.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import sqlalchemy as sa

from tests.support import zoo_models as zoo
from vestige.catalogue import (
    association_tables,
    planned_version_tables,
    version_tables_by_base,
    versioned_models,
)


def facts(engine: sa.Engine) -> dict[str, Any]:
    zoo.Base.metadata.create_all(engine)
    models = {
        name: {
            "table": entry.table.name,
            "version_table": entry.version_table.name,
            "root": entry.root.__name__,
            "key": entry.key_attributes,
            "levels": [
                [level.table.name, level.version_table.name, list(level.positions)]
                for level in entry.levels
            ],
            "root_version_table": entry.root_version_table.name,
            "discriminator": getattr(entry.version_discriminator, "name", None),
            "single": entry.single,
            "identities": list(entry.identities),
            "names_by_identity": [list(pair) for pair in entry.names_by_identity],
            "has_subtables": entry.has_subtables,
        }
        for name, entry in versioned_models().items()
    }
    return {
        "models": models,
        "associations": [
            [a.table.name, a.version_table.name, list(a.key)] for a in association_tables()
        ],
        "planned": {
            name: [planned.base, planned.model]
            for name, planned in planned_version_tables(zoo.Base.metadata).items()
        },
        "by_base": version_tables_by_base(zoo.Base.metadata),
        "database_tables": sorted(sa.inspect(engine).get_table_names()),
    }


def main(url: str, out: str) -> None:
    engine = sa.create_engine(url)
    try:
        with open(out, "w") as handle:
            json.dump(facts(engine), handle)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
