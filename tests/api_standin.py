"""A local stand-in for a Supabase branch's own APIs (``https://<ref>.supabase.co`` on the
platform, which cannot be reached here): PostgREST, Auth (GoTrue) and Storage, each backed
by the branch's real local PostgreSQL cluster (tests/platform_standin.py) and a real local
S3 server (:class:`~pytest_supabase_restore.storage.server.LocalS3Server`, the one the
ephemeral target uses).

One loopback HTTP server serves every branch, each at its own base URL
``http://127.0.0.1:<port>/<ref>`` (what ``SUPABASE_BRANCH_API_URL`` points the plugin at).
Every request carries a JWT that is verified as the platform does: HS256 with the branch's
``jwt_secret`` (PyJWT, not the plugin's own code), its ``role`` claim choosing the database
role. What each route does, after the real services:

- ``GET``/``HEAD /rest/v1/<table>`` (PostgREST): the request runs in a transaction as
  PostgREST's would, ``SET LOCAL ROLE`` the claim's role, ``request.jwt.claims`` (and the
  older ``request.jwt.claim.sub``/``.role``), ``search_path`` the profile's schema
  (``Accept-Profile``, default ``public``) then ``extensions``; ``Prefer: count=exact``
  gives ``Content-Range: 0-<n-1>/<n>`` (``*/0`` when empty). A table that does not exist is
  404 ``PGRST205``; no privilege is 401 for ``anon``, 403 otherwise (``42501``). Role
  settings (``ALTER ROLE ... SET``) are not applied: the demo project has none.
- ``GET /auth/v1/admin/users?page=&per_page=`` (GoTrue's ``adminUsers``, offset pagination):
  ``{"users": [...], "aud": ...}`` newest first, ``X-Total-Count`` and ``Link`` headers;
  service_role only. ``identities`` is left empty.
- ``GET /storage/v1/bucket``; ``POST /storage/v1/object/<bucket>/<name>`` (binary upload:
  the body, ``Content-Type``, ``Cache-Control``, ``x-upsert``; the ``storage.objects`` row
  written anew as Storage writes it: new version, metadata, ``updated_at``);
  ``GET /storage/v1/object[/authenticated]/<bucket>/<name>`` (the row must exist, then the
  bytes). Only the service_role may use Storage here (no Storage RLS).

Faults a test can set: ``changed_objects`` ("bucket/name": served with its first byte
changed) and ``missing_tables`` ("schema.table": PostgREST's schema cache lacks it), or
the same on the first object downloaded / the first table the service_role counts
(``change_first_download``, ``hide_first_counted``; the set then names it); and
``refuse_uploads`` (every upload answered 403, Storage's answer to a refused policy).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
import psycopg
from psycopg import sql

from pytest_supabase_restore.storage.client import make_client
from pytest_supabase_restore.storage.server import LocalS3Server


@dataclass(frozen=True)
class BranchService:
    """What one branch's APIs are backed by."""

    dsn: str = field(repr=False)  # the branch database, as its superuser
    jwt_secret: str = field(repr=False)
    subjects: set[str] = field(default_factory=set)  # where _claims records each ``sub``


@dataclass
class StandInApi:
    """The APIs' state: the branches they serve, the object store, faults, requests seen."""

    lookup: Callable[[str], BranchService | None]
    s3: LocalS3Server | None = None
    url: str = ""
    changed_objects: set[str] = field(default_factory=set)
    missing_tables: set[str] = field(default_factory=set)
    # The same faults, on whatever the drill asks for first: the first object downloaded,
    # the first table the service_role counts (the api_connectivity check's).
    change_first_download: bool = False
    hide_first_counted: bool = False
    refuse_uploads: bool = False  # every upload: 403, as Storage answers a policy refusal
    requests: list[tuple[str, str]] = field(default_factory=list)
    subjects: set[str] = field(default_factory=set)  # the ``sub`` of every verified JWT
    s3_buckets: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _client: Any = None

    @property
    def template(self) -> str:
        return self.url + "/{ref}"

    def client(self) -> Any:
        with self.lock:
            if self._client is None:
                assert self.s3 is not None
                self._client = make_client(self.s3.endpoint)
            return self._client


def api_keys(secret: str) -> list[dict[str, Any]]:
    """The ``ApiKeyResponse`` list of a branch: anon and service_role JWTs signed with its
    secret, as the platform's legacy API keys are."""
    return [
        {"name": name, "api_key": jwt.encode({"role": name, "iss": "supabase"}, secret, "HS256")}
        for name in ("anon", "service_role")
    ]


Answer = tuple[int, dict[str, str], bytes]


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def _claims(headers: Any, service: BranchService) -> dict[str, Any]:
    auth = headers.get("Authorization") or ""
    token = auth.removeprefix("Bearer ").strip() or (headers.get("apikey") or "")
    try:
        claims: dict[str, Any] = jwt.decode(
            token, service.jwt_secret, algorithms=["HS256"], options={"verify_aud": False}
        )
    except jwt.PyJWTError as exc:
        raise ApiError(401, {"code": "PGRST301", "message": f"JWT invalid: {exc}"}) from None
    if claims.get("sub"):
        service.subjects.add(str(claims["sub"]))
    if claims.get("role") not in ("anon", "authenticated", "service_role"):
        raise ApiError(401, {"code": "PGRST301", "message": "JWT role not allowed"})
    return claims


def _as_request(conn: psycopg.Connection[Any], claims: dict[str, Any], schema: str) -> None:
    role = str(claims["role"])
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
    conn.execute(
        "SELECT set_config('search_path', %s, true), set_config('request.jwt.claims', %s, true),"
        " set_config('request.jwt.claim.sub', %s, true),"
        " set_config('request.jwt.claim.role', %s, true)",
        (f'"{schema}", "extensions"', json.dumps(claims), str(claims.get("sub") or ""), role),
    )


def rest(
    api: StandInApi, service: BranchService, method: str, rest_path: str, headers: Any
) -> Answer:
    """PostgREST's read of one table: (status, headers, body)."""
    claims = _claims(headers, service)
    table = unquote(rest_path.split("?", 1)[0])
    schema = headers.get("Accept-Profile") or "public"
    with api.lock:
        if api.hide_first_counted and claims["role"] == "service_role":
            api.hide_first_counted = False
            api.missing_tables.add(f"{schema}.{table}")
    if f"{schema}.{table}" in api.missing_tables:
        raise ApiError(
            404,
            {
                "code": "PGRST205",
                "message": f"Could not find the table '{schema}.{table}' in the schema cache",
            },
        )
    with psycopg.connect(service.dsn, autocommit=False) as conn:
        found = conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone()
        if found is None or found[0] is None:
            raise ApiError(
                404,
                {
                    "code": "PGRST205",
                    "message": f"Could not find the table '{schema}.{table}' in the schema cache",
                },
            )
        rel = sql.Identifier(schema, table)
        try:
            _as_request(conn, claims, schema)
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(rel)).fetchone()
            count = int(row[0]) if row else 0
            rows = "[]"
            if method == "GET":
                got = conn.execute(
                    sql.SQL(
                        "SELECT coalesce(json_agg(t), '[]')::text FROM (SELECT * FROM {} LIMIT 1000) t"
                    ).format(rel)
                ).fetchone()
                rows = str(got[0]) if got else "[]"
        except psycopg.errors.InsufficientPrivilege as exc:
            status = 401 if claims["role"] == "anon" else 403
            raise ApiError(
                status, {"code": "42501", "message": str(exc.diag.message_primary)}
            ) from None
        except psycopg.Error as exc:
            raise ApiError(
                400, {"code": exc.sqlstate or "", "message": str(exc.diag.message_primary)}
            ) from None
        finally:
            conn.rollback()
    shown = min(count, 1000)
    span = f"0-{shown - 1}/{count}" if shown else f"*/{count}"
    if "count=exact" not in (headers.get("Prefer") or ""):
        span = span.rpartition("/")[0] + "/*"
    return 200, {"Content-Range": span, "Content-Type": "application/json"}, rows.encode()


def _service_only(claims: dict[str, Any]) -> None:
    if claims.get("role") != "service_role":
        raise ApiError(403, {"code": "not_admin", "message": "User not allowed"})


def admin_users(service: BranchService, query: str, headers: Any, path: str) -> Answer:
    """GoTrue's ``GET /admin/users`` with offset pagination."""
    _service_only(_claims(headers, service))
    params = parse_qs(query)
    page = int((params.get("page") or ["1"])[0])
    per_page = int((params.get("per_page") or ["50"])[0])
    with psycopg.connect(service.dsn, autocommit=True) as conn:
        total_row = conn.execute("SELECT count(*) FROM auth.users").fetchone()
        total = int(total_row[0]) if total_row else 0
        found = conn.execute(
            "SELECT to_jsonb(u) FROM auth.users u ORDER BY created_at DESC, id LIMIT %s OFFSET %s",
            (per_page, (page - 1) * per_page),
        ).fetchall()
    users = [_user(r[0]) for r in found]
    pages = -(-total // per_page) if per_page else 0
    link = f'<{path}?page={pages}&per_page={per_page}>; rel="last"'
    if pages > page:
        link = f'<{path}?page={page + 1}&per_page={per_page}>; rel="next", ' + link
    body = json.dumps({"users": users, "aud": "authenticated"}).encode()
    return (
        200,
        {"X-Total-Count": str(total), "Link": link, "Content-Type": "application/json"},
        body,
    )


def _user(row: dict[str, Any]) -> dict[str, Any]:
    """An ``auth.users`` row as GoTrue's ``User`` JSON (secrets and tokens left out)."""
    return {
        "id": row["id"],
        "aud": row.get("aud") or "",
        "role": row.get("role") or "",
        "email": row.get("email") or "",
        "phone": row.get("phone") or "",
        "email_confirmed_at": row.get("email_confirmed_at"),
        "confirmed_at": row.get("confirmed_at") or row.get("email_confirmed_at"),
        "last_sign_in_at": row.get("last_sign_in_at"),
        "app_metadata": row.get("raw_app_meta_data") or {},
        "user_metadata": row.get("raw_user_meta_data") or {},
        "identities": [],
        "created_at": row.get("created_at"),
        "updated_at": row.get("updated_at"),
        "is_anonymous": bool(row.get("is_anonymous")),
    }


BUCKET_FIELDS = (
    "id", "name", "owner", "public", "created_at", "updated_at", "file_size_limit",
    "allowed_mime_types",
)  # fmt: skip


def buckets(service: BranchService, headers: Any) -> Answer:
    """Storage's ``GET /bucket``: every row of ``storage.buckets``."""
    _service_only(_claims(headers, service))
    with psycopg.connect(service.dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT to_jsonb(b) FROM storage.buckets b ORDER BY id").fetchall()
    listed = [
        {k: r[0].get(k) for k in BUCKET_FIELDS} | {"owner": r[0].get("owner") or ""} for r in rows
    ]
    return 200, {"Content-Type": "application/json"}, json.dumps(listed).encode()


def _storage_error(status: int, error: str) -> ApiError:
    return ApiError(status, {"statusCode": str(status), "error": error, "message": error})


def upload(
    api: StandInApi, ref: str, service: BranchService, target: str, headers: Any, body: bytes
) -> Answer:
    """Storage's binary upload: the bytes into the object store, then the row, as Storage
    writes it (``x-upsert: true`` replaces an existing one, with a new version)."""
    claims = _claims(headers, service)
    _service_only(claims)
    if api.refuse_uploads:
        raise _storage_error(403, "new row violates row-level security policy")
    bucket, _, name = unquote(target).partition("/")
    content_type = headers.get("Content-Type") or "application/octet-stream"
    cache = headers.get("Cache-Control") or "no-cache"
    upsert = headers.get("x-upsert") == "true"
    with psycopg.connect(service.dsn, autocommit=True) as conn:
        if (
            conn.execute("SELECT 1 FROM storage.buckets WHERE id = %s", (bucket,)).fetchone()
            is None
        ):
            raise _storage_error(404, "Bucket not found")
        exists = conn.execute(
            "SELECT 1 FROM storage.objects WHERE bucket_id = %s AND name = %s", (bucket, name)
        ).fetchone()
        if exists and not upsert:
            raise _storage_error(409, "The resource already exists")
        client = api.client()
        _ensure_s3_bucket(api, client, ref)
        client.put_object(
            Bucket=ref,
            Key=f"{bucket}/{name}",
            Body=body,
            ContentType=content_type,
            CacheControl=cache,
        )
        version = str(uuid.uuid4())
        metadata = {
            "eTag": f'"{uuid.uuid4().hex}"',
            "size": len(body),
            "mimetype": content_type,
            "cacheControl": cache,
            "lastModified": "now",
            "contentLength": len(body),
            "httpStatusCode": 200,
        }
        conn.execute(
            "INSERT INTO storage.objects (bucket_id, name, owner, metadata, version)"
            " VALUES (%s, %s, NULL, %s, %s) ON CONFLICT (bucket_id, name) DO UPDATE SET"
            " metadata = EXCLUDED.metadata, version = EXCLUDED.version, updated_at = now(),"
            " owner = EXCLUDED.owner",
            (bucket, name, json.dumps(metadata), version),
        )
    answer = json.dumps({"Id": version, "Key": f"{bucket}/{name}"}).encode()
    return 200, {"Content-Type": "application/json"}, answer


def _ensure_s3_bucket(api: StandInApi, client: Any, name: str) -> None:
    """One S3 bucket per branch (Storage keeps a project's objects under one prefix)."""
    assert api.s3 is not None
    with api.lock:
        if name in api.s3_buckets:
            return
        region = api.s3.endpoint.region
        config = {} if region in ("", "us-east-1") else {"LocationConstraint": region}
        client.create_bucket(
            Bucket=name, **({"CreateBucketConfiguration": config} if config else {})
        )
        api.s3_buckets.add(name)


def download(
    api: StandInApi, ref: str, service: BranchService, target: str, headers: Any
) -> Answer:
    """Storage's authenticated download: the row must exist, then the bytes."""
    _service_only(_claims(headers, service))
    bucket, _, name = unquote(target.removeprefix("authenticated/")).partition("/")
    with psycopg.connect(service.dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT 1 FROM storage.objects WHERE bucket_id = %s AND name = %s", (bucket, name)
        ).fetchone()
    if row is None:
        raise _storage_error(400, "Object not found")
    try:
        got = api.client().get_object(Bucket=ref, Key=f"{bucket}/{name}")
    except Exception:
        raise _storage_error(404, "Object not found") from None
    data = got["Body"].read()
    with api.lock:
        if api.change_first_download:
            api.change_first_download = False
            api.changed_objects.add(f"{bucket}/{name}")
    if f"{bucket}/{name}" in api.changed_objects and data:
        data = bytes([data[0] ^ 0xFF]) + data[1:]
    out = {"Content-Type": str(got.get("ContentType") or "application/octet-stream")}
    if got.get("CacheControl"):
        out["Cache-Control"] = str(got["CacheControl"])
    return 200, out, data


def route(api: StandInApi, method: str, path: str, headers: Any, body: bytes) -> Answer:
    """One request to ``/<ref>/<service>/v1/...``."""
    parts = urlsplit(path)
    ref, _, rest_path = parts.path.lstrip("/").partition("/")
    service = api.lookup(ref)
    if service is None:
        raise ApiError(404, {"message": "no such project"})
    base = f"/{ref}"
    if rest_path.startswith("rest/v1/") and method in ("GET", "HEAD"):
        return rest(api, service, method, rest_path.removeprefix("rest/v1/"), headers)
    if rest_path == "auth/v1/admin/users" and method == "GET":
        return admin_users(service, parts.query, headers, f"{base}/auth/v1/admin/users")
    if rest_path == "storage/v1/bucket" and method == "GET":
        return buckets(service, headers)
    target = rest_path.removeprefix("storage/v1/object/")
    if target != rest_path and method == "POST":
        return upload(api, ref, service, target, headers, body)
    if target != rest_path and method == "GET":
        return download(api, ref, service, target, headers)
    raise ApiError(404, {"message": f"Cannot {method} {rest_path}"})


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self, method: str) -> None:
        api = self.server.api
        with api.lock:
            api.requests.append((method, self.path.split("?", 1)[0]))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, headers, data = route(api, method, self.path, self.headers, body)
        except ApiError as exc:
            status, headers = exc.status, {"Content-Type": "application/json"}
            data = json.dumps(exc.body).encode()
        except Exception as exc:  # the stand-in's own fault: a 500 the client can report
            status, headers = 500, {"Content-Type": "application/json"}
            data = json.dumps({"message": f"stand-in: {type(exc).__name__}: {exc}"}).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: StandInApi) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api = api


@contextmanager
def standin_api(lookup: Callable[[str], BranchService | None]) -> Iterator[StandInApi]:
    """Serve every branch's APIs on a free loopback port, with a local S3 server behind
    Storage; both are stopped at the end."""
    s3 = LocalS3Server(name="branch-storage").start()
    api = StandInApi(lookup=lookup, s3=s3)
    server = _Server(api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        s3.stop()
