"""Finding the application's versioned models by name.

The library never imports the reference models itself: it is pointed at a module
(``--models models`` or ``[tool.vestige] models``), imports it, and looks model names
up in the catalogue of versioned models (:mod:`vestige.catalogue`, whose
:class:`~vestige.catalogue.VersionedModel` and :func:`~vestige.catalogue.versioned_models`
are re-exported here). Names never reach SQL.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

from sqlalchemy import orm
from sqlalchemy.orm.mapper import _all_registries

from vestige.catalogue import VersionedModel, versioned_models
from vestige.errors import ConfigError, ModelNotFound

__all__ = ["VersionedModel", "import_models", "resolve_model", "versioned_models"]


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
