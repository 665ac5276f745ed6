"""JSON Web Tokens as a Supabase project's APIs accept them: HS256, signed with the project's
JWT secret (``BranchDetailResponse.jwt_secret`` for a branch).

The drill mints one short-lived token per sampled ``auth.users`` id (``role``
``authenticated``, ``sub`` the id), so that PostgREST evaluates row-level security for that
user exactly as for the user's own session. A token is a credential: it is never written to
a report, a log or the drill state, and its claims carry no more than a session's would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

TOKEN_SECONDS = 600  # long enough for one category's requests, useless soon after


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint(secret: str, claims: dict[str, Any]) -> str:
    """An HS256 JWT of ``claims`` signed with ``secret``."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signing_input = f"{header}.{body}".encode("ascii")
    signature = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def user_token(secret: str, user_id: str, *, now: float | None = None) -> str:
    """What Supabase Auth issues a signed-in user: ``role`` and ``aud`` ``authenticated``,
    ``sub`` the user's id, valid for :data:`TOKEN_SECONDS`."""
    issued = int(now if now is not None else time.time())
    return mint(
        secret,
        {
            "sub": user_id,
            "role": "authenticated",
            "aud": "authenticated",
            "iat": issued,
            "exp": issued + TOKEN_SECONDS,
            "iss": "supabase-restore-drill",
        },
    )


def role_token(secret: str, role: str, *, now: float | None = None) -> str:
    """A token for a role alone (``anon``), as the project's API keys are."""
    issued = int(now if now is not None else time.time())
    return mint(
        secret,
        {"role": role, "iat": issued, "exp": issued + TOKEN_SECONDS, "iss": "supabase"},
    )


__all__ = ["TOKEN_SECONDS", "mint", "role_token", "user_token"]
