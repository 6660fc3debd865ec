"""Finding the application's versioned models by name.

The library never imports the reference models itself: it is pointed at a module
(``--models models`` or ``[tool.vestige] models``), imports it, and looks model names
up in the mapped registry. Names never reach SQL.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.orm.mapper import _all_registries

# Continuum's manager itself, not vestige.versioning's name for it: the registry sits
# below the domains (see [tool.importlinter] in pyproject.toml).
from sqlalchemy_continuum import version_class, versioning_manager

from vestige.errors import ConfigError, ModelNotFound

__all__ = ["VersionedModel", "import_models", "resolve_model", "versioned_models"]


@dataclass(frozen=True)
class VersionedModel:
    """A versioned model and what Vestige needs to know of it.

    Attributes:
        name: The class name, as users type it (``Package``).
        model: The mapped class.
        version_model: Continuum's version class (``PackageVersion``).
        table: The model's base table.
        version_table: Its ``*_version`` table.
    """

    name: str
    model: type[Any]
    version_model: type[Any]
    table: sa.Table
    version_table: sa.Table


BAD_MODULE_NAME = (
    "bad models module name {module!r}: give a dotted Python module name, e.g. app.models "
    "(--models MODULE or [tool.vestige] models)"
)


def import_models(module: str, project_root: Path | None = None) -> ModuleType:
    """Import the models module, with the project directory on ``sys.path``.

    Importing it is expected to declare the models and configure versioning; Vestige
    calls ``configure_mappers()`` afterwards in any case.

    Raises:
        ConfigError: The name is not a module name, or the module cannot be imported.
    """
    if not all(part.isidentifier() for part in module.split(".")):
        raise ConfigError(BAD_MODULE_NAME.format(module=module))
    root = str((project_root or Path.cwd()).resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        imported = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise ConfigError(
                f"cannot import models module {module!r} from {root}; "
                "pass --models MODULE or set [tool.vestige] models"
            ) from None
        raise
    orm.configure_mappers()
    return imported


def versioned_models() -> dict[str, VersionedModel]:
    """Every configured versioned model, by class name, sorted by name."""
    found: dict[str, VersionedModel] = {}
    for model in versioning_manager.version_class_map:
        mapper = sa.inspect(model)
        if mapper.class_ is not model or not isinstance(mapper.local_table, sa.Table):
            continue
        version_model = version_class(model)
        found[model.__name__] = VersionedModel(
            name=model.__name__,
            model=model,
            version_model=version_model,
            table=mapper.local_table,
            version_table=sa.inspect(version_model).local_table,
        )
    return dict(sorted(found.items()))


def resolve_model(name: str) -> VersionedModel:
    """Look a versioned model up by class name (case-insensitive if unambiguous).

    Raises:
        ModelNotFound: No versioned model has that name; the message lists those that do.
    """
    models = versioned_models()
    if name in models:
        return models[name]
    matches = [model for key, model in models.items() if key.lower() == name.lower()]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(models) or "none (is the models module imported?)"
    raise ModelNotFound(f"unknown model {name!r}; versioned models are: {known}")


def mapped_class_names() -> set[str]:
    """Names of every mapped class, versioned or not (for clearer error messages)."""
    return {mapper.class_.__name__ for reg in _all_registries() for mapper in reg.mappers}
