"""The catalogue of versioned models, on every shape of the model zoo.

What it says of keys, inheritance and association tables is checked against the
zoo's declarations, and every version table it names against the tables the database
really has (:mod:`tests.support.catalogue_facts` runs in a process of its own).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.project import run_module_json


@pytest.fixture(scope="module")
def computed() -> dict[str, dict[str, Any]]:
    """The facts per backend, each computed once, on first use."""
    return {}


@pytest.fixture
def facts(
    backend: str, db_url: str, tmp_path: Path, computed: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    if backend not in computed:
        computed[backend] = run_module_json(
            "tests.support.catalogue_facts", db_url, tmp_path / "facts.json"
        )
    return computed[backend]


def test_keys_uuid_composite_and_keyword_columns(facts: dict[str, Any]) -> None:
    models = facts["models"]
    assert models["Token"]["key"] == ["id"]
    assert models["Sku"]["key"] == ["vendor", "code"]
    assert models["Clause"]["key"] == ["id"]
    assert models["Sku"]["levels"] == [["sku", "sku_version", [0, 1]]]


def test_joined_inheritance_has_one_level_per_table(facts: dict[str, Any]) -> None:
    models = facts["models"]
    credit = models["Credit"]
    assert credit["root"] == "Document"
    assert credit["levels"] == [
        ["document", "document_version", [0]],
        ["invoice", "invoice_version", [0]],
        ["credit", "credit_version", [0]],
    ]
    assert credit["version_table"] == "credit_version"
    assert credit["root_version_table"] == "document_version"
    assert credit["single"] is False
    assert models["Invoice"]["identities"] == ["invoice", "credit"]
    assert models["Document"]["has_subtables"] is True
    assert models["Credit"]["has_subtables"] is False
    assert models["Document"]["names_by_identity"] == [
        [None, "Document"],
        ["document", "Document"],
        ["invoice", "Invoice"],
        ["credit", "Credit"],
    ]


def test_single_table_subclasses_share_their_base_tables(facts: dict[str, Any]) -> None:
    models = facts["models"]
    for name, identity in (("Person", "person"), ("Company", "company")):
        entry = models[name]
        assert entry["single"] is True
        assert entry["root"] == "Party"
        assert (entry["table"], entry["version_table"]) == ("party", "party_version")
        assert entry["levels"] == [["party", "party_version", [0]]]
        assert entry["identities"] == [identity]
        assert entry["discriminator"] == "type"
    assert models["Party"]["single"] is False
    assert models["Party"]["has_subtables"] is False
    assert models["Party"]["names_by_identity"] == [
        [None, "Party"],
        ["party", "Party"],
        ["person", "Person"],
        ["company", "Company"],
    ]


def test_association_tables(facts: dict[str, Any]) -> None:
    assert facts["associations"] == [
        ["article_tag", "article_tag_version", ["article_id", "tag_id"]]
    ]
    assert facts["planned"]["article_tag_version"] == ["article_tag", None]


def test_every_version_table_named_exists_in_the_database(facts: dict[str, Any]) -> None:
    named = {entry["version_table"] for entry in facts["models"].values()}
    named |= {level[1] for entry in facts["models"].values() for level in entry["levels"]}
    named |= {association[1] for association in facts["associations"]}
    # Planned from the declarations alone, the same tables, each named by its base class.
    assert set(facts["planned"]) == named
    assert facts["planned"]["party_version"] == ["party", "Party"]
    assert facts["by_base"]["invoice"] == "invoice_version"
    assert "article_tag" not in facts["by_base"]
    assert named <= set(facts["database_tables"])
