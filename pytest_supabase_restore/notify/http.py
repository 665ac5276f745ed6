"""A small JSON-over-HTTP client with bounded retries, for the notifiers.

Standard library only (``urllib``), so notifying needs no extra dependency. Retries:

* ``429`` and ``500/502/503/504`` and connection errors are retried with exponential
  backoff (with jitter, so parallel CI jobs do not retry in lockstep);
* ``Retry-After`` (seconds or an HTTP date) is honoured;
* GitHub's primary rate limit (``x-ratelimit-remaining: 0`` + ``x-ratelimit-reset``) and
  secondary rate limits (``403``/``429`` mentioning it; at least a minute, per GitHub's
  docs, when no ``Retry-After`` is given) are waited out;
* the whole exchange, sleeps included, is bounded by ``RetryPolicy.total_seconds``: when the
  next wait would not fit, the client gives up at once and says why.

Error messages name the request by its ``label`` only. They never contain request
headers (the token) nor, for a webhook, the URL (the URL is the secret).
"""

from __future__ import annotations

import http.client
import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
SECONDARY_LIMIT_WAIT = 60.0  # GitHub: "wait for at least one minute before retrying"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. ``total_seconds`` bounds everything, sleeps included."""

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    total_seconds: float = 90.0
    timeout: float = 15.0  # one request


@dataclass
class Response:
    """A successful (2xx) response."""

    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes = field(repr=False)

    def json(self) -> Any:
        """The body parsed as JSON (``None`` for an empty body)."""
        return json.loads(self.body) if self.body.strip() else None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class HttpError(Exception):
    """The request did not succeed. The message is safe to show (no URL of a webhook)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Attempt:
    status: int | None
    headers: dict[str, str]
    body: bytes
    error: str | None = None  # connection-level failure


def _send(
    method: str, url: str, data: bytes | None, headers: Mapping[str, str], timeout: float
) -> _Attempt:
    # The scheme is checked by request_json: only http(s) reaches here.
    request = urllib.request.Request(url, data=data, headers=dict(headers), method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310
            return _Attempt(resp.status, _lower(resp.headers.items()), resp.read())
    except urllib.error.HTTPError as exc:
        try:
            body = exc.read() if exc.fp is not None else b""
        except OSError:
            body = b""
        finally:
            exc.close()
        return _Attempt(exc.code, _lower(exc.headers.items() if exc.headers else []), body)
    except urllib.error.URLError as exc:
        return _Attempt(None, {}, b"", f"connection failed ({exc.reason})")
    except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
        return _Attempt(None, {}, b"", f"connection failed ({type(exc).__name__}: {exc})")


def _lower(items: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in items}


def _retry_after(headers: Mapping[str, str], wall: float) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - wall)
    except (TypeError, ValueError):
        return None


def _detail(body: bytes) -> str:
    """A one-line description of an error body (GitHub's ``message`` if present).

    Not shortened here: this module does not know the run's secrets, and a body cut
    before redaction could show the prefix of one it echoes (a webhook path). The callers
    redact the error, and the reporting shortens it after that."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        text = data["message"]
    return " ".join(text.split())


def _is_rate_limited(attempt: _Attempt) -> bool:
    if attempt.status not in (403, 429):
        return False
    h = attempt.headers
    return (
        attempt.status == 429
        or h.get("x-ratelimit-remaining") == "0"
        or "retry-after" in h
        or b"rate limit" in attempt.body.lower()
    )


def request_json(
    method: str,
    url: str,
    *,
    label: str,
    payload: Any = None,
    headers: Mapping[str, str] | None = None,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], float] = time.time,
) -> Response:
    """Send ``payload`` as JSON and return the 2xx response, retrying as described above.

    ``label`` names the request in errors (e.g. ``"GitHub POST /repos/o/r/issues"`` or
    ``"Slack webhook"``). Raises :class:`HttpError` when it cannot succeed in time.
    Note that a retried POST may be applied twice if the server acted before failing.
    """
    policy = policy or RetryPolicy()
    if not url.lower().startswith(("http://", "https://")):
        raise HttpError(f"{label}: only http(s) URLs are supported")
    data = None if payload is None else json.dumps(payload).encode("utf-8")
    all_headers = {"Accept": "application/json", "User-Agent": "pytest-supabase-restore"}
    if data is not None:
        all_headers["Content-Type"] = "application/json; charset=utf-8"
    all_headers.update(headers or {})

    start = clock()
    deadline = start + policy.total_seconds
    last = "no attempt made"
    hint = ""
    attempt_no = 0
    while attempt_no < policy.attempts:
        attempt_no += 1
        remaining = deadline - clock()
        if remaining <= 0:
            break
        result = _send(method, url, data, all_headers, min(policy.timeout, remaining))
        if result.status is not None and 200 <= result.status < 300:
            return Response(result.status, result.headers, result.body)

        backoff = min(policy.max_delay, policy.base_delay * 2 ** (attempt_no - 1))
        backoff *= random.uniform(1.0, 1.25)
        if result.error is not None:
            last, delay = result.error, backoff
        elif _is_rate_limited(result):
            last = f"HTTP {result.status} (rate limited)"
            delay = _rate_limit_delay(result, wall(), backoff)
            reset = result.headers.get("x-ratelimit-reset")
            if reset and reset.isdigit():
                hint = "; the rate limit resets at " + time.strftime(
                    "%H:%M:%S UTC", time.gmtime(int(reset))
                )
        elif result.status in RETRY_STATUSES:
            last = f"HTTP {result.status}"
            after = _retry_after(result.headers, wall())
            delay = after if after is not None else backoff
        else:
            status = result.status
            raise HttpError(f"{label}: HTTP {status}: {_detail(result.body)}", status)

        if attempt_no >= policy.attempts:
            break
        if clock() + delay >= deadline:
            hint = hint or f"; the next retry (in {delay:.0f} s) would exceed the time bound"
            break
        sleep(delay)

    elapsed = clock() - start
    raise HttpError(
        f"{label}: gave up after {attempt_no} attempt{'s' * (attempt_no != 1)} in "
        f"{elapsed:.1f} s; last: {last}{hint}"
    )


def _rate_limit_delay(result: _Attempt, now: float, backoff: float) -> float:
    after = _retry_after(result.headers, now)
    if after is not None:
        return after
    reset = result.headers.get("x-ratelimit-reset")
    if result.headers.get("x-ratelimit-remaining") == "0" and reset and reset.isdigit():
        return max(0.0, int(reset) - now) + 1.0
    if result.status == 403:
        # A secondary rate limit without Retry-After: GitHub asks for at least a minute.
        return max(SECONDARY_LIMIT_WAIT, backoff)
    return backoff
