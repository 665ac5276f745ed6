"""The local S3 server's program: moto, with authentication on and its own random keys.

Run as a script (``python -I _server_main.py HOST PORT LOG``) by :mod:`.server`, never
imported by the package. Before it serves, it creates one IAM user with a fresh access key
inside moto and prints the key pair as one JSON line on stdout (a pipe read by the parent);
from then on stdout and stderr go to LOG, and moto verifies every request's signature
against that key, so another local process without the key can read or write nothing.
moto's own ``/moto-api`` (state dumps and resets that bypass authentication) is refused.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import Any

POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
)


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


def main(host: str, port: int, log_path: str) -> None:
    os.environ["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"  # every request is authenticated
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
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
