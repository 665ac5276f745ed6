"""A given backup (``--supabase-from-backup``): a backup set with its manifest, or the
Supabase CLI's dump files, whose ``\\restrict`` lines (pg_dump 17.6, 16.10, 15.14, 14.19,
13.22 and later) an older psql cannot replay."""

from __future__ import annotations

import re
from pathlib import Path

from ..config import Config
from ..errors import DrillError
from ..supabase_cli import CLI_FILES, is_cli_dump
from .model import FAIL, INFO, PASS, Check

HEAD_BYTES = 65536  # \restrict is the first command of a dump: its head is enough
# The first minor of each major whose psql knows \restrict.
_RESTRICT_SINCE = {13: 22, 14: 19, 15: 14, 16: 10, 17: 6}
_DUMPED_FROM = re.compile(r"^-- Dumped from database version (\d+)", re.M)


def psql_knows_restrict(version: str) -> bool:
    m = re.match(r"(\d+)(?:\.(\d+))?", version)
    if not m:
        return False
    major, minor = int(m.group(1)), int(m.group(2) or 0)
    return major >= 18 or minor >= _RESTRICT_SINCE.get(major, 10**6)


def _head(path: Path) -> str:
    with path.open("rb") as fh:
        return fh.read(HEAD_BYTES).decode("utf-8", "replace")


def backup_checks(settings: Config) -> list[Check]:
    where = settings.from_backup
    if where is None:
        return []
    if not is_cli_dump(where):
        if (where / "manifest.json").is_file():
            return [Check("backup", PASS, f"backup set {where} (manifest.json present)")]
        return [
            Check(
                "backup",
                FAIL,
                f"{where} holds neither manifest.json nor the CLI's {', '.join(CLI_FILES)}",
                "give the directory of a backup set or of `supabase db dump` files",
            )
        ]
    heads = {name: _head(where / name) for name in CLI_FILES if (where / name).is_file()}
    restricted = [n for n, text in heads.items() if re.search(r"^\\restrict ", text, re.M)]
    if not restricted:
        return [Check("backup", PASS, f"Supabase CLI dump {where}; no \\restrict lines")]
    return [_restrict_check(where, restricted, heads)]


def _restrict_check(where: Path, restricted: list[str], heads: dict[str, str]) -> Check:
    from ..pg.binaries import find_client_tools

    dumped = next((m for t in heads.values() if (m := _DUMPED_FROM.search(t))), None)
    major = int(dumped.group(1)) if dumped else 15
    try:
        psql = find_client_tools(major).version
    except DrillError:
        psql = ""
    found = (
        f"Supabase CLI dump {where}: {', '.join(restricted)} carry \\restrict lines; the "
        "drill comments them out"
    )
    if psql and psql_knows_restrict(psql):
        return Check("backup", PASS, f"{found}; this machine's psql {psql} knows them too")
    return Check(
        "backup",
        INFO,
        f"{found}, but psql {psql or '(none found)'} here would stop at them when you "
        "replay the dump yourself",
        "for your own restores use psql 17.6, 16.10, 15.14 or later",
    )
