"""The Storage API of a Supabase project (``<url>/storage/v1``), with the service_role key.

What the drill needs where no S3 key pair can be had (a branch: the Management API hands
out API keys, not Storage S3 access keys): upload an object with its Content-Type and
Cache-Control (``POST /object/{bucket}/{name}``, ``x-upsert: true``, the bytes as the body,
as Storage's binary upload takes them), and download one through the authenticated route
(``GET /object/authenticated/{bucket}/{name}``) hashing it as it streams, so memory stays
at one chunk whatever the object's size. Errors name the request and Storage's own message
(``{"statusCode", "error", "message"}``), never the key, and never a user id of an
object's path (:func:`without_ids`).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.client import HTTPResponse
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import StorageError

# A UUID in an object's path is, by Supabase's convention (one folder per user, its policies
# comparing the folder with auth.uid()), an auth.users id: never shown.
_UUID = re.compile(
    r"(?<![0-9a-fA-F-])[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}(?![0-9a-fA-F-])"
)
CHUNK = 1 << 20
TIMEOUT = 60.0
ATTEMPTS = 3  # an upsert and a download may be repeated; 5xx and lost connections are


@dataclass(frozen=True)
class Downloaded:
    """What a download through the Storage API gave: SHA-256, size and headers."""

    sha256: str
    size: int
    content_type: str | None
    cache_control: str | None


@dataclass(frozen=True)
class StorageApi:
    url: str  # the project's base URL
    key: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.url.lower().startswith(("http://", "https://")):
            raise StorageError(f"Storage API: {self.url!r} is not an http(s) URL")

    def _request(
        self, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None
    ) -> urllib.request.Request:
        return urllib.request.Request(  # noqa: S310 (an http(s) URL: __post_init__)
            f"{self.url}/storage/v1{path}",
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {self.key}", "apikey": self.key, **(headers or {})},
        )

    def _send(self, make: Callable[[], urllib.request.Request], label: str) -> HTTPResponse:
        """Open ``make()``'s request, retrying 5xx and lost connections; StorageError else."""
        last = ""
        for attempt in range(1, ATTEMPTS + 1):
            request = make()
            try:
                response: HTTPResponse = urllib.request.urlopen(request, timeout=TIMEOUT)  # noqa: S310
                return response
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {_message(exc)}"
                if exc.code < 500:
                    break
            except (urllib.error.URLError, OSError) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
            if attempt < ATTEMPTS:
                time.sleep(attempt)
        raise StorageError(without_ids(f"Storage API {label}: {last}"))

    def upload(
        self,
        bucket: str,
        name: str,
        path: Path,
        content_type: str | None,
        cache_control: str | None,
    ) -> None:
        """Put ``path``'s bytes at ``bucket``/``name`` (replacing what is there)."""
        size = path.stat().st_size
        headers = {"x-upsert": "true", "Content-Length": str(size)}
        headers["Content-Type"] = content_type or "application/octet-stream"
        if cache_control:
            headers["Cache-Control"] = cache_control
        target = f"/object/{quote(bucket, safe='')}/{quote(name)}"

        with path.open("rb") as body:

            def make() -> urllib.request.Request:
                body.seek(0)  # a retry sends the whole object again
                return self._request("POST", target, body=body, headers=headers)

            self._send(make, f"POST /object/{bucket}/{name}").close()

    def download(self, bucket: str, name: str) -> Downloaded:
        """Download ``bucket``/``name`` as a signed-in client does, hashing it as it comes."""
        target = f"/object/authenticated/{quote(bucket, safe='')}/{quote(name)}"
        response = self._send(
            lambda: self._request("GET", target), f"GET /object/authenticated/{bucket}/{name}"
        )
        digest, size = hashlib.sha256(), 0
        with response:
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
            headers = response.headers
        return Downloaded(
            digest.hexdigest(), size, headers.get("Content-Type"), headers.get("Cache-Control")
        )

    def bucket_ids(self) -> list[str]:
        """``GET /bucket``: the ids of every bucket the project has."""
        response = self._send(lambda: self._request("GET", "/bucket"), "GET /bucket")
        with response:
            data = json.loads(response.read())
        return [str(b.get("id")) for b in data if isinstance(b, dict)]


def without_ids(text: str) -> str:
    """``text`` with every UUID shown as ``<id>``: how object paths appear in messages."""
    return _UUID.sub("<id>", text)


def _message(exc: urllib.error.HTTPError) -> str:
    """Storage's own message from an error answer (its body is JSON), shortened."""
    try:
        body = json.loads(exc.read(4096) or b"{}")
    except (ValueError, OSError):
        return exc.reason or "error"
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or exc.reason)[:300]
    return str(exc.reason)


__all__ = ["Downloaded", "StorageApi", "without_ids"]
