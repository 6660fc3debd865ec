"""``vestige init``: set Vestige up in an application's Alembic environment.

The plan is made in memory first (:func:`plan_init`), as the files' text before and
after, so that ``--dry-run`` can show it as a unified diff and a real run writes exactly
that (:meth:`InitPlan.apply`). It touches at most:

- ``env.py``: the models import, ``configure_mappers()``, the version-table guard,
  the settings (the database URL from ``sqlalchemy.url``, ``DATABASE_URL``,
  ``[tool.vestige] database_url`` or ``vestige.db``), batch mode on SQLite,
  :func:`~vestige.migrations.comparison_options` and the connection a test harness
  hands over in ``config.attributes["connection"]``;
- ``alembic.ini``: the templates' placeholder ``sqlalchemy.url`` is commented out, so
  that the URL comes from the settings;
- ``pyproject.toml``: ``[tool.vestige] models``.

Without an Alembic set-up it makes one first, as ``alembic init -t TEMPLATE
migrations`` would. ``env.py`` is edited at the statements Alembic's templates write
(``generic``, ``pyproject``, ``async``, ``pyproject_async``); one that lacks them, or
the ``multidb`` template's, is refused with one line and nothing is written. An
``env.py`` that already calls ``check_version_tables`` is left as it is, so a second
run changes nothing.

About 580 lines in one module: the plan and the text edits it is made of, one small
function per statement edited, kept beside the plan that orders them.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import io
import re
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from vestige.errors import ConfigError
from vestige.registry import import_models, versioned_models

__all__ = [
    "CREATED_TEMPLATES",
    "FileChange",
    "InitPlan",
    "NotRecognised",
    "init_project",
    "plan_init",
    "vestige_env_py",
]

#: The templates ``vestige init`` can create, and edit once ``alembic init`` made them.
CREATED_TEMPLATES = ("generic", "pyproject", "async", "pyproject_async")
MIGRATIONS_DIRECTORY = "migrations"
MARKER = "check_version_tables"
PLACEHOLDER_URL = "driver://user:pass@localhost/dbname"

NOT_RECOGNISED = (
    "cannot set up {env_py}: {reason}; nothing was changed. Add Vestige's lines by hand "
    "(see docs/init.md, By hand)"
)
MULTIDB = "it runs several databases (Alembic's multidb template), which vestige init does not edit"
MISSING = "it has no {what}, which Alembic's templates write"
TWICE = "it has more than one {what}"
NO_MODELS = (
    "cannot tell which module declares the versioned models ({found}); "
    "pass --models MODULE, e.g. --models app.models"
)
NO_BASE = (
    "{module} has no module-level declarative base (or MetaData) holding its versioned "
    "models; declare one (class Base(DeclarativeBase)) and run vestige init again"
)
NO_SCRIPT_LOCATION = "the Alembic scripts directory of {root} cannot be read: {reason}"


class NotRecognised(ConfigError):
    """``env.py`` (or the Alembic set-up) is not one ``vestige init`` can edit safely."""

    def __init__(self, env_py: Path | str, reason: str) -> None:
        super().__init__(NOT_RECOGNISED.format(env_py=env_py, reason=reason))
        self.reason = reason


@dataclass(frozen=True)
class FileChange:
    """One file's text before and after (``before`` is ``None`` for a new file)."""

    path: Path
    before: str | None
    after: str

    def diff(self, root: Path) -> str:
        """The change as a unified diff, paths relative to ``root``."""
        name = _relative(self.path, root)
        lines = difflib.unified_diff(
            (self.before or "").splitlines(keepends=True),
            self.after.splitlines(keepends=True),
            fromfile="/dev/null" if self.before is None else f"a/{name}",
            tofile=f"b/{name}",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


@dataclass(frozen=True)
class InitPlan:
    """What ``vestige init`` would do to a project.

    Attributes:
        root: The project directory.
        models: The models module ``env.py`` imports and ``[tool.vestige] models`` names.
        changes: The files written, in order; empty when the project is set up already.
        directories: Directories created (the new Alembic set-up's ``versions``).
        template: The Alembic template a new set-up is made from, else ``None``.
    """

    root: Path
    models: str
    changes: tuple[FileChange, ...] = ()
    directories: tuple[Path, ...] = ()
    template: str | None = None

    def diff(self) -> str:
        """Every change as one unified diff."""
        return "".join(change.diff(self.root) for change in self.changes)

    def apply(self) -> None:
        """Write the plan: create the directories, then write each file whole."""
        for directory in self.directories:
            directory.mkdir(parents=True, exist_ok=True)
        for change in self.changes:
            change.path.parent.mkdir(parents=True, exist_ok=True)
            change.path.write_text(change.after, encoding="utf-8")

    def lines(self) -> list[str]:
        """One line per file: ``created PATH`` or ``changed PATH``."""
        verbs = {True: "created", False: "changed"}
        return [
            f"{verbs[change.before is None]} {_relative(change.path, self.root)}"
            for change in self.changes
        ]


def init_project(root: Path, models: str | None = None, *, template: str | None = None) -> InitPlan:
    """Set Vestige up in the project at ``root`` and return what was done.

    Args:
        root: The project directory (where ``pyproject.toml`` and ``alembic.ini`` are).
        models: The module that declares the versioned models; by default
            ``[tool.vestige] models``, else the one ``models.py`` (or ``*/models.py``).
        template: The Alembic template of a set-up made from scratch (default
            ``pyproject`` when there is a ``pyproject.toml``, else ``generic``).

    Raises:
        NotRecognised: ``env.py`` cannot be edited safely; nothing was written.
        ConfigError: The models module is unknown or cannot be imported.
    """
    plan = plan_init(root, models, template=template)
    plan.apply()
    return plan


def plan_init(root: Path, models: str | None = None, *, template: str | None = None) -> InitPlan:
    """What :func:`init_project` would write, without writing anything.

    Imports the models module (to find its metadata), as ``alembic`` and ``vestige``
    will.
    """
    root = root.resolve()
    pyproject = root / "pyproject.toml"
    pyproject_text = pyproject.read_text(encoding="utf-8") if pyproject.is_file() else None
    module = models or _configured_models(pyproject_text) or _detect_models(root)
    metadata_expression = _metadata_expression(module, root)

    files: dict[Path, str | None] = {}  # path -> text before (None: new)
    texts: dict[Path, str] = {}  # path -> text after
    directories: tuple[Path, ...] = ()
    made_with: str | None = None
    if _has_alembic(root, pyproject_text):
        env_py = _env_py(root)
        ini = root / "alembic.ini"
        for path in (env_py, ini):
            if path.is_file():
                files[path] = texts[path] = path.read_text(encoding="utf-8")
    else:
        made_with = template or ("pyproject" if pyproject_text is not None else "generic")
        created, directories = _alembic_init(root, pyproject_text, made_with)
        for path, text in created.items():
            files[path] = pyproject_text if path == pyproject else None
            texts[path] = text
        env_py = root / MIGRATIONS_DIRECTORY / "env.py"
    if pyproject not in texts:
        files[pyproject] = pyproject_text
        texts[pyproject] = pyproject_text or ""

    texts[env_py] = vestige_env_py(
        texts[env_py], module, metadata_expression, name=_relative(env_py, root)
    )
    ini = root / "alembic.ini"
    if ini in texts:
        texts[ini] = _comment_placeholder_url(texts[ini])
    texts[pyproject] = _with_models_setting(texts[pyproject], module)

    changes = tuple(
        FileChange(path, files[path], texts[path])
        for path in sorted(texts, key=lambda p: _relative(p, root))
        if files[path] != texts[path]
    )
    return InitPlan(
        root=root, models=module, changes=changes, directories=directories, template=made_with
    )


# --- env.py -------------------------------------------------------------------------------

_TARGET_METADATA = re.compile(r"^target_metadata\s*=.*\n", re.MULTILINE)
_CONTEXT_IMPORT = re.compile(r"^from alembic import context\n", re.MULTILINE)
_OFFLINE_URL = re.compile(
    r"""^(?P<indent>[ \t]+)url = config\.get_main_option\(["']sqlalchemy\.url["']\)\n""",
    re.MULTILINE,
)
_SECTION = re.compile(
    r"^(?P<indent>[ \t]+)config\.get_section\(\s*config\.config_ini_section,\s*\{\}\s*\),\n",
    re.MULTILINE,
)
_SYNC_ENGINE = re.compile(r"connectable = engine_from_config\(")
_SYNC_CONNECT = re.compile(r"with connectable\.connect\(\) as connection:")
_ASYNC_RUN = re.compile(
    r"^(?P<indent>[ \t]+)asyncio\.run\(run_async_migrations\(\)\)\n", re.MULTILINE
)
_CONFIGURE = re.compile(r"^(?P<indent>[ \t]*)context\.configure\(", re.MULTILINE)


def vestige_env_py(text: str, models: str, metadata: str, *, name: str = "env.py") -> str:
    """``env.py`` as Alembic's templates write it, with what Vestige needs added.

    Args:
        text: The file's text.
        models: The models module to import.
        metadata: The expression naming the models' metadata, e.g. ``app.models.Base.metadata``.
        name: The file's name in messages.

    Returns:
        The new text; ``text`` itself when it already calls ``check_version_tables``.

    Raises:
        NotRecognised: A statement the edits need is missing or repeated, or it is the
            ``multidb`` template's.
    """
    if MARKER in text:
        return text
    if "db_names" in text or "engines[" in text:
        raise NotRecognised(name, MULTIDB)

    def one(pattern: re.Pattern[str], what: str, source: str) -> re.Match[str]:
        found = list(pattern.finditer(source))
        if not found:
            raise NotRecognised(name, MISSING.format(what=what))
        if len(found) > 1:
            raise NotRecognised(name, TWICE.format(what=what))
        return found[0]

    one(_CONTEXT_IMPORT, "'from alembic import context'", text)
    one(_TARGET_METADATA, "module-level 'target_metadata = ...'", text)
    one(_OFFLINE_URL, "'url = config.get_main_option(\"sqlalchemy.url\")'", text)
    one(_SECTION, "engine made from 'config.get_section(config.config_ini_section, {})'", text)
    is_async = "async_engine_from_config" in text
    if is_async:
        one(_ASYNC_RUN, "'asyncio.run(run_async_migrations())'", text)
        if "def do_run_migrations(connection" not in text:
            raise NotRecognised(name, MISSING.format(what="do_run_migrations(connection)"))
    else:
        one(_SYNC_ENGINE, "'connectable = engine_from_config('", text)
        one(_SYNC_CONNECT, "'with connectable.connect() as connection:'", text)

    text = _CONTEXT_IMPORT.sub(lambda m: m.group(0) + _imports(models), text)
    text = _TARGET_METADATA.sub(lambda m: _metadata_block(metadata), text)
    text = _OFFLINE_URL.sub(lambda m: f"{m['indent']}url = settings.database_url\n", text)
    text = _SECTION.sub(_section_with_url, text)
    if is_async:
        text = _ASYNC_RUN.sub(_async_handed_connection, text)
    else:
        text = _SYNC_ENGINE.sub(
            'connectable = config.attributes.get("connection") or engine_from_config(', text
        )
        text = _SYNC_CONNECT.sub("with connection_from(connectable) as connection:", text)
    return _with_configure_options(text, name)


def _imports(models: str) -> str:
    return (
        "from sqlalchemy.orm import configure_mappers\n"
        "\n"
        f"import {models}\n"
        "from vestige.config import load_settings\n"
        "from vestige.migrations import check_version_tables, comparison_options, "
        "connection_from\n"
    )


def _metadata_block(metadata: str) -> str:
    return (
        "# Vestige: the models, and the version tables Continuum adds once the mappers are\n"
        "# configured; the guard stops autogenerate before it could propose dropping them.\n"
        "configure_mappers()\n"
        f"target_metadata = {metadata}\n"
        "check_version_tables(target_metadata)\n"
        "# The database URL: sqlalchemy.url if set, else DATABASE_URL, else\n"
        "# [tool.vestige] database_url, else vestige.db (see vestige.config.database_url).\n"
        "settings = load_settings(\n"
        '    database_url=config.get_section(config.config_ini_section, {}).get("sqlalchemy.url")\n'
        ")\n"
    )


def _section_with_url(match: re.Match[str]) -> str:
    indent = match["indent"]
    return (
        f"{indent}{{\n"
        f"{indent}    **config.get_section(config.config_ini_section, {{}}),\n"
        f'{indent}    "sqlalchemy.url": settings.database_url,\n'
        f"{indent}}},\n"
    )


def _async_handed_connection(match: re.Match[str]) -> str:
    indent = match["indent"]
    return (
        f"{indent}# a test harness (vestige.testing, pytest-alembic) hands over its own\n"
        f'{indent}connectable = config.attributes.get("connection")\n'
        f"{indent}if connectable is None:\n"
        f"{indent}    asyncio.run(run_async_migrations())\n"
        f"{indent}    return\n"
        f"{indent}with connection_from(connectable) as connection:\n"
        f"{indent}    do_run_migrations(connection)\n"
    )


def _with_configure_options(text: str, name: str) -> str:
    """Every ``context.configure(...)`` call gets batch mode and Vestige's options."""
    pieces: list[str] = []
    position = 0
    kinds: set[str] = set()
    for match in _CONFIGURE.finditer(text):
        open_at = match.end()
        close_at = _closing_paren(text, open_at - 1)
        if close_at is None:
            raise NotRecognised(name, MISSING.format(what="closing ')' of context.configure("))
        arguments = text[open_at:close_at].strip().rstrip(",").strip()
        if re.search(r"\bconnection\s*=\s*connection\b", arguments):
            batch = 'connection.dialect.name == "sqlite"'
            kinds.add("connection")
        elif re.search(r"\burl\s*=\s*url\b", arguments):
            batch = 'url.startswith("sqlite")'
            kinds.add("url")
        else:
            raise NotRecognised(
                name, "a context.configure() call passes neither connection=nor url="
            )
        indent = match["indent"]
        inner = "\n".join(
            f"{indent}    {line.strip()}" for line in _one_per_line(arguments) if line.strip()
        )
        pieces.append(text[position : match.start()])
        pieces.append(
            f"{indent}context.configure(\n{inner},\n"
            f"{indent}    render_as_batch={batch},\n"
            f"{indent}    **comparison_options(target_metadata, settings),\n"
            f"{indent})"
        )
        position = close_at + 1
    for kind in ("url", "connection"):
        if kind not in kinds:
            raise NotRecognised(name, MISSING.format(what=f"context.configure({kind}={kind}, ...)"))
    pieces.append(text[position:])
    return "".join(pieces)


def _one_per_line(arguments: str) -> list[str]:
    """Arguments written on one line, split at their top-level commas; others as written."""
    if "\n" in arguments:
        return arguments.splitlines()
    parts: list[str] = []
    depth = start = 0
    for index, char in enumerate(arguments):
        depth += (char in "([{") - (char in ")]}")
        if char == "," and depth == 0:
            parts.append(arguments[start:index] + ",")
            start = index + 1
    return [*parts, arguments[start:]]


def _closing_paren(text: str, open_at: int) -> int | None:
    depth = 0
    for index in range(open_at, len(text)):
        char = text[index]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return index
    return None


# --- alembic.ini, pyproject.toml -------------------------------------------------------------

_PLACEHOLDER = re.compile(
    r"^sqlalchemy\.url\s*=\s*" + re.escape(PLACEHOLDER_URL) + r"[ \t]*$", re.MULTILINE
)


def _comment_placeholder_url(text: str) -> str:
    return _PLACEHOLDER.sub(
        "# vestige init: env.py takes the URL from DATABASE_URL, else [tool.vestige]\n"
        "# database_url; a URL set here would win over both.\n"
        f"# sqlalchemy.url = {PLACEHOLDER_URL}",
        text,
    )


def _with_models_setting(text: str, models: str) -> str:
    """``pyproject.toml`` with ``[tool.vestige] models = MODULE`` (the rest kept as it was)."""
    setting = f'models = "{models}"'
    lines = text.splitlines(keepends=True)
    header = next((i for i, line in enumerate(lines) if line.strip() == "[tool.vestige]"), None)
    if header is None:
        separator = "" if not text else ("\n" if text.endswith("\n") else "\n\n")
        return (
            f"{text}{separator}[tool.vestige]\n{setting}\n"
            '# database_url = "postgresql+psycopg2://user@localhost/app"  '
            "# DATABASE_URL wins; default vestige.db\n"
        )
    end = next(
        (i for i in range(header + 1, len(lines)) if lines[i].lstrip().startswith("[")),
        len(lines),
    )
    for index in range(header + 1, end):
        if re.match(r"\s*models\s*=", lines[index]):
            current = tomllib.loads(lines[index]).get("models")
            if current == models:
                return text
            lines[index] = setting + "\n"
            return "".join(lines)
    lines.insert(header + 1, setting + "\n")
    return "".join(lines)


# --- finding things -------------------------------------------------------------------------


def _configured_models(pyproject_text: str | None) -> str | None:
    if pyproject_text is None:
        return None
    try:
        table = tomllib.loads(pyproject_text).get("tool", {}).get("vestige", {})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"pyproject.toml is not valid TOML: {exc}") from None
    value = table.get("models") if isinstance(table, dict) else None
    return value if isinstance(value, str) else None


_SKIPPED_DIRECTORIES = frozenset({"migrations", "alembic", "tests", "test", "node_modules"})


def _detect_models(root: Path) -> str:
    found: list[str] = []
    if (root / "models.py").is_file() or (root / "models" / "__init__.py").is_file():
        found.append("models")
    for directory in sorted(root.iterdir()):
        if (
            not directory.is_dir()
            or directory.name.startswith(".")
            or directory.name in _SKIPPED_DIRECTORIES
            or not directory.name.isidentifier()
            or directory.name == "models"
        ):
            continue
        if (directory / "models.py").is_file() or (directory / "models" / "__init__.py").is_file():
            found.append(f"{directory.name}.models")
    if len(found) != 1:
        raise ConfigError(
            NO_MODELS.format(found=", ".join(found) + " found" if found else "no models.py found")
        )
    return found[0]


def _metadata_expression(module: str, root: Path) -> str:
    """``MODULE.Base.metadata`` (or whichever module-level name holds the metadata)."""
    imported = import_models(module, root)
    metadatas = {
        id(m.table.metadata): m.table.metadata
        for m in versioned_models().values()
        if m.model.__module__ == module or m.model.__module__.startswith(module + ".")
    }
    if len(metadatas) != 1:
        raise ConfigError(NO_BASE.format(module=module))
    metadata = next(iter(metadatas.values()))
    names: list[tuple[int, str]] = []
    for attribute, value in vars(imported).items():
        if value is metadata:
            names.append((1, f"{module}.{attribute}"))
        elif isinstance(value, type) and getattr(value, "metadata", None) is metadata:
            if "__mapper__" in vars(value) or getattr(value, "__table__", None) is not None:
                continue  # a mapped class, not the base
            names.append((0 if attribute == "Base" else 2, f"{module}.{attribute}.metadata"))
    if not names:
        raise ConfigError(NO_BASE.format(module=module))
    return min(names)[1]


def _has_alembic(root: Path, pyproject_text: str | None) -> bool:
    if (root / "alembic.ini").is_file():
        return True
    if pyproject_text is None:
        return False
    data: dict[str, Any] = tomllib.loads(pyproject_text)
    return "alembic" in data.get("tool", {})


def _env_py(root: Path) -> Path:
    from vestige.migrations.check import project_alembic_config

    config = project_alembic_config(root, config_files=_config_files(root))
    try:
        directory = Path(ScriptDirectory.from_config(config).dir)
    except CommandError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(NO_SCRIPT_LOCATION.format(root=root, reason=reason)) from None
    env_py = directory / "env.py"
    if not env_py.is_file():
        raise NotRecognised(env_py, "the file does not exist")
    return env_py


def _config_files(root: Path) -> tuple[str, ...]:
    return tuple(
        str(root / name) for name in ("alembic.ini", "pyproject.toml") if (root / name).is_file()
    )


def _alembic_init(
    root: Path, pyproject_text: str | None, template: str
) -> tuple[dict[Path, str], tuple[Path, ...]]:
    """The files ``alembic init -t TEMPLATE migrations`` would write in ``root``.

    Alembic writes them into a scratch directory (with a copy of ``pyproject.toml``,
    which the ``pyproject`` templates extend); they are returned as text.
    """
    if template not in CREATED_TEMPLATES:
        raise ConfigError(
            f"unknown template {template!r}: choose one of {', '.join(CREATED_TEMPLATES)}"
        )
    with tempfile.TemporaryDirectory(prefix="vestige-init-") as scratch_name:
        scratch = Path(scratch_name)
        if pyproject_text is not None:
            (scratch / "pyproject.toml").write_text(pyproject_text, encoding="utf-8")
        config = Config(
            file_=str(scratch / "alembic.ini"),
            toml_file=str(scratch / "pyproject.toml"),
            cmd_opts=argparse.Namespace(quiet=True),
        )
        with contextlib.redirect_stdout(io.StringIO()), contextlib.chdir(scratch):
            command.init(config, MIGRATIONS_DIRECTORY, template=template)
        created = {
            root / path.relative_to(scratch): path.read_text(encoding="utf-8")
            for path in sorted(scratch.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts
        }
    return created, (root / MIGRATIONS_DIRECTORY / "versions",)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)
