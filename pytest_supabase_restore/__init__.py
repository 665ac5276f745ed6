"""pytest-supabase-restore: prove that a Supabase project's backups restore.

The plugin exports the source database and every Storage object into a backup set,
restores it into a disposable staging instance, and runs eight categories of smoke tests
that compare the restored copy against what was backed up.
"""

from __future__ import annotations

__version__ = "0.1.0"

CATEGORIES: tuple[str, ...] = (
    "api_connectivity",
    "database_schema",
    "data_integrity",
    "crud_operations",
    "authentication",
    "storage",
    "performance",
    "data_consistency",
)
"""The eight smoke-test categories, in the order the verdict lists them (a contract)."""

__all__ = ["CATEGORIES", "__version__"]
