"""The backup-set format: a directory with ``manifest.json`` that proves what it holds.

Layout (all files owner-only, because they hold production data)::

    <backup-dir>/<snapshot time, e.g. 20261124T172900Z>/
        manifest.json          the proof (this module)
        roles.sql              custom roles, no passwords, reserved roles left out
        db/                    pg_dump directory format (toc.dat + one file per table)
        storage/objects/ab/<sha256>   Storage object bytes, content addressed

A set is written under a temporary name (``.partial-*``) and renamed only once its manifest
is complete, so a partial set is never mistaken for a complete one.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import re
import stat
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .errors import BackupError
from .model import FileEntry, Manifest
from .proof.postgrest import RlsSession
from .proof.rlskeys import sample_problem
from .storage.pool import bounded_map
from .storage.records import ObjectRecord, object_file

FORMAT = "pytest-supabase-restore/backup-set"
VERSION = 1  # what a plain set is written as
ENCRYPTED_VERSION = 2  # an encrypted set: an older plugin refuses it instead of misreading it
SUPPORTED_VERSION = 2  # the newest this plugin reads
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
PARTIAL_PREFIX = ".partial-"
ENCRYPTION_SCHEME = "aes-256-gcm-chunked-v1"
MIN_CHUNK, MAX_CHUNK = 1 << 10, 16 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEY_CHECK = re.compile(r"[0-9a-f]{16}")


def _is_sha256(value: Any) -> bool:
    return isinstance(value, str) and _SHA256.fullmatch(value) is not None


def write_manifest(root: Path, manifest: Manifest) -> Path:
    path = root / MANIFEST
    tmp = root / (MANIFEST + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(manifest.to_json(), fh, indent=1, sort_keys=True, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def _malformed(path: Path, where: str, what: str) -> BackupError:
    return BackupError(
        f"{path}: malformed manifest: {where}: {what}; the backup set was damaged or edited "
        "after the export, so validate an intact copy of it."
    )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"the key {key[:80]!r} appears twice in one object")
        seen[key] = value
    return seen


def _not_a_number(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_rls_count(value: Any, sampled: int | None) -> bool:
    """A value of proof.rls.rls_visibility: rows (of a table without a key sample), -1,
    ``{"error": "<text>"}``, or (``sampled`` keys) ``{"visible": [ascending indexes]}``."""
    if isinstance(value, dict) and list(value) == ["visible"]:
        found = value["visible"]
        return (
            sampled is not None
            and isinstance(found, list)
            and all(_is_count(i) and i < sampled for i in found)
            and found == sorted(set(found))
        )
    if isinstance(value, dict):
        return list(value) == ["error"] and isinstance(value["error"], str)
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and (value >= -1 if sampled is None else value == -1)
    )


def path_problem(rel: Any) -> str | None:
    """Why ``rel`` cannot name a file of a backup set (None when it can): a set's files are
    named by relative POSIX paths below the set's directory, and never the manifest itself."""
    if not isinstance(rel, str) or not rel:
        return "a file name must be a non-empty string"
    if len(rel) > 4096 or "\x00" in rel or "\\" in rel:
        return "the path is too long or holds a NUL or backslash"
    if rel.startswith("/"):
        return "the path is absolute, not inside the backup set"
    if any(part in ("", ".", "..") for part in rel.split("/")):
        return "the path has an empty, '.' or '..' component, so it may leave the backup set"
    if rel in (MANIFEST, SIGNATURE, MANIFEST + ".tmp"):
        return "the manifest cannot list itself or its signature"
    return None


_NAME_LIMIT = 1000  # characters of one extension or member name


def _validate_extensions(section: Any, need: Callable[[bool, str, str], None]) -> None:
    """The optional ``extensions`` section (older sets have none): ``{name: {"version",
    "schema", "members": {kind: [names]}}}``, what each extension provides."""

    def is_name(value: Any) -> bool:
        return isinstance(value, str) and 0 < len(value) <= _NAME_LIMIT and "\x00" not in value

    need(isinstance(section, dict), "extensions", "must be an object")
    for name, entry in section.items():
        where = f"extensions[{name[:80]!r}]"
        need(is_name(name), where, "not an extension name")
        need(isinstance(entry, dict), where, "must be an object")
        for key in ("version", "schema"):
            need(entry.get(key) is None or is_name(entry[key]), f"{where}.{key}", "not a string")
        members = entry.get("members", {})
        need(isinstance(members, dict), f"{where}.members", "must be an object")
        for kind, names in members.items():
            need(
                is_name(kind) and isinstance(names, list) and all(is_name(n) for n in names),
                f"{where}.members[{str(kind)[:80]!r}]",
                "must be a list of names",
            )


def _check_header(data: Any, path: Path, need: Callable[[bool, str, str], None]) -> int:
    """The format, the version (returned) and the fields every set has."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BackupError(f"{path}: not a pytest-supabase-restore manifest (format field).")
    version = data.get("version")
    need(
        isinstance(version, int) and not isinstance(version, bool) and version >= 1,
        "version",
        f"must be a positive integer, not {version!r}"[:120],
    )
    assert isinstance(version, int)
    if version > SUPPORTED_VERSION:
        raise BackupError(
            f"{path}: manifest version {version} is newer than this plugin understands "
            f"({SUPPORTED_VERSION}). Upgrade pytest-supabase-restore to validate this backup set."
        )
    for key in ("snapshot_time", "tables", "schema", "files", "storage", "source"):
        if key not in data:
            raise BackupError(f"{path}: malformed manifest (no {key!r}).")

    snapshot = data["snapshot_time"]
    need(isinstance(snapshot, str), "snapshot_time", "must be a string")
    try:
        when = dt.datetime.fromisoformat(snapshot)
    except ValueError:
        when = None
    need(when is not None and when.tzinfo is not None, "snapshot_time", "not an ISO time with zone")
    return version


def _check_source(data: dict[str, Any], need: Callable[[bool, str, str], None]) -> None:
    """Where the set came from, how it was dumped, and its scope."""
    source = data["source"]
    need(isinstance(source, dict), "source", "must be an object")
    major = source.get("server_major")
    need(_is_count(major) and 9 <= major <= 99, "source.server_major", "not a PostgreSQL major")
    for key in ("server_version", "label"):
        need(
            source.get(key) is None or isinstance(source[key], str), f"source.{key}", "not a string"
        )
    history = source.get("migration_history")
    need(history is None or _is_count(history), "source.migration_history", "not a count")
    platform_roles = source.get("platform_roles", [])
    need(
        _is_strings(platform_roles),
        "source.platform_roles",
        "not a list of role names",
    )
    pg_dump = data.get("pg_dump", {})
    need(isinstance(pg_dump, dict), "pg_dump", "must be an object")
    need(
        pg_dump.get("version") is None or isinstance(pg_dump["version"], str),
        "pg_dump.version",
        "not a string",
    )
    scope = data.get("scope_schemas", [])
    need(
        _is_strings(scope),
        "scope_schemas",
        "must be a list of schema names",
    )


def _check_tables(data: dict[str, Any], need: Callable[[bool, str, str], None]) -> None:
    """The table fingerprints and the schema inventory."""
    tables = data["tables"]
    need(isinstance(tables, dict), "tables", "must be an object")
    for name, table in tables.items():
        where = f"tables[{name[:80]!r}]"
        need(isinstance(table, dict), where, "must be an object")
        for key in ("rows", "bytes"):
            need(key not in table or _is_count(table[key]), f"{where}.{key}", "not a count")
        for key in ("schema", "name"):
            need(key not in table or isinstance(table[key], str), f"{where}.{key}", "not a string")
        if "hash" in table:
            _check_copy_fields(table, where, need)
    schema = data["schema"]
    need(
        isinstance(schema, dict) and all(isinstance(v, dict) for v in schema.values()),
        "schema",
        "must be an object of objects",
    )


def _check_copy_fields(
    table: dict[str, Any], where: str, need: Callable[[bool, str, str], None]
) -> None:
    """A table fingerprinted from the dump's COPY lines (proof.copyhash): how to read it."""
    need(
        table["hash"] in ("copy-blake2b64", "copy-xxh3-64"),
        f"{where}.hash",
        "unknown fingerprint scheme",
    )
    parts = table.get("copy")
    need(
        isinstance(parts, list)
        and all(
            isinstance(p, dict)
            and isinstance(p.get("schema"), str)
            and isinstance(p.get("name"), str)
            and isinstance(p.get("columns"), list)
            and all(isinstance(c, str) for c in p["columns"])
            for p in parts
        ),
        f"{where}.copy",
        "must list the copied relations with their columns",
    )
    kinds = table.get("key_kinds")
    need(
        isinstance(kinds, list) and all(k in ("int", "text") for k in kinds),
        f"{where}.key_kinds",
        "must list int or text per key column",
    )
    settings = table.get("copy_settings")
    need(
        isinstance(settings, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in settings.items()),
        f"{where}.copy_settings",
        "must map setting names to values",
    )


def _check_rls(data: dict[str, Any], need: Callable[[bool, str, str], None]) -> None:
    """The row-level security identities, counts and session."""
    rls = data.get("rls", {"users": [], "visibility": {}})
    need(isinstance(rls, dict), "rls", "must be an object")
    users = rls.get("users", [])
    need(
        _is_strings(users),
        "rls.users",
        "not a list of ids",
    )
    samples = rls.get("samples", {})
    need(isinstance(samples, dict), "rls.samples", "must map tables to key samples")
    for table, sample in samples.items():
        problem = sample_problem(sample)
        need(problem is None, f"rls.samples.{table}", problem or "")
    counted = rls.get("counted", {})
    need(
        isinstance(counted, dict) and all(isinstance(v, str) for v in counted.values()),
        "rls.counted",
        "must map tables to why they were counted in full",
    )
    sizes = {t: len(s["keys"]) for t, s in samples.items()}
    visibility = rls.get("visibility", {})
    need(
        isinstance(visibility, dict)
        and all(
            isinstance(v, dict) and all(_is_rls_count(n, sizes.get(t)) for t, n in v.items())
            for v in visibility.values()
        ),
        "rls.visibility",
        "must map each identity to, per table, the indexes of its sampled keys visible "
        "(row counts for a table without a sample), -1 (no SELECT privilege) or errors",
    )
    try:
        RlsSession.from_json(rls.get("session"))
    except ValueError as exc:
        where, _, what = str(exc).partition(": ")
        need(False, where, what)


def _check_encryption(
    data: dict[str, Any], version: int, need: Callable[[bool, str, str], None]
) -> Any:
    """The encryption section, when the set is encrypted; returns it."""
    encryption = data.get("encryption")
    if encryption is not None:
        need(
            version >= ENCRYPTED_VERSION,
            "encryption",
            f"needs manifest version {ENCRYPTED_VERSION}",
        )
        need(isinstance(encryption, dict), "encryption", "must be an object")
        need(encryption.get("scheme") == ENCRYPTION_SCHEME, "encryption.scheme", "unknown scheme")
        chunk = encryption.get("chunk_size")
        need(
            _is_count(chunk) and MIN_CHUNK <= chunk <= MAX_CHUNK,
            "encryption.chunk_size",
            f"must be a byte count from {MIN_CHUNK} to {MAX_CHUNK}",
        )
        check = encryption.get("key_check")
        need(
            isinstance(check, str) and _KEY_CHECK.fullmatch(check) is not None,
            "encryption.key_check",
            "not 16 hex digits",
        )

    return encryption


def _check_files(
    data: dict[str, Any], encrypted: bool, need: Callable[[bool, str, str], None]
) -> None:
    """Every file's path, size and hash (and encrypted size and hash)."""
    files = data["files"]
    need(isinstance(files, dict), "files", "must be an object")
    for rel, meta in files.items():
        where = f"files[{rel[:80]!r}]"
        problem = path_problem(rel)
        need(problem is None, where, problem or "")
        need(isinstance(meta, dict), where, "must be an object")
        need(_is_count(meta.get("size")), f"{where}.size", "not a byte count")
        need(_is_sha256(meta.get("sha256")), f"{where}.sha256", "not a SHA-256 hex digest")
        if encrypted:
            need(_is_count(meta.get("enc_size")), f"{where}.enc_size", "not a byte count")
            need(
                _is_sha256(meta.get("enc_sha256")),
                f"{where}.enc_sha256",
                "not a SHA-256 hex digest",
            )
    need("db/toc.dat" in files, "files", "no db/toc.dat, so the set holds no database dump")


def _check_objects(
    storage: dict[str, Any], files: dict[str, Any], need: Callable[[bool, str, str], None]
) -> None:
    """Each Storage object's fields, and its bytes listed with that size and SHA-256."""
    objects = storage.get("objects", [])
    need(isinstance(objects, list), "storage.objects", "must be a list")
    for i, obj in enumerate(objects):
        where = f"storage.objects[{i}]"
        need(isinstance(obj, dict), where, "must be an object")
        for key in ("bucket", "key", "etag"):
            need(isinstance(obj.get(key), str), f"{where}.{key}", "not a string")
        for key in ("content_type", "cache_control", "last_modified"):
            need(
                obj.get(key) is None or isinstance(obj[key], str), f"{where}.{key}", "not a string"
            )
        need(_is_count(obj.get("size")), f"{where}.size", "not a byte count")
        sha = obj.get("sha256")
        need(_is_sha256(sha), f"{where}.sha256", "not a SHA-256 hex digest")
        listed = files.get(object_file(sha))
        need(
            isinstance(listed, dict) and listed["sha256"] == sha and listed["size"] == obj["size"],
            f"{where} (Storage object {obj['bucket']!r}/{obj['key'][:200]!r})",
            "its bytes are not in the backup set's file list with that size and SHA-256",
        )


def _check_functions(data: dict[str, Any], need: Callable[[bool, str, str], None]) -> None:
    """Each Edge Function bundle's fields, and its file listed with that size and SHA-256."""
    functions = data.get("functions", [])
    need(isinstance(functions, list), "functions", "must be a list")
    for i, fn in enumerate(functions):
        where = f"functions[{i}]"
        need(isinstance(fn, dict), where, "must be an object")
        slug = fn.get("slug")
        need(
            isinstance(slug, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,100}", slug) is not None,
            f"{where}.slug",
            "not a function slug",
        )
        for key in ("name", "status"):
            need(isinstance(fn.get(key), str), f"{where}.{key}", "not a string")
        need(_is_count(fn.get("version")), f"{where}.version", "not a version number")
        need(fn.get("file") == f"functions/{slug}.bundle", f"{where}.file", "not its bundle")
        _check_listed(data, fn, where, f"{where} (Edge Function {slug!r})", need)


def _check_listed(
    data: dict[str, Any],
    entry: dict[str, Any],
    where: str,
    what: str,
    need: Callable[[bool, str, str], None],
) -> None:
    """An entry's ``size`` and ``sha256``, and its ``file`` listed under ``files`` with them."""
    need(_is_count(entry.get("size")), f"{where}.size", "not a byte count")
    need(_is_sha256(entry.get("sha256")), f"{where}.sha256", "not a SHA-256 hex digest")
    listed = data["files"].get(entry["file"])
    need(
        isinstance(listed, dict)
        and listed["sha256"] == entry["sha256"]
        and listed["size"] == entry["size"],
        what,
        "its file is not in the backup set's file list with that size and SHA-256",
    )


def _check_settings(data: dict[str, Any], need: Callable[[bool, str, str], None]) -> None:
    """Each settings section's fields, its file listed with that size and SHA-256, and the
    manual restore steps."""
    sections = data.get("project_settings", [])
    need(isinstance(sections, list), "project_settings", "must be a list")
    for i, entry in enumerate(sections):
        where = f"project_settings[{i}]"
        need(isinstance(entry, dict), where, "must be an object")
        section = entry.get("section")
        need(section in ("auth", "storage"), f"{where}.section", "not auth or storage")
        need(entry.get("file") == f"settings/{section}.json", f"{where}.file", "not its file")
        _check_listed(data, entry, where, f"{where} ({section} settings)", need)
        names = entry.get("secrets_set", [])
        need(
            _is_strings(names),
            f"{where}.secrets_set",
            "not a list of field names",
        )
    steps = data.get("manual_restore", [])
    need(
        _is_strings(steps),
        "manual_restore",
        "not a list of sentences",
    )


def _check_storage(data: dict[str, Any], need: Callable[[bool, str, str], None]) -> None:
    """The buckets, the object lists, and each object's bytes in the file list."""
    storage = data["storage"]
    need(isinstance(storage, dict), "storage", "must be an object")
    need(
        isinstance(storage.get("downloaded", False), bool),
        "storage.downloaded",
        "not true or false",
    )
    buckets = storage.get("buckets", [])
    need(isinstance(buckets, list), "storage.buckets", "must be a list")
    for i, bucket in enumerate(buckets):
        need(
            isinstance(bucket, dict) and isinstance(bucket.get("id"), str),
            f"storage.buckets[{i}]",
            "no bucket id",
        )
    for section in ("missing_in_s3", "unknown_to_db"):
        entries = storage.get(section, [])
        need(
            isinstance(entries, list)
            and all(
                isinstance(e, dict)
                and isinstance(e.get("bucket"), str)
                and isinstance(e.get("key"), str)
                for e in entries
            ),
            f"storage.{section}",
            "must be a list of bucket and key",
        )
    _check_objects(storage, data["files"], need)


def validate_manifest(data: Any, path: Path) -> Manifest:
    """Check the type of every field the plugin reads and return the typed manifest. Raises
    BackupError naming the field."""

    def need(cond: bool, where: str, what: str) -> None:
        if not cond:
            raise _malformed(path, where, what)

    version = _check_header(data, path, need)
    _check_source(data, need)
    _check_tables(data, need)
    _check_rls(data, need)
    _validate_extensions(data.get("extensions", {}), need)
    encryption = _check_encryption(data, version, need)
    _check_files(data, encryption is not None, need)
    _check_storage(data, need)
    _check_functions(data, need)
    _check_settings(data, need)
    return Manifest.from_json(data)


def read_manifest(root: Path) -> Manifest:
    """Parse the manifest and check its format, version and every field. Raises BackupError."""
    path = root / MANIFEST
    try:
        raw = read_regular(root, MANIFEST)
    except FileNotFoundError:
        raise BackupError(
            f"{path}: missing. This directory is not a complete backup set."
        ) from None
    except OSError as exc:
        raise BackupError(
            f"{path}: cannot be read as a regular file ({exc.strerror or exc}); a backup set "
            "holds no symbolic links, so validate an intact copy of it."
        ) from exc
    try:
        data = json.loads(
            raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_not_a_number
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise BackupError(f"{path}: malformed manifest ({exc}).") from exc
    return validate_manifest(data, path)


def open_regular(root: Path, rel: str) -> int:
    """A read-only descriptor of the regular file ``root/rel``; raises OSError when any part of
    the path is a symbolic link (ELOOP) or the file is not a regular file. Each directory is
    opened relative to the one before, so the path cannot be redirected while it is walked."""
    parts = rel.split("/")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            except NotADirectoryError:  # what O_NOFOLLOW | O_DIRECTORY says of a link
                if stat.S_ISLNK(os.stat(part, dir_fd=fd, follow_symlinks=False).st_mode):
                    raise OSError(errno.ELOOP, "a symbolic link on the path") from None
                raise
            os.close(fd)
            fd = nxt
        out = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(out).st_mode):
        os.close(out)
        raise OSError(errno.EINVAL, "not a regular file")
    return out


def read_regular(root: Path, rel: str, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``root/rel`` (see :func:`open_regular`); at most
    ``limit`` + 1 of them, so that a caller can tell a file that is too large."""
    with os.fdopen(open_regular(root, rel), "rb") as fh:
        return fh.read() if limit is None else fh.read(limit + 1)


def hash_regular(root: Path, rel: str, chunk: int = 1 << 20) -> tuple[int, str]:
    """(size, SHA-256) of the regular file ``root/rel`` (see :func:`open_regular`)."""
    digest = hashlib.sha256()
    size = 0
    with os.fdopen(open_regular(root, rel), "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def scan_set(root: Path) -> tuple[set[str], list[str]]:
    """(every regular file below ``root`` but the manifest and its signature, problems): a
    symbolic link or a special file anywhere in the set is a problem (nothing is followed)."""
    found: set[str] = set()
    problems: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):  # never follows links
        base = Path(dirpath)
        for name in sorted(dirnames + filenames):
            full = base / name
            rel = full.relative_to(root).as_posix()
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                problems.append(f"{rel}: a symbolic link (a backup set holds only regular files)")
            elif stat.S_ISREG(mode):
                if rel not in (MANIFEST, SIGNATURE):
                    found.add(rel)
            elif not stat.S_ISDIR(mode):
                problems.append(
                    f"{rel}: not a regular file (a backup set holds only regular files)"
                )
    return found, problems


class _ObjectNames:
    """The Storage object a set's file holds, by its path: a problem with an object's file
    is named by bucket and key, which is what a person recognises. The map is built at the
    first problem, so a check that finds none holds no map of every object."""

    def __init__(self, manifest: Manifest) -> None:
        self._manifest = manifest
        self._names: dict[str, ObjectRecord] | None = None
        self._lock = threading.Lock()

    def at(self, rel: str) -> ObjectRecord | None:
        with self._lock:
            if self._names is None:
                self._names = {object_file(o.sha256): o for o in self._manifest.storage.objects}
        return self._names.get(rel)


def verify_files(
    root: Path,
    manifest: Manifest,
    jobs: int = 4,
    progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Check every file against the manifest. Returns problems, each naming the file.

    Of an encrypted set (``encryption`` in the manifest) the ciphertext ``<file>.enc`` is
    checked against ``enc_size`` and ``enc_sha256``; the plaintext is checked when decrypted.
    """
    expected = manifest.files
    suffix = ".enc" if manifest.encrypted else ""
    on_disk, problems = scan_set(root)
    real_root = root.resolve()
    objects = _ObjectNames(manifest)

    def check(item: tuple[str, FileEntry]) -> str | None:
        problem = _check(item)
        obj = objects.at(item[0]) if problem is not None else None
        if problem is None or obj is None:
            return problem
        return f"Storage object {obj.bucket!r}/{obj.key[:200]!r}: " + problem.split(": ", 1)[1]

    def _check(item: tuple[str, FileEntry]) -> str | None:
        rel, meta = item
        name = rel + suffix
        if path_problem(rel) is not None:
            return f"{name}: outside the backup set"
        try:  # never through a symbolic link, so never outside the set
            size, sha = hash_regular(root, name)
        except FileNotFoundError:
            return f"{name}: missing from the backup set"
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return f"{name}: its path goes through a symbolic link"
            return f"{name}: cannot be read as a regular file ({exc.strerror or exc})"
        if not (root / name).resolve().is_relative_to(real_root):  # and, to be sure, checked
            return f"{name}: outside the backup set"
        want, want_sha = meta.stored(manifest.encrypted)
        if size != want:
            kind = "truncated" if size < want else "grown"
            return f"{name}: {kind} ({size} bytes, manifest says {want})"
        if sha != want_sha:
            return f"{name}: modified (SHA-256 differs from the manifest)"
        return None

    workers = max(1, jobs)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # A bounded number of files in flight: not a future per file of the set at once.
        for result in bounded_map(pool, check, sorted(expected.items()), window=4 * workers):
            if result:
                problems.append(result)
    for extra in sorted(on_disk - {rel + suffix for rel in expected}):
        problems.append(f"{extra}: not listed in the manifest")
    if progress:
        progress(f"checked {len(expected)} files against the manifest")
    return problems
