"""Edge Functions in the backup set: each deployed source bundle, with its SHA-256.

With ``SUPABASE_ACCESS_TOKEN`` the export lists the project's functions
(``GET /v1/projects/{ref}/functions``) and writes each one's bundle
(``.../functions/{slug}/body``, as deployed) to ``functions/<slug>.bundle`` in the set. The
manifest lists each function (:class:`~.model.FunctionEntry`) and, like every file, its
bundle's size and SHA-256 under ``files``, so the integrity check covers the bundles and an
encrypted set encrypts them. Secrets of the functions are never read: the API does not
return their values with the bundle.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from .errors import BackupError
from .management import ManagementApi
from .model import FunctionEntry

_SLUG = re.compile(r"[A-Za-z0-9_-]{1,100}")


def export_functions(api: ManagementApi, set_dir: Path) -> tuple[FunctionEntry, ...]:
    """Write every Edge Function's bundle into ``set_dir/functions`` and describe them."""
    entries: list[FunctionEntry] = []
    for fn in sorted(api.functions(), key=lambda f: str(f.get("slug"))):
        slug = str(fn.get("slug") or "")
        if not _SLUG.fullmatch(slug):
            raise BackupError(
                f"Edge Functions: the Management API listed a function slug {slug[:80]!r} that "
                "cannot name a file; nothing was written for it."
            )
        body = api.function_body(slug)
        rel = f"functions/{slug}.bundle"
        path = set_dir / rel
        path.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        entries.append(
            FunctionEntry(
                slug=slug,
                name=str(fn.get("name") or slug),
                version=int(fn.get("version") or 0),
                status=str(fn.get("status") or ""),
                file=rel,
                size=len(body),
                sha256=hashlib.sha256(body).hexdigest(),
                entrypoint_path=fn.get("entrypoint_path"),
            )
        )
    return tuple(entries)
