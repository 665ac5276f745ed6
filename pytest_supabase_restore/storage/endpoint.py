"""Where an S3-compatible endpoint is and which keys sign for it.

Imports no S3 library: the settings, the staging targets and the drill state name an
endpoint long before (and often without) anything talks to one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..connections import Connection

# The region of an endpoint whose settings name none: what S3 clients assume by default.
DEFAULT_REGION = "us-east-1"
# The region of the local S3 server (see server.py).
LOCAL_REGION = "local"


@dataclass(frozen=True)
class S3Endpoint:
    """Where and how to reach an S3-compatible endpoint. Both keys are kept out of its repr:
    the secret is a secret, and the access key id names the account in logs and tracebacks
    (botocore logs it in every signed request), so it is treated as one too."""

    url: str
    region: str
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)


def connection_endpoint(connection: Connection) -> S3Endpoint | None:
    """The S3 endpoint of a source or staging connection; None when it has no S3 settings.

    The region is the connection's ``*_S3_REGION``, or DEFAULT_REGION when that is unset.
    """
    if not connection.has_s3:
        return None
    assert (
        connection.s3_endpoint and connection.s3_access_key_id and connection.s3_secret_access_key
    )
    return S3Endpoint(
        connection.s3_endpoint,
        connection.s3_region or DEFAULT_REGION,
        connection.s3_access_key_id,
        connection.s3_secret_access_key,
    )
