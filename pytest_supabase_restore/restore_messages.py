"""The messages of a restore: which are expected for the target (and why), which fail it.

Every error pg_restore, the role statements or a plain SQL dump report is kept with its
statement (redacted, then shortened) and classified: expected for this target, with the
reason (an extension it cannot install, what the platform SQL of a fresh Supabase project
already created, a setting an older server lacks), or a real failure that fails the drill.
A target that fails as a whole (disk full, server gone) ends the restore at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .errors import RestoreError
from .extdeps import mark_extension_dependents
from .pgtools import CONNECTION_LOST, NO_SPACE, first_error
from .redact import Redactor, shorten
from .results import RestoreIssue
from .toc import ObjectIndex, TocEntry

if TYPE_CHECKING:
    from .restore import RestoreOutcome

# Characters of a failed statement kept with its error: the whole statement, unless it is
# very long (a function body); the reports shorten it further (restore_report).
STATEMENT_LIMIT = 4000


def excerpt(redactor: Redactor | None, statement: str, limit: int = STATEMENT_LIMIT) -> str:
    """A failed statement as kept with its error: redacted, then shortened in the middle.

    Redacted first because a cut through a secret (a connection string in a function body,
    a user mapping's password) would leave a prefix that no rule matches any more. Without
    the run's redactor, the URL, ``password=`` and token rules still apply."""
    redacted = (redactor or Redactor()).redact(statement)
    return shorten(" ".join(redacted.split()), limit, middle=True)


_ERROR_BLOCK = re.compile(
    r"pg_restore: error: (?:could not execute query: )?(?P<msg>.*?)\n(?:Command was: (?P<cmd>.*?))?(?=\npg_restore:|\Z)",
    re.S,
)
_PREFIX_PIECE = r"pg_restore: ?|error: "
_QUERY_FAILED_MARK = "\x00query-failed\x00"
_MISSING_EXTENSION = re.compile(
    r'(could not open extension control file ".*?/(?P<a>[^/]+)\.control"|extension "(?P<b>[^"]+)" is not available)'
)
# pg_dump and pg_restore 17+ start every session with ``SET transaction_timeout = 0;``. A
# PostgreSQL 15 or 16 target (a newer client restoring into the source's own older major)
# has no such setting: the statement fails, and there is no timeout to turn off.
_OLDER_SERVER_SETTING = re.compile(r'unrecognized configuration parameter "transaction_timeout"')
_OLDER_SERVER_SET = re.compile(r"\s*SET transaction_timeout = 0;?\s*$")


# What the platform SQL of a fresh Supabase project (staging.platform) creates before the
# restore and a backup's dump creates again: the same object, so "already exists" is the
# platform's doing, on every target.
_PLATFORM_EVENT_TRIGGERS = (
    r"(?:issue_pg_cron_access|issue_pg_net_access|issue_pg_graphql_access|"
    r"issue_graphql_placeholder|pgrst_ddl_watch|pgrst_drop_watch)"
)
_PLATFORM_CREATED = re.compile(
    rf'(publication "supabase_realtime"|event trigger "{_PLATFORM_EVENT_TRIGGERS}"|'
    r'schema "(?:extensions|graphql_public|realtime|pgbouncer)") already exists'
)
# Projects created before supabase/postgres 20250402065937 have issue_pg_net_access owned by
# postgres (post-setup ran while postgres was still a superuser; the demotion left the
# owner). An event trigger's owner must be a superuser, which postgres no longer is, so
# staging keeps the platform's trigger with a superuser, as the platform itself now does.
_PLATFORM_TRIGGER_OWNER = re.compile(
    rf'permission denied to change owner of event trigger "{_PLATFORM_EVENT_TRIGGERS}"'
)


def fatal_restore_error(phase: str, message: str) -> RestoreError | None:
    """A RestoreError when the target itself failed (full disk, server gone), else None.

    Those end the restore at once: every later statement would fail the same way, and the
    cause, not a thousand consequences, is what the report must name.
    """
    first = first_error(message).strip()
    for line in message.splitlines():
        if NO_SPACE in line or CONNECTION_LOST.search(line):
            first = line.strip()
            break
    if NO_SPACE in message:
        return RestoreError(
            f"The staging target ran out of disk space during the restore ({phase}): {first}. "
            "Fix: give the staging database more disk (ephemeral target: point TMPDIR at a "
            "larger disk)."
        )
    if CONNECTION_LOST.search(message):
        return RestoreError(
            f"The staging server stopped answering during the restore ({phase}): {first}. "
            "It crashed, was stopped or ran out of resources; nothing after this point was "
            "restored."
        )
    return None


def classify(
    message: str, statement: str, *, platform_present: bool
) -> tuple[bool, str, str | None]:
    """(expected?, reason, not-restorable item) for one restore error."""
    if _OLDER_SERVER_SETTING.search(message) and _OLDER_SERVER_SET.match(statement):
        return True, "pg_restore 17+ turns off a timeout this older server does not have", None
    missing = _MISSING_EXTENSION.search(message)
    if missing:
        name = missing.group("a") or missing.group("b")
        return True, f"extension {name} is not installed in this target", f"extension {name}"
    if _PLATFORM_CREATED.search(message):
        return True, "a fresh Supabase project already has it (the platform creates it)", None
    if _PLATFORM_TRIGGER_OWNER.search(message):
        return (
            True,
            "a platform event trigger's owner must be a superuser; staging keeps it with "
            "supabase_admin, as Supabase does since 2025-04",
            None,
        )
    if "COMMENT ON EXTENSION" in statement and "must be owner" in message:
        return True, "extension comments belong to the platform", None
    if platform_present and "already exists" in message:
        return True, "the platform already created this object in the target", None
    if platform_present and re.search(r"supabase_admin|must be owner", message):
        return True, "owned by a platform role the restore may not act as", None
    return False, "", None


def _record(
    out: RestoreOutcome,
    raw: list[tuple[str, str]],
    platform_present: bool,
    *,
    toc: Sequence[TocEntry] = (),
    extensions: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
) -> None:
    """Classify every (message, statement) the restore produced into ``out``.

    Each error is tied to the object its statement is about (with the archive's ``toc``
    where there is one). Then, for every extension the target could not create, the errors
    it caused are expected too: those naming what it provides (``extensions``: the
    manifest's member lists, see :func:`.extdeps.members_from_manifest`) and, in cascade,
    those on objects that need an object which already failed that way."""
    index = ObjectIndex(toc)
    objects = []
    for message, statement in raw:
        expected, reason, item = classify(message, statement, platform_present=platform_present)
        obj = index.object_of(statement)
        objects.append(obj)
        out.issues.append(
            RestoreIssue(
                statement=statement,
                message=message,
                expected=expected,
                reason=reason,
                object=obj.label if obj is not None else "",
                extension=item.removeprefix("extension ") if item else "",
            )
        )
        if item and item not in out.not_restorable:
            out.not_restorable.append(item)
    out.extension_dependents = mark_extension_dependents(
        out.issues, objects, out.not_restorable, extensions or {}
    )


def parse_pg_restore_errors(stderr: str, redactor: Redactor | None = None) -> list[tuple[str, str]]:
    """(message, statement) pairs from pg_restore's stderr."""
    # Parallel workers share stderr, and each message is three writes ("pg_restore: ",
    # "error: ", then the text), so one worker's pieces land anywhere among another's. The
    # text of a failed statement is one write that starts "could not execute query: ": it
    # starts an error wherever it stands, and prefix pieces left elsewhere are dropped.
    stderr = re.sub(rf"(?:{_PREFIX_PIECE})*could not execute query: ", _QUERY_FAILED_MARK, stderr)
    stderr = re.sub(r"(?<=[^\n])(?=pg_restore:)", "\n", stderr)  # one starts a line
    stderr = re.sub(rf"(?:{_PREFIX_PIECE})+$", "", stderr, flags=re.M)  # pieces, no text
    stderr = re.sub(r"^(?=error: )", "pg_restore: ", stderr, flags=re.M)
    stderr = stderr.replace(_QUERY_FAILED_MARK, "\npg_restore: error: could not execute query: ")
    stderr = re.sub(r"\n{2,}", "\n", stderr.strip("\n") + "\n")
    pairs = []
    for m in _ERROR_BLOCK.finditer(stderr):
        msg = " ".join(m.group("msg").split())
        if msg.startswith("errors ignored on restore"):
            continue
        pairs.append((msg, excerpt(redactor, m.group("cmd") or "")))
    return pairs
