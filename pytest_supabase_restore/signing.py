"""Optional signature of a backup set: HMAC-SHA256 of ``manifest.json``'s exact bytes.

With ``SUPABASE_RESTORE_SIGNING_KEY`` set, the export writes ``manifest.json.sig`` next to the
manifest: one line, the hex HMAC-SHA256 of the manifest file's bytes under the key. The
manifest lists every other file with its SHA-256 (of an encrypted set: also the ciphertext's),
so the signature covers the whole set. With the key set, the integrity check verifies the
signature before it reads anything else, and refuses a set without one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from pathlib import Path

from .errors import BackupError
from .manifest import MANIFEST, SIGNATURE, read_regular

SIGNING_ENV = "SUPABASE_RESTORE_SIGNING_KEY"
MIN_KEY_CHARS = 32
_HEX = re.compile(rb"[0-9a-f]{64}")


def key_problem(key: str) -> str | None:
    """Why ``key`` is not a usable signing key (None when it is)."""
    if len(key) < MIN_KEY_CHARS:
        return (
            f"{SIGNING_ENV} is {len(key)} characters long; use at least {MIN_KEY_CHARS} random "
            'characters, e.g. the output of python -c "import secrets; print(secrets.token_hex(32))"'
        )
    return None


def digest(key: str, data: bytes) -> str:
    return hmac.new(key.encode("utf-8"), data, hashlib.sha256).hexdigest()


def is_signed(root: Path) -> bool:
    return os.path.lexists(root / SIGNATURE)


def sign_set(root: Path, key: str) -> Path:
    """Write ``manifest.json.sig`` for the manifest as it is on disk now."""
    path = root / SIGNATURE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(digest(key, read_regular(root, MANIFEST)) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return path


def verify_set(root: Path, key: str) -> None:
    """Raise BackupError unless ``manifest.json.sig`` is the manifest's HMAC under ``key``."""
    if not is_signed(root):
        raise BackupError(
            f"The backup set {root.name} is not signed (no {SIGNATURE}), and with {SIGNING_ENV} "
            "set only sets signed with that key are accepted: validate a set exported with the "
            "key, or unset the key to validate an unsigned set you trust."
        )
    try:
        given = read_regular(root, SIGNATURE, limit=1024).strip()
        manifest = read_regular(root, MANIFEST)
    except OSError as exc:
        raise BackupError(
            f"The backup set {root.name}: its manifest or signature cannot be read as a regular "
            f"file ({exc.strerror or exc}); a backup set holds no symbolic links, so validate an "
            "intact copy of it."
        ) from exc
    if _HEX.fullmatch(given) is None:
        raise BackupError(
            f"The backup set {root.name}: {SIGNATURE} is not a hex HMAC-SHA256, so the set's "
            "origin cannot be verified: validate an intact copy of the set."
        )
    if not hmac.compare_digest(given, digest(key, manifest).encode("ascii")):
        raise BackupError(
            f"The backup set {root.name}: its signature does not match: the manifest was changed "
            f"after the export, or the set was signed with another key than {SIGNING_ENV}; "
            "validate a set signed with this key."
        )
