"""The local S3 server's program: moto, with authentication on, its own random keys, and
object bytes on disk.

Run as a script (``python -I _server_main.py HOST PORT LOG STORE``) by :mod:`.server`, never
imported by the package. Before it serves, it creates one IAM user with a fresh access key
inside moto and prints the key pair as one JSON line on stdout (a pipe read by the parent);
from then on stdout and stderr go to LOG, and moto verifies every request's signature
against that key, so another local process without the key can read or write nothing.
moto's own ``/moto-api`` (state dumps and resets that bypass authentication) is refused.

moto keeps each object's bytes in a ``SpooledTemporaryFile`` (in memory below 5 MiB), so a
store of 4,000 objects of 200 kB held 870 MB resident. Here each object's (and each
multipart part's) bytes are a file of their own under STORE, a private directory the parent
removes, opened only while a request reads or writes them: the server's memory then grows
with the number of objects (moto's metadata, a few kB each), not with their bytes, and no
file descriptor is held between requests. One request still holds its object, or its part,
in memory while moto serves it (moto reads whole bodies).

Every object also gets the SHA-256 of the bytes the server received, computed as it stores
them: HEAD and GET with ``x-amz-checksum-mode: ENABLED`` return it as a full-object
``x-amz-checksum-sha256``, as S3 does for an object uploaded with that checksum, so a
verification can compare the store's own hash with the backup's without downloading the
object again. A checksum a client sends is stored by moto unchecked; for SHA-256 the server
reports its own instead.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
)


class DiskValue:
    """One object's bytes in a file of its own, in place of moto's ``SpooledTemporaryFile``.

    moto uses only ``seek(0)``, ``truncate()``, ``write``, ``read`` and ``close`` on it
    (``moto.s3.models.FakeKey``); each opens the file for that call alone.
    """

    __slots__ = ("closed", "path", "position")
    _names = itertools.count()
    root = ""  # the store's directory, set by main()

    def __init__(self, max_size: int = 0, *args: Any, **kwargs: Any) -> None:
        self.path = os.path.join(self.root, str(next(self._names)))
        self.position = 0
        self.closed = False
        with open(self.path, "wb"):
            pass

    def _live(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on a closed object value")

    def seek(self, position: int, whence: int = 0) -> int:
        self._live()
        if whence == os.SEEK_END:
            position += os.path.getsize(self.path)
        elif whence == os.SEEK_CUR:
            position += self.position
        self.position = position
        return position

    def tell(self) -> int:
        return self.position

    def truncate(self, size: int | None = None) -> int:
        self._live()
        size = self.position if size is None else size
        os.truncate(self.path, size)
        return size

    def write(self, data: bytes) -> int:
        self._live()
        with open(self.path, "r+b") as fh:
            fh.seek(self.position)
            written = fh.write(data)
        self.position += written
        return written

    def read(self, size: int = -1) -> bytes:
        self._live()
        with open(self.path, "rb") as fh:
            fh.seek(self.position)
            data = fh.read(size)
        self.position += len(data)
        return data

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)


def _values_on_disk(root: str) -> None:
    """Make moto's S3 keys keep their bytes in files under ``root``."""
    import types

    import moto.s3.models

    DiskValue.root = root
    models: Any = moto.s3.models  # its ``tempfile`` is only ever asked for this class
    models.tempfile = types.SimpleNamespace(SpooledTemporaryFile=DiskValue)


def _checksums_of_received_bytes() -> None:
    """Make each moto key report the SHA-256 of the bytes it was given (see the docstring)."""
    from moto.s3.models import FakeKey

    keys: Any = FakeKey  # patched in place: moto's model has no hook for this
    value = keys.value

    def set_value(self: Any, new: bytes | str) -> None:
        data = new.encode() if isinstance(new, str) else new
        self._received_sha256 = base64.b64encode(hashlib.sha256(data).digest()).decode()
        value.fset(self, data)

    def told(self: Any) -> str | None:
        """The algorithm a client named, unless it is SHA-256 (then ours stands)."""
        algorithm = self.__dict__.get("_told_algorithm")
        return None if algorithm == "SHA256" else algorithm

    def received(self: Any) -> str | None:
        return getattr(self, "_received_sha256", None)

    def field(name: str, ours: Callable[[Any], Any]) -> property:
        def get(self: Any) -> Any:
            return self.__dict__.get(name) if told(self) is not None else ours(self)

        def put(self: Any, new: Any) -> None:
            self.__dict__[name] = new

        return property(get, put)

    keys.value = property(value.fget, set_value)
    keys.checksum_algorithm = field(
        "_told_algorithm", lambda key: "SHA256" if received(key) else None
    )
    keys.checksum_value = field("_told_value", received)
    keys.checksum_type = field("_told_type", lambda key: "FULL_OBJECT" if received(key) else None)
    keys.checksum_parts = field("_told_parts", lambda key: None)


# Key fields with one of a few values each, never changed in place: the account, region,
# partition, storage class, and the restore state's fixed list of transitions.
_SHARED_FIELDS = frozenset(
    {"account_id", "region_name", "partition", "_storage_class", "_transitions", "model_name"}
)


class _Untracked(list[Any]):
    """moto's per-class list of every model instance ever made (for its reset, which this
    server refuses), kept empty: otherwise every object ever stored, deleted or overwritten
    stays in memory with its ACL and grant objects."""

    def append(self, item: Any) -> None:
        pass


def _lean_keys() -> None:
    """Make moto's per-object records smaller (measured with ``tracemalloc`` on 3,000
    objects: about 4 kB each before, most of it these four):

    * no instance tracking (see :class:`_Untracked`);
    * one shared canned ACL per name instead of a new ACL, grant and grantee per object
      (moto builds canned ACLs only in ``get_canned_acl`` and replaces, never edits, a
      key's ACL);
    * no empty tag set per object ARN (moto stores ``{}`` under each key's ARN on every
      PUT; a missing entry reads the same, as no tags);
    * each key's attribute dict rebuilt without the attributes still at their default
      ``None``/``False`` (moto sets some 40, more than Python's shared-key dicts hold), which
      then read from class-level defaults; a later assignment sets them on the key again;
      the fields of :data:`_SHARED_FIELDS` point at one copy of each value.

    Measured the same way after it: about 2.7 kB an object.
    """
    import functools

    import moto.s3.models as models
    from moto.core.common_models import BaseModel
    from moto.utilities.tagging_service import TaggingService

    for value in vars(models).values():
        if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel:
            value.instances_tracked = _Untracked()  # type: ignore[attr-defined]

    module: Any = models
    module.get_canned_acl = functools.lru_cache(maxsize=None)(models.get_canned_acl)

    tag_resource = TaggingService.tag_resource

    def tag_unless_empty(self: Any, arn: str, tags: Any) -> None:
        if not tags and arn not in self.tags:
            return
        tag_resource(self, arn, tags)

    TaggingService.tag_resource = tag_unless_empty  # type: ignore[method-assign]

    keys: Any = models.FakeKey
    init = keys.__init__
    shared: dict[Any, Any] = {}

    def lean_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        kept = {}
        for name, value in self.__dict__.items():
            if value is None or value is False:
                if not hasattr(keys, name):
                    setattr(keys, name, value)  # the default, read from the class from now on
                if getattr(keys, name) is value:
                    continue
            if name in _SHARED_FIELDS:  # the same few values on every key: one copy each
                value = shared.setdefault((name, repr(value)), value)
            kept[name] = value
        self.__dict__ = kept

    keys.__init__ = lean_init


_REQUEST = threading.local()  # the raw request line of the request this thread serves


def _verify_against_raw_uri() -> None:
    """moto checks a signature against the *decoded* URL, which differs from what the client
    signed for keys with ``+``, ``%``, ``=``, ``&`` or non-ASCII characters (common in
    Storage). Check it against the request's raw URI instead, as S3 does."""
    from moto.core.authorization import ActionAuthenticatorMixin

    original = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def authenticate(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        raw = getattr(_REQUEST, "raw_uri", None)
        if not raw:
            return original(self, iam_request_cls, resource)
        decoded = self.uri
        self.uri = raw
        try:
            return original(self, iam_request_cls, resource)
        finally:
            self.uri = decoded

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate  # type: ignore[method-assign]


def main(host: str, port: int, log_path: str, store: str) -> None:
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"  # every request is authenticated
    _values_on_disk(store)
    _checksums_of_received_bytes()
    _lean_keys()
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import run_simple

    iam = iam_backends[DEFAULT_ACCOUNT_ID]["global"]
    iam.create_user(region_name="us-east-1", user_name="supabase-restore")
    iam.put_user_policy("supabase-restore", "all", POLICY)
    key = iam.create_access_key("supabase-restore")
    sys.stdout.write(
        json.dumps({"access_key_id": key.access_key_id, "secret_access_key": key.secret_access_key})
        + "\n"
    )
    sys.stdout.flush()
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)

    _verify_against_raw_uri()
    app = DomainDispatcherApplication(create_backend_app)

    def guarded(environ: dict[str, Any], start_response: Any) -> Any:
        if str(environ.get("PATH_INFO", "")).startswith("/moto-api"):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"moto-api is disabled on this server\n"]
        if "HTTP_AUTHORIZATION" not in environ and "X-Amz-Signature" not in str(
            environ.get("QUERY_STRING", "")
        ):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"every request must be signed with this server's key\n"]
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        _REQUEST.raw_uri = f"http://{environ.get('HTTP_HOST', host)}{raw}" if raw else None
        return app(environ, start_response)

    run_simple(host, port, guarded, threaded=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])
