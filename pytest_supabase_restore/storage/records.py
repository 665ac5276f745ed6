"""What the backup set records about each Storage object, where its bytes live, and what a
transfer or a verification reports.

Files are stored by content address (``objects/<sha[:2]>/<sha>``), so an object key never
becomes a file name and identical bytes are stored once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..errors import BackupError

_SHA256 = re.compile(r"[0-9a-f]{64}")

Problem = Literal["missing", "size", "sha256", "content_type", "cache_control", "unexpected"]


@dataclass(frozen=True, slots=True)
class ObjectRecord:
    """One Storage object as recorded in the manifest. ``sha256`` addresses its bytes.

    Slotted: a drill holds one per object (12,000 in the benchmark at 4x) for its whole run."""

    bucket: str
    key: str
    size: int
    etag: str
    sha256: str
    content_type: str | None
    cache_control: str | None
    last_modified: str | None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the manifest's ``storage.objects`` entry)."""
        return {
            "bucket": self.bucket,
            "key": self.key,
            "size": self.size,
            "etag": self.etag,
            "sha256": self.sha256,
            "content_type": self.content_type,
            "cache_control": self.cache_control,
            "last_modified": self.last_modified,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ObjectRecord:
        """Parse a manifest entry. Raises BackupError naming the bad field."""

        def text(name: str, optional: bool = False) -> Any:
            value = d.get(name)
            if value is None and optional:
                return None
            if not isinstance(value, str):
                raise BackupError(f"manifest storage object: field {name!r} is not a string.")
            return value

        if not isinstance(d, dict):
            raise BackupError("manifest storage object: entry is not an object.")
        size = d.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BackupError("manifest storage object: field 'size' is not a byte count.")
        sha = text("sha256")
        if not _SHA256.fullmatch(sha):
            raise BackupError("manifest storage object: field 'sha256' is not a SHA-256.")
        return cls(
            bucket=text("bucket"),
            key=text("key"),
            size=size,
            etag=text("etag"),
            sha256=sha,
            content_type=text("content_type", optional=True),
            cache_control=text("cache_control", optional=True),
            last_modified=text("last_modified", optional=True),
        )


def object_path(root: Path, sha256: str) -> Path:
    """Where the bytes with this SHA-256 live: ``root/objects/<sha[:2]>/<sha>``.

    Only a validated hex digest ever becomes part of the path, so no object key ("..",
    a leading "/", unicode) and no tampered manifest can name a file outside ``root``.
    """
    if not _SHA256.fullmatch(sha256):
        raise BackupError(
            f"{sha256[:80]!r} is not a SHA-256 hex digest; the manifest's storage entry is corrupt."
        )
    return root / "objects" / sha256[:2] / sha256


# Where the export puts the objects in a backup set (``object_path(set / "storage", sha)``).
SET_OBJECTS = "storage/objects"


def object_file(sha256: str) -> str:
    """The set-relative path of the object file with this SHA-256 (as the manifest lists it)."""
    return f"{SET_OBJECTS}/{sha256[:2]}/{sha256}"


def named_sha256(rel: str) -> str | None:
    """The SHA-256 that the set-relative path ``rel`` names, if it is an object file's path
    (exactly ``storage/objects/<sha[:2]>/<sha>``), else None."""
    sha = rel.rsplit("/", 1)[-1]
    return sha if _SHA256.fullmatch(sha) and rel == object_file(sha) else None


@dataclass
class TransferResult:
    """What a download or upload did. ``errors`` name bucket and key, never secrets."""

    objects: list[ObjectRecord] = field(default_factory=list)
    bytes: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ObjectProblem:
    """One difference between the recorded objects and a target object store."""

    bucket: str
    key: str
    problem: Problem
    expected: str
    actual: str

    def message(self) -> str:
        """One line for a test failure or the verdict."""
        where = f"'{self.bucket}/{self.key}'"
        if self.problem == "missing":
            return f"{where}: missing from the target (expected {self.expected})"
        if self.problem == "unexpected":
            return f"{where}: present in the target ({self.actual}) but not in the backup"
        if self.problem == "size":
            return f"{where}: size differs (expected {self.expected} bytes, found {self.actual})"
        if self.problem == "sha256":
            return (
                f"{where}: content differs (SHA-256 expected {self.expected[:12]}…, "
                f"found {self.actual[:12]}…)"
            )
        header = "Content-Type" if self.problem == "content_type" else "Cache-Control"
        return f"{where}: {header} differs (expected {self.expected!r}, found {self.actual!r})"
