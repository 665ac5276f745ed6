"""What an S3 fault means: worth another try, fatal for the whole transfer, or one object's
problem; the message that says what to check; and the backoff between tries."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import SSLError as BotoSSLError
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from ..connections import mask_url
from .endpoint import S3Endpoint

T = TypeVar("T")

_BACKOFF_BASE = 0.2
_BACKOFF_CAP = 5.0

_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        "Throttling",
        "ThrottlingException",
        "TooManyRequests",
        "RequestLimitExceeded",
    }
)
_CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AuthorizationHeaderMalformed",
        "InvalidToken",
        "ExpiredToken",
        "InvalidSignature",
    }
)
# Every fault a request to the endpoint can end in.
FAULTS = (ClientError, BotoCoreError, Urllib3HTTPError, OSError)
# Faults of one connection or one response: worth another try.
TRANSIENT_IO = (
    ConnectionClosedError,
    ReadTimeoutError,
    ResponseStreamingError,
    IncompleteReadError,
    Urllib3HTTPError,
    ConnectionResetError,
    BrokenPipeError,
)
# Faults of reaching the endpoint at all: retried, then fatal for the whole transfer.
UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError)


def error_code(exc: ClientError) -> tuple[str, int]:
    """The S3 error code and the HTTP status of a ClientError."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return str(error.get("Code", "")), int(status or 0)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        code, status = error_code(exc)
        return code in _TRANSIENT_CODES or status in (429, 500, 502, 503, 504)
    return isinstance(exc, TRANSIENT_IO + UNREACHABLE)


def is_fatal(exc: BaseException) -> bool:
    """The endpoint as a whole is unusable (unreachable, or it refuses the keys)."""
    return isinstance(exc, UNREACHABLE) or (
        isinstance(exc, ClientError) and error_code(exc)[0] in _CREDENTIAL_CODES
    )


def is_precondition(exc: BaseException) -> bool:
    if not isinstance(exc, ClientError):
        return False
    code, status = error_code(exc)
    return code == "PreconditionFailed" or status == 412


def is_gone(exc: BaseException) -> bool:
    if not isinstance(exc, ClientError):
        return False
    code, status = error_code(exc)
    return code in ("NoSuchKey", "NotFound") or (code == "404" and status == 404)


def describe(exc: BaseException, endpoint: S3Endpoint) -> str:
    """The exception as text with the secret key removed (botocore never includes it, but a
    proxy's or server's error body might echo request headers)."""
    text = f"{type(exc).__name__}: {exc}"
    secret = endpoint.secret_access_key
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


def hint(exc: BaseException, endpoint: S3Endpoint) -> str:
    """What to check, for an error that retrying will not fix."""
    where = f"endpoint {mask_url(endpoint.url)}, region {endpoint.region!r}"
    if isinstance(exc, ClientError):
        code, status = error_code(exc)
        if code in _CREDENTIAL_CODES:
            return (
                f"Check the S3 access key id and secret key (Storage > S3 access keys) "
                f"and the region ({where})."
            )
        if code in ("AccessDenied", "Forbidden") or status == 403:
            return (
                f"Access was denied: check that the S3 access keys belong to this project "
                f"and may read every bucket, and the region ({where})."
            )
        if code == "NoSuchBucket":
            return f"The bucket does not exist at {where}: check the bucket name and endpoint."
        if code in ("PermanentRedirect", "IllegalLocationConstraintException"):
            return f"Check the region: the server refused {where}."
        return f"Check the endpoint, keys and region ({where})."
    if isinstance(exc, BotoSSLError):
        return f"TLS failed: check the endpoint URL and its certificate ({where})."
    if isinstance(exc, UNREACHABLE):
        return f"Could not connect: check the endpoint URL and network access ({where})."
    return f"Check the endpoint and network ({where})."


def endpoint_error(action: str, exc: BaseException, endpoint: S3Endpoint, attempts: int) -> str:
    """``action`` failed: the fault, how often it was tried, and what to check."""
    tries = f" ({attempts} attempts)" if is_transient(exc) else ""
    return f"{action} failed{tries}: {describe(exc, endpoint)}. {hint(exc, endpoint)}"


class Retrier:
    """Exponential backoff with full jitter, bounded by attempts and by a deadline."""

    def __init__(self, retries: int, deadline: float | None, stop: threading.Event) -> None:
        self.retries = max(0, retries)
        self.deadline = deadline
        self.stop = stop

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def pause(self, failures: int) -> bool:
        """Sleep before retry number ``failures``; False when no retry is left."""
        if failures > self.retries or self.stop.is_set():
            return False
        delay = random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** (failures - 1)))
        if self.deadline is not None and time.monotonic() + delay >= self.deadline:
            return False
        # Event.wait, not sleep: a fatal error elsewhere ends the wait at once.
        return not self.stop.wait(delay)

    def again(self, exc: BaseException, failures: int) -> bool:
        """After failure number ``failures``: sleep and say True when ``exc`` is worth
        another try and one is left; False (re-raise it) otherwise."""
        return is_transient(exc) and self.pause(failures)

    def call(self, fn: Callable[[], T]) -> T:
        """``fn()``, retried on transient faults. Re-raises the last fault."""
        failures = 0
        while True:
            try:
                return fn()
            except FAULTS as exc:
                failures += 1
                if not self.again(exc, failures):
                    raise
