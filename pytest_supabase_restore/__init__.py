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

QUICK_CATEGORIES: tuple[str, ...] = (
    "api_connectivity",
    "database_schema",
    "crud_operations",
    "authentication",
    "performance",
)
"""The categories whose cost does not grow with the data: a quick check runs only these
(``-m supabase_quick`` or ``--supabase-quick``). The others re-fingerprint every table
(data_integrity), download and hash every object (storage) or scan every foreign key and
index (data_consistency)."""

__all__ = ["CATEGORIES", "QUICK_CATEGORIES", "__version__"]
