"""The backup-set manifest as typed records: what the export writes and everything reads.

:func:`.manifest.read_manifest` checks every field of ``manifest.json`` and returns a
:class:`Manifest`; the export builds one and writes :meth:`Manifest.to_json`. No other module
knows the JSON layout. Two sections are the proof engine's own records, kept as it writes
them: ``tables`` (per table: ``schema``, ``name``, ``kind``, ``pk``, ``partitions``, ``rows``,
``bytes`` and the fingerprint, see :mod:`.proof.fingerprint`) and ``schema`` (the inventory,
kind by kind, compared by :func:`.proof.inventory.diff_inventory`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .proof.inventory import Inventory
from .proof.postgrest import LEGACY_SESSION, RlsSession
from .proof.records import Fingerprint
from .proof.rls import RlsCount
from .proof.rlskeys import KeySample
from .proof.scope import TableRef
from .results import BackupSizes
from .storage.records import ObjectRecord


@dataclass(frozen=True)
class TableEntry:
    """A table whose data the backup carries, and its fingerprint.

    ``rows``: counted in the snapshot (the fingerprint's count) or, for facts read from a
    restored copy without a manifest, the planner's estimate; ``fingerprint`` is None then.
    ``partitions``: ``schema.name`` of every partition below a partitioned table."""

    schema: str
    name: str
    kind: str = "r"
    pk: tuple[str, ...] = ()
    partitions: tuple[str, ...] = ()
    bytes: int = 0
    rows: int = 0
    fingerprint: Fingerprint | None = None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def ref(self) -> TableRef:
        """The table as the proof engine reads it."""
        return TableRef(
            schema=self.schema,
            name=self.name,
            kind=self.kind,
            pk=self.pk,
            partitions=self.partitions,
            est_rows=self.rows,
            bytes=self.bytes,
        )

    @classmethod
    def of(cls, ref: TableRef, fingerprint: Fingerprint | None = None) -> TableEntry:
        """The entry of ``ref``: with its fingerprint's count, else the estimate."""
        return cls(
            schema=ref.schema,
            name=ref.name,
            kind=ref.kind,
            pk=ref.pk,
            partitions=ref.partitions,
            bytes=ref.bytes,
            rows=fingerprint.rows if fingerprint is not None else ref.est_rows,
            fingerprint=fingerprint,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": self.schema,
            "name": self.name,
            "kind": self.kind,
            "pk": list(self.pk),
            "partitions": list(self.partitions),
            "bytes": self.bytes,
        }
        out.update(self.fingerprint.to_json() if self.fingerprint else {"rows": self.rows})
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TableEntry:
        return cls(
            schema=str(d["schema"]),
            name=str(d["name"]),
            kind=str(d.get("kind") or "r"),
            pk=tuple(str(c) for c in d.get("pk") or ()),
            partitions=tuple(str(p) for p in d.get("partitions") or ()),
            bytes=int(d.get("bytes") or 0),
            rows=int(d.get("rows") or 0),
            fingerprint=Fingerprint.from_json(d) if "fingerprint" in d else None,
        )


@dataclass(frozen=True)
class SourceInfo:
    """Where the set came from and who read it."""

    server_major: int
    server_version: str | None = None
    label: str | None = None
    # Who the export logged in as: restored code runs no more privileged than this role in
    # staging (see the CRUD and materialized-view checks).
    login_role: str | None = None
    login_superuser: bool | None = None
    # The platform's reserved roles the source has: a project older than a role
    # (supabase_realtime_admin, say) has none of its grants either, and staging, which
    # starts as today's project, drops what the source never had.
    platform_roles: tuple[str, ...] = ()
    # Rows of the CLI's migration history: outside the backup's scope, as in the CLI's own
    # dumps; the verdict says so under not tested. None: the source has no such table.
    migration_history: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "server_version": self.server_version,
            "server_major": self.server_major,
            "login_role": self.login_role,
            "login_superuser": self.login_superuser,
            "platform_roles": list(self.platform_roles),
            "migration_history": self.migration_history,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SourceInfo:
        return cls(
            server_major=int(d["server_major"]),
            server_version=d.get("server_version"),
            label=d.get("label"),
            login_role=d.get("login_role"),
            login_superuser=d.get("login_superuser"),
            platform_roles=tuple(d.get("platform_roles") or ()),
            migration_history=d.get("migration_history"),
        )


@dataclass(frozen=True)
class DumpInfo:
    """The pg_dump that wrote ``db/`` and how it was run."""

    version: str | None = None
    major: int | None = None
    options: tuple[str, ...] = ()
    compression: str | None = None
    jobs: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "major": self.major,
            "options": list(self.options),
            "compression": self.compression,
            "jobs": self.jobs,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DumpInfo:
        return cls(
            version=d.get("version"),
            major=d.get("major"),
            options=tuple(d.get("options") or ()),
            compression=d.get("compression"),
            jobs=d.get("jobs"),
        )


@dataclass(frozen=True)
class RlsProof:
    """Row-level security as each identity saw it in the snapshot.

    ``users``: the sampled ``auth.users`` ids, in id order (their labels ``user1``, ...);
    ``visibility``: identity (``anon`` or a user id) -> table -> what it sees: for a table
    in ``samples``, ``{"visible": [...]}``, the indexes of its sampled keys the identity
    can read; for any other, the rows visible; -1: no SELECT privilege; or the error the
    policy raised (its SQLSTATE and message). ``samples``: table -> the keys sampled from
    the dump's lines (:class:`.proof.rlskeys.KeySample`); ``counted``: table -> why it
    was counted in full instead (no primary key, ...); both empty in a set written before
    samples, where every table was counted. ``session``: the PostgREST-like session the
    evaluations ran under (legacy: a set written before it was recorded)."""

    users: tuple[str, ...] = ()
    visibility: dict[str, dict[str, RlsCount]] = field(default_factory=dict)
    session: RlsSession = LEGACY_SESSION
    samples: dict[str, KeySample] = field(default_factory=dict)
    counted: dict[str, str] = field(default_factory=dict)

    def label(self, identity: str) -> str:
        """How an identity is named in test ids and messages: ``anon``, or ``user1``,
        ``user2``, ... by its place in the sample. An ``auth.users`` id is a user's data: it
        stays in the backup set and never reaches a report."""
        if identity == "anon":
            return identity
        return f"user{self.users.index(identity) + 1}" if identity in self.users else "user"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"users": list(self.users), "visibility": self.visibility}
        if not self.session.legacy:
            out["session"] = self.session.to_json()
        if self.samples or self.counted:
            out["samples"] = {t: s.to_json() for t, s in sorted(self.samples.items())}
            out["counted"] = dict(sorted(self.counted.items()))
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RlsProof:
        return cls(
            users=tuple(d.get("users") or ()),
            visibility={k: dict(v) for k, v in (d.get("visibility") or {}).items()},
            session=RlsSession.from_json(d.get("session")),
            samples={t: KeySample.from_json(s) for t, s in (d.get("samples") or {}).items()},
            counted=dict(d.get("counted") or {}),
        )


@dataclass(frozen=True)
class BucketEntry:
    """A row of ``storage.buckets``: the bucket's id and the settings the restore keeps."""

    id: str
    name: str | None = None
    public: bool | None = None
    file_size_limit: int | None = None
    allowed_mime_types: tuple[str, ...] | None = None

    SETTINGS = ("public", "file_size_limit", "allowed_mime_types")

    def settings(self) -> dict[str, object]:
        """The settings compared with the restored copy's, by column name."""
        return {name: getattr(self, name) for name in self.SETTINGS}

    def to_json(self) -> dict[str, Any]:
        mimes = self.allowed_mime_types
        return {
            "id": self.id,
            "name": self.name,
            "public": self.public,
            "file_size_limit": self.file_size_limit,
            "allowed_mime_types": list(mimes) if mimes is not None else None,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> BucketEntry:
        mimes = d.get("allowed_mime_types")
        limit = d.get("file_size_limit")
        return cls(
            id=str(d["id"]),
            name=d.get("name"),
            public=d.get("public"),
            file_size_limit=int(limit) if limit is not None else None,
            allowed_mime_types=tuple(str(m) for m in mimes) if mimes is not None else None,
        )


@dataclass(frozen=True)
class ExtensionEntry:
    """An extension of the source and what it provides (see :mod:`.extdeps`): ``members``
    maps a kind (``types``, ``functions``, ``schemas``, ...) to ``schema.name`` names."""

    version: str | None
    schema: str | None
    members: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "schema": self.schema,
            "members": {k: list(v) for k, v in self.members.items()},
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> ExtensionEntry:
        members = d.get("members") or {}
        return cls(
            version=d.get("version"),
            schema=d.get("schema"),
            members={str(k): tuple(str(v) for v in vs) for k, vs in members.items()},
        )


@dataclass(frozen=True)
class StorageSection:
    """The buckets and objects of ``storage.buckets``/``storage.objects`` and the S3 listing.

    ``buckets``: the ``storage.buckets`` rows (``id`` and the bucket's settings);
    ``db_objects``: rows of ``storage.objects``; ``missing_in_s3``/``unknown_to_db``: (bucket,
    key) pairs on one side only; ``downloaded``: whether the bytes are in the set."""

    buckets: tuple[BucketEntry, ...] = ()
    objects: tuple[ObjectRecord, ...] = ()
    db_objects: int | None = None
    missing_in_s3: tuple[tuple[str, str], ...] = ()
    unknown_to_db: tuple[tuple[str, str], ...] = ()
    downloaded: bool = False

    @property
    def bucket_ids(self) -> list[str]:
        return [b.id for b in self.buckets]

    def bucket(self, bucket_id: str) -> BucketEntry | None:
        return next((b for b in self.buckets if b.id == bucket_id), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "buckets": [b.to_json() for b in self.buckets],
            "objects": [o.to_json() for o in self.objects],
            "db_objects": self.db_objects,
            "missing_in_s3": [{"bucket": b, "key": k} for b, k in self.missing_in_s3],
            "unknown_to_db": [{"bucket": b, "key": k} for b, k in self.unknown_to_db],
            "downloaded": self.downloaded,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StorageSection:
        return cls(
            buckets=tuple(BucketEntry.from_json(b) for b in d.get("buckets") or ()),
            objects=tuple(ObjectRecord.from_json(o) for o in d.get("objects") or ()),
            db_objects=d.get("db_objects"),
            missing_in_s3=tuple((e["bucket"], e["key"]) for e in d.get("missing_in_s3") or ()),
            unknown_to_db=tuple((e["bucket"], e["key"]) for e in d.get("unknown_to_db") or ()),
            downloaded=bool(d.get("downloaded", False)),
        )


@dataclass(frozen=True)
class FileEntry:
    """One file of the set: its plaintext size and SHA-256 (and, encrypted, the ciphertext's)."""

    size: int
    sha256: str
    enc_size: int | None = None
    enc_sha256: str | None = None

    def stored(self, encrypted: bool) -> tuple[int, str]:
        """Size and SHA-256 of the file as it is on disk: of an encrypted set, the ciphertext's
        (which the manifest check guarantees are recorded)."""
        if encrypted:
            return self.enc_size or 0, self.enc_sha256 or ""
        return self.size, self.sha256

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"size": self.size, "sha256": self.sha256}
        if self.enc_size is not None:
            out["enc_size"] = self.enc_size
            out["enc_sha256"] = self.enc_sha256
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FileEntry:
        return cls(
            size=int(d["size"]),
            sha256=str(d["sha256"]),
            enc_size=d.get("enc_size"),
            enc_sha256=d.get("enc_sha256"),
        )


@dataclass(frozen=True)
class FunctionEntry:
    """One Edge Function's deployed source bundle, exported with the Management API
    (``GET /v1/projects/{ref}/functions/{slug}/body``) into ``file`` (listed in ``files``
    with its SHA-256, so the integrity check covers it)."""

    slug: str
    name: str
    version: int
    status: str
    file: str  # functions/<slug>.bundle
    size: int
    sha256: str
    entrypoint_path: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "file": self.file,
            "size": self.size,
            "sha256": self.sha256,
            "entrypoint_path": self.entrypoint_path,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FunctionEntry:
        return cls(
            slug=str(d["slug"]),
            name=str(d["name"]),
            version=int(d["version"]),
            status=str(d["status"]),
            file=str(d["file"]),
            size=int(d["size"]),
            sha256=str(d["sha256"]),
            entrypoint_path=d.get("entrypoint_path"),
        )


@dataclass(frozen=True)
class SettingsEntry:
    """One section of the project's settings (``auth``, ``storage``) as the Management API
    gave it, written to ``file`` without its secrets (see :mod:`.project_settings`);
    ``secrets_set``: the names of the secret fields that had a value."""

    section: str
    file: str  # settings/<section>.json
    size: int
    sha256: str
    fields: int
    secrets_set: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "file": self.file,
            "size": self.size,
            "sha256": self.sha256,
            "fields": self.fields,
            "secrets_set": list(self.secrets_set),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> SettingsEntry:
        return cls(
            section=str(d["section"]),
            file=str(d["file"]),
            size=int(d["size"]),
            sha256=str(d["sha256"]),
            fields=int(d.get("fields") or 0),
            secrets_set=tuple(str(n) for n in d.get("secrets_set") or ()),
        )


@dataclass(frozen=True)
class PlatformExport:
    """What the export read from the Management API: Edge Function bundles, the Auth and
    Storage settings, and the steps a full restore of the project does by hand."""

    functions: tuple[FunctionEntry, ...] = ()
    settings: tuple[SettingsEntry, ...] = ()
    manual_restore: tuple[str, ...] = ()


@dataclass(frozen=True)
class Encryption:
    """How the set's files were encrypted (:mod:`.encryption`)."""

    scheme: str
    chunk_size: int
    key_check: str

    def to_json(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "chunk_size": self.chunk_size, "key_check": self.key_check}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Encryption:
        return cls(
            scheme=str(d["scheme"]), chunk_size=int(d["chunk_size"]), key_check=str(d["key_check"])
        )


@dataclass(frozen=True)
class Manifest:
    """A backup set's ``manifest.json``: what it holds and the proof of it."""

    format: str
    version: int
    snapshot_time: str
    source: SourceInfo
    pg_dump: DumpInfo = field(default_factory=DumpInfo)
    created_at: str | None = None
    tool_version: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    scope_schemas: tuple[str, ...] = ()
    excluded_schemas: tuple[str, ...] = ()
    excluded_table_data: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    tables: dict[str, TableEntry] = field(default_factory=dict)
    schema: Inventory = field(default_factory=dict)
    # Per extension, the objects it provides (see :mod:`.extdeps`); {} in an older set.
    extensions: dict[str, ExtensionEntry] = field(default_factory=dict)
    rls: RlsProof = field(default_factory=RlsProof)
    storage: StorageSection = field(default_factory=StorageSection)
    timings: dict[str, float] = field(default_factory=dict)
    files: dict[str, FileEntry] = field(default_factory=dict)
    encryption: Encryption | None = None
    # Edge Function bundles (with SUPABASE_ACCESS_TOKEN); () in a set without them.
    functions: tuple[FunctionEntry, ...] = ()
    # The project's Auth and Storage settings, secrets left out (with the token).
    project_settings: tuple[SettingsEntry, ...] = ()
    # What a full restore of the project does by hand (secrets, custom domain, ...).
    manual_restore: tuple[str, ...] = ()

    @property
    def encrypted(self) -> bool:
        return self.encryption is not None

    def sizes(self) -> BackupSizes:
        """How big the set is, for the verdict."""
        return BackupSizes(
            tables=len(self.tables),
            rows=sum(t.rows for t in self.tables.values()),
            db_bytes=sum(t.bytes for t in self.tables.values()),
            objects=len(self.storage.objects),
            object_bytes=sum(o.size for o in self.storage.objects),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": self.format,
            "version": self.version,
            "created_at": self.created_at,
            "snapshot_time": self.snapshot_time,
            "tool": {"name": "pytest-supabase-restore", "version": self.tool_version},
            "source": self.source.to_json(),
            "pg_dump": self.pg_dump.to_json(),
            "settings": self.settings,
            "scope_schemas": list(self.scope_schemas),
            "excluded_schemas": list(self.excluded_schemas),
            "excluded_table_data": list(self.excluded_table_data),
            "roles": list(self.roles),
            "tables": {k: t.to_json() for k, t in self.tables.items()},
            "schema": self.schema,
            "extensions": {k: e.to_json() for k, e in self.extensions.items()},
            "rls": self.rls.to_json(),
            "storage": self.storage.to_json(),
            "timings": self.timings,
            "files": {rel: f.to_json() for rel, f in self.files.items()},
        }
        if self.encryption is not None:
            out["encryption"] = self.encryption.to_json()
        if self.functions:
            out["functions"] = [f.to_json() for f in self.functions]
        if self.project_settings:
            out["project_settings"] = [e.to_json() for e in self.project_settings]
        if self.manual_restore:
            out["manual_restore"] = list(self.manual_restore)
        return out

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Manifest:
        """Build from a manifest dict that :func:`.manifest.validate_manifest` has checked."""
        encryption = d.get("encryption")
        return cls(
            format=str(d["format"]),
            version=int(d["version"]),
            snapshot_time=str(d["snapshot_time"]),
            source=SourceInfo.from_json(d["source"]),
            pg_dump=DumpInfo.from_json(d.get("pg_dump") or {}),
            created_at=d.get("created_at"),
            tool_version=(d.get("tool") or {}).get("version"),
            settings=dict(d.get("settings") or {}),
            scope_schemas=tuple(d.get("scope_schemas") or ()),
            excluded_schemas=tuple(d.get("excluded_schemas") or ()),
            excluded_table_data=tuple(d.get("excluded_table_data") or ()),
            roles=tuple(d.get("roles") or ()),
            tables={k: TableEntry.from_json(v) for k, v in d["tables"].items()},
            schema={k: {n: dict(o) for n, o in v.items()} for k, v in d["schema"].items()},
            extensions={
                str(k): ExtensionEntry.from_json(e) for k, e in (d.get("extensions") or {}).items()
            },
            rls=RlsProof.from_json(d.get("rls") or {}),
            storage=StorageSection.from_json(d["storage"]),
            timings=dict(d.get("timings") or {}),
            files={rel: FileEntry.from_json(f) for rel, f in d["files"].items()},
            encryption=Encryption.from_json(encryption) if encryption is not None else None,
            functions=tuple(FunctionEntry.from_json(f) for f in d.get("functions") or ()),
            project_settings=tuple(
                SettingsEntry.from_json(e) for e in d.get("project_settings") or ()
            ),
            manual_restore=tuple(str(m) for m in d.get("manual_restore") or ()),
        )
