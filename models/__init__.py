"""The reference application's models: a small package index, every model versioned.

Importing this package declares the models and configures versioning, so that
``Base.metadata`` holds every base table, every ``*_version`` table and
``transaction``: what Alembic's autogenerate must see.
"""

from __future__ import annotations

from sqlalchemy_continuum import version_class

from models.base import NAMING_CONVENTION, Base, utc_now
from models.catalog import License, Maintainer, Package, Release, package_maintainer
from vestige.versioning import configure_mappers, versioning_manager

configure_mappers()

Transaction = versioning_manager.transaction_cls
PackageVersion = version_class(Package)
ReleaseVersion = version_class(Release)
MaintainerVersion = version_class(Maintainer)
LicenseVersion = version_class(License)

__all__ = [
    "NAMING_CONVENTION",
    "Base",
    "License",
    "LicenseVersion",
    "Maintainer",
    "MaintainerVersion",
    "Package",
    "PackageVersion",
    "Release",
    "ReleaseVersion",
    "Transaction",
    "package_maintainer",
    "utc_now",
]
