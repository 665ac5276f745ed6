"""The preflight (``--supabase-dry-run``): everything the drill will need, checked read-only
before a byte is exported, as one table of check, result and fix.

Each concern is a module: :mod:`.source` (connection, tools, privileges, timeouts, slots,
pooler), :mod:`.sizes` (tables and their honest sizes), :mod:`.lint` (what a restore cannot
carry or must switch off), :mod:`.storage` (buckets against the S3 endpoint), :mod:`.staging`
(the target the drill will restore into), :mod:`.plan` (disk need and time estimate) and
:mod:`.notify` (GitHub and Slack settings). Nothing here writes: every database session is
read-only, the object store is only listed, GitHub gets one GET and Slack nothing.
"""

from __future__ import annotations

from .model import FAIL, INFO, PASS, WARN, Check, failed, table_lines
from .run import run_preflight

__all__ = ["FAIL", "INFO", "PASS", "WARN", "Check", "failed", "run_preflight", "table_lines"]
