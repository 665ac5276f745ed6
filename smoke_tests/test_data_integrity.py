"""data_integrity: every table holds exactly the rows the backup recorded.

Row count and an order-independent fingerprint of every row: at backup time of the COPY
lines pg_dump wrote, here of the same COPY read from the restored copy under pg_dump's
session settings (older backups: the same SQL on both sides); on a mismatch the message
names the primary-key ranges that differ, with their row counts, never the rows themselves.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from pytest_supabase_restore.proof.fingerprint import compare_table
from pytest_supabase_restore.results import DrillState
from pytest_supabase_restore.smoke_tests._support import Facts, resolve_relation

pytestmark = pytest.mark.supabase_category("data_integrity")


def test_table_fingerprint(
    integrity_table: str,
    facts: Facts,
    pinned_db: psycopg.Connection[Any],
    drill_fact: Any,
    drill_state: DrillState,
) -> None:
    """The table's row count and fingerprint equal what the backup recorded."""
    altered = drill_state.altered_tables.get(integrity_table)
    if altered is not None:
        pytest.skip(f"not tested: {integrity_table}: {altered}")
    entry = facts.tables[integrity_table]
    if resolve_relation(pinned_db, integrity_table) is None:
        pytest.fail(
            f"{integrity_table}: missing from the restored copy "
            f"(the backup recorded {entry.rows} rows)",
            pytrace=False,
        )
    if entry.fingerprint is None:
        pytest.skip(f"not tested: the backup recorded no fingerprint of {integrity_table}")
    result = compare_table(pinned_db, entry.ref, entry.fingerprint)
    drill_fact("rows", result.actual_rows)
    if not result.ok:
        pytest.fail(result.message, pytrace=False)
