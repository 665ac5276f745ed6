"""The S3 client, isolated from the machine's AWS settings, and bucket listing.

Supabase's endpoint (``https://<ref>.supabase.co/storage/v1/s3``) needs path-style
addressing and SigV4, and rejects ``Content-MD5`` and ``x-amz-checksum-*``; the client is
configured for that, and takes everything (keys, region, CA) from the :class:`S3Endpoint`,
never from ``AWS_*`` variables or ``~/.aws``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import boto3.session
import botocore.loaders
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.configprovider import (
    BOTOCORE_DEFAUT_SESSION_VARIABLES,
    DEFAULT_PROXIES_CONFIG_VARS,
    DEFAULT_S3_CONFIG_VARS,
    ConfigChainFactory,
    ConfigValueStore,
    SectionConfigProvider,
)

from .endpoint import S3Endpoint

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ListObjectsV2OutputTypeDef, ObjectTypeDef

T = TypeVar("T")

_LOADER_LOCK = threading.Lock()
_LOADER: botocore.loaders.Loader | None = None


def _shared_loader() -> botocore.loaders.Loader:
    """One loader for all clients: each would otherwise parse its own copy of the S3 model
    (about 12 MiB of Python objects and 0.4 s)."""
    global _LOADER
    with _LOADER_LOCK:
        if _LOADER is None:
            _LOADER = botocore.loaders.create_loader()
        return _LOADER


def _isolated_botocore_session() -> botocore.session.Session:
    """A botocore session that reads no ``AWS_*`` variable and no ``~/.aws`` file.

    The machine's environment may point at another CA bundle, profile, endpoint or retry
    policy; a backup drill must behave the same wherever it runs, so every setting keeps
    only its built-in default unless we pass it explicitly.
    """
    session = botocore.session.Session()
    factory = ConfigChainFactory(session=session, environ={})

    def chains(variables: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
        return {
            name: factory.create_config_chain(
                instance_name=name, default=spec[2], conversion_func=spec[3]
            )
            for name, spec in variables.items()
        }

    mapping = chains(BOTOCORE_DEFAUT_SESSION_VARIABLES)
    mapping["s3"] = SectionConfigProvider("s3", session, chains(DEFAULT_S3_CONFIG_VARS))
    mapping["proxies_config"] = SectionConfigProvider(
        "proxies_config", session, chains(DEFAULT_PROXIES_CONFIG_VARS)
    )
    session.register_component("config_store", ConfigValueStore(mapping=mapping))
    session.register_component("data_loader", _shared_loader())
    # Section providers still read the config file: point it (and credentials) at nothing.
    session.set_config_variable("config_file", os.devnull)
    session.set_config_variable("credentials_file", os.devnull)
    return session


def make_client(
    endpoint: S3Endpoint,
    *,
    max_attempts: int = 5,
    connect_timeout: float = 10,
    read_timeout: float = 60,
    max_pool_connections: int = 16,
    verify: bool | str = True,
) -> S3Client:
    """A thread-safe boto3 S3 client for ``endpoint``: path-style, SigV4, no optional checksums.

    ``max_attempts`` counts the first try (1 disables botocore's own retries).
    ``verify`` is True (the bundled CA certificates) or the path of a CA bundle; the
    ``AWS_CA_BUNDLE``/``REQUESTS_CA_BUNDLE`` variables are deliberately not consulted.
    """
    config = BotoConfig(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        retries={"mode": "standard", "total_max_attempts": max(1, max_attempts)},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
        # Supabase rejects Content-MD5 and x-amz-checksum-*; botocore >= 1.36 sends them
        # by default.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    session = boto3.session.Session(botocore_session=_isolated_botocore_session())
    return session.client(
        "s3",
        endpoint_url=endpoint.url,
        region_name=endpoint.region,
        aws_access_key_id=endpoint.access_key_id,
        aws_secret_access_key=endpoint.secret_access_key,
        verify=verify,
        config=config,
    )


def list_buckets(client: S3Client) -> list[str]:
    """Names of every bucket the keys can see, sorted."""
    return sorted(b["Name"] for b in client.list_buckets().get("Buckets", []) if "Name" in b)


class Caller(Protocol):
    """How each listing request is made: directly, or through a retrier's ``call``."""

    def __call__(self, fn: Callable[[], T], /) -> T: ...


def _direct(fn: Callable[[], T], /) -> T:
    return fn()


def iter_objects(
    client: S3Client, bucket: str, *, page_size: int | None = None, call: Caller = _direct
) -> Iterator[ObjectTypeDef]:
    """Every object of ``bucket`` (ListObjectsV2 entries), following continuation tokens.

    ``page_size`` caps the keys per page (the server's default, usually 1000, otherwise).
    Each page's request goes through ``call``, so a retried fault on page 40 does not
    restart the listing.
    """
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"Bucket": bucket}
        if page_size is not None:
            kwargs["MaxKeys"] = page_size
        if token is not None:
            kwargs["ContinuationToken"] = token

        def request(kwargs: dict[str, Any] = kwargs) -> ListObjectsV2OutputTypeDef:
            return client.list_objects_v2(**kwargs)

        page = call(request)
        yield from page.get("Contents", [])
        token = page.get("NextContinuationToken")
        if not page.get("IsTruncated") or not token:
            return
