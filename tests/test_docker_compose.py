"""docker-compose.yml promises what the docs say (Docker itself cannot run here)."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
import yaml

from tests.support.project import ROOT

# where the docs tell users how to start PostgreSQL with docker compose
POSTGRES_PAGE = ROOT / "docs" / "configuration.md"


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _docs_database_url() -> sa.URL:
    page = POSTGRES_PAGE.read_text()
    urls = re.findall(r"export DATABASE_URL=(postgresql\+psycopg2://\S+)", page)
    assert urls, f"{POSTGRES_PAGE.name} exports no PostgreSQL DATABASE_URL"
    assert len(set(urls)) == 1, f"{POSTGRES_PAGE.name} shows different URLs: {set(urls)}"
    return sa.make_url(urls[0])


def test_db_service_is_postgres_16_with_a_healthcheck_and_a_named_volume() -> None:
    compose = _compose()
    db = compose["services"]["db"]
    assert db["image"] == "postgres:16"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    [volume] = db["volumes"]
    name, _, target = volume.partition(":")
    assert target == "/var/lib/postgresql/data"
    assert name in compose["volumes"]


def test_docs_database_url_matches_the_db_service() -> None:
    db = _compose()["services"]["db"]
    url = _docs_database_url()
    env = db["environment"]
    assert (url.username, url.password, url.database) == (
        env["POSTGRES_USER"],
        env["POSTGRES_PASSWORD"],
        env["POSTGRES_DB"],
    )
    assert url.host == "localhost"
    published = [port for port in db["ports"] if port.endswith(":5432")]
    assert published and str(url.port) in published[0]
    assert "docker compose up -d db" in POSTGRES_PAGE.read_text()
    assert "docker compose up -d db" in (ROOT / "README.md").read_text()


def test_pruner_runs_the_json_prune_on_an_interval_against_the_db_service() -> None:
    services = _compose()["services"]
    pruner, db = services["pruner"], services["db"]
    assert pruner["depends_on"]["db"]["condition"] == "service_healthy"
    assert (ROOT / pruner["build"] / "Dockerfile").is_file()
    env = pruner["environment"]
    assert "VESTIGE_PRUNE_INTERVAL" in env
    default_url = re.fullmatch(r"\$\{PRUNER_DATABASE_URL:-(.+)\}", env["DATABASE_URL"])
    assert default_url, env["DATABASE_URL"]
    url = sa.make_url(default_url.group(1))
    assert url.host == "db" and url.port == 5432
    assert (url.username, url.password, url.database) == (
        db["environment"]["POSTGRES_USER"],
        db["environment"]["POSTGRES_PASSWORD"],
        db["environment"]["POSTGRES_DB"],
    )
    script = " ".join(pruner["command"])
    assert "vestige prune --yes --json" in script
    assert 'sleep "$${VESTIGE_PRUNE_INTERVAL}"' in script  # $$: compose passes one $ to sh


def test_every_pruner_recipe_takes_the_archive_url() -> None:
    """compose passes VESTIGE_ARCHIVE_URL (empty: no archive) and mounts a volume for it;
    the docs' cron, systemd and Kubernetes recipes and scripts/prune set or pass it."""
    compose = _compose()
    pruner = compose["services"]["pruner"]
    assert pruner["environment"]["VESTIGE_ARCHIVE_URL"] == "${VESTIGE_ARCHIVE_URL:-}"
    [volume] = [v for v in pruner["volumes"] if v.endswith(":/archive")]
    name, _, target = volume.partition(":")
    assert name in compose["volumes"] and target == "/archive"
    page = (ROOT / "docs" / "retention.md").read_text()
    scheduling = page.split("## Scheduling", 1)[1].split("\n## ", 1)[0]
    assert "VESTIGE_ARCHIVE_URL=/archive docker compose up -d pruner" in scheduling
    assert re.search(r"^17 3 .*VESTIGE_ARCHIVE_URL=\S+ .*vestige prune --yes", scheduling, re.M)
    assert "Environment=VESTIGE_ARCHIVE_URL=" in scheduling
    assert "- name: VESTIGE_ARCHIVE_URL" in scheduling
    assert "VESTIGE_ARCHIVE_URL" in (ROOT / "scripts" / "prune").read_text()
    assert "[archive]" in (ROOT / "Dockerfile").read_text()


RETENTION_PAGE = ROOT / "docs" / "retention.md"


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each line of a Dockerfile, comments dropped."""
    lines = [line.strip() for line in text.splitlines()]
    return [
        (word.upper(), rest.split("#")[0].strip())
        for word, _, rest in (line.partition(" ") for line in lines if line and line[0] != "#")
    ]


def _final_workdir(instructions: list[tuple[str, str]]) -> str:
    return [args for word, args in instructions if word == "WORKDIR"][-1]


def test_pruner_takes_the_application_from_the_mounted_directory() -> None:
    """The compose file mounts the application where the image looks for it (the docs'
    promise): the image's working directory, which is on PYTHONPATH."""
    image = _dockerfile_instructions((ROOT / "Dockerfile").read_text())
    app_dir = _final_workdir(image)
    env = " ".join(args for word, args in image if word == "ENV")
    assert f"PYTHONPATH={app_dir}" in env
    # the image carries the reference application there: its settings and models
    copied = [args.split() for word, args in image if word == "COPY"]
    after_workdir = copied[-2:]
    assert after_workdir == [["pyproject.toml", "./"], ["models", "./models"]]
    assert all((ROOT / source).exists() for source, _ in after_workdir)

    pruner = _compose()["services"]["pruner"]
    [volume] = [v for v in pruner["volumes"] if v.startswith("${VESTIGE_APP_DIR")]
    source, target, mode = volume.rsplit(":", 2)
    assert source == "${VESTIGE_APP_DIR:-.}" and target == app_dir and mode == "ro"
    assert pruner["environment"]["VESTIGE_MODELS"] == "${VESTIGE_MODELS:-}"
    page = RETENTION_PAGE.read_text()
    assert "VESTIGE_APP_DIR=../blog VESTIGE_MODELS=blog.models docker compose up -d pruner" in page
    assert f"`{app_dir}`" in page


def test_docs_image_built_from_vestiges_copies_into_its_working_directory() -> None:
    page = RETENTION_PAGE.read_text()
    [snippet] = re.findall(r"```dockerfile\n(.*?)```", page, re.DOTALL)
    derived = _dockerfile_instructions(snippet)
    [tag] = re.findall(r"docker build -t (\S+) \.", page)
    assert derived[0] == ("FROM", tag)
    # no WORKDIR of its own: its COPY lines land in the base image's /app, on PYTHONPATH
    assert "WORKDIR" not in {word for word, _ in derived}
    copied = {args.split()[-1] for word, args in derived if word == "COPY"}
    assert "./" in copied and any(target.startswith("./") and target != "./" for target in copied)
    env = dict(args.split("=", 1) for word, args in derived if word == "ENV")
    assert env["VESTIGE_MODELS"] == "blog.models"
    assert derived[-1] == ("CMD", '["vestige", "prune", "--yes", "--json"]')


def test_prune_reads_the_models_module_from_vestige_models() -> None:
    from click.testing import CliRunner

    from vestige.cli import app

    result = CliRunner().invoke(app, ["prune", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "VESTIGE_MODELS" in result.output
    # and uses it: a module that does not exist is named in the error
    env = {"VESTIGE_MODELS": "no_such_app.models", "DATABASE_URL": "sqlite://"}
    result = CliRunner().invoke(app, ["prune", "--dry-run"], env=env)
    assert result.exit_code == 2
    assert "cannot import models module 'no_such_app.models'" in result.output
