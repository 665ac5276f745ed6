"""The project's Auth and Storage settings in the backup set, and what a restore does by hand.

With ``SUPABASE_ACCESS_TOKEN`` the export reads the project's Auth settings
(``GET /v1/projects/{ref}/config/auth``, ``AuthConfigResponse``) and Storage settings
(``.../config/storage``, ``StorageConfigResponse``) and writes them to ``settings/auth.json``
and ``settings/storage.json`` in the set, listed with their SHA-256 like every file (the
integrity check covers them, an encrypted set encrypts them). A secret is never written:
every field whose name says it holds one (an OAuth provider's ``*_secret``, ``smtp_pass``,
``sms_twilio_auth_token``, the hooks' ``*_secrets``, ...) is left out, and the manifest keeps
only the names of those that were set, so the report can say which ones a restore must set
again.

The export also reads what no backup holds and lists it as the restore's manual steps: the
names of the Edge Functions' secrets (``GET .../secrets``; values are never kept), a custom
domain (``GET .../custom-hostname``) and network restrictions
(``GET .../network-restrictions``). A part the token may not read is said as such.

On the branch target the branch's settings are compared with the backup's and the
differences are named (field names only, never values), as are the Edge Functions the
branch runs differently.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .edge_functions import export_functions
from .management import ManagementApi, ManagementApiError
from .model import FunctionEntry, PlatformExport, SettingsEntry

SECTIONS = ("auth", "storage")
_SECRET = re.compile(
    r"(?:^|_)(?:secret|secrets|pass|password|token|auth_token|api_key|api_secret|access_key"
    r"|private_key)$|_secret_|^sms_test_otp$"
)
# Fields a new project or branch has of its own, whatever the source's: not a difference.
_OWN_FIELDS = frozenset({"migration_version", "databasePoolMode"})
_OPEN_CIDRS = frozenset({"0.0.0.0/0", "::/0"})


def is_secret(name: str) -> bool:
    """Whether a settings field holds a secret, by its name (``external_google_secret``,
    ``smtp_pass``, ``sms_vonage_api_key``, ``hook_send_sms_secrets``, ...)."""
    return _SECRET.search(name) is not None


def redact(config: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``config`` without its secret fields, and the names of those that were set."""
    kept = {k: v for k, v in config.items() if not is_secret(k)}
    set_secrets = tuple(sorted(k for k, v in config.items() if is_secret(k) and v))
    return kept, set_secrets


def _write(set_dir: Path, rel: str, data: Mapping[str, Any]) -> tuple[int, str]:
    body = json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"
    path = set_dir / rel
    path.parent.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(body)
    return len(body), hashlib.sha256(body).hexdigest()


def _read(api: ManagementApi, section: str) -> dict[str, Any]:
    data = api.call("GET", api.project_path(f"/config/{section}"))
    if not isinstance(data, dict):
        raise ManagementApiError(
            f"Supabase Management API GET {api.project_path(f'/config/{section}')}: "
            "the answer is not an object"
        )
    return data


def export_settings(api: ManagementApi, set_dir: Path) -> tuple[SettingsEntry, ...]:
    """Write the Auth and Storage settings (secrets left out) into ``set_dir/settings``."""
    entries: list[SettingsEntry] = []
    for section in SECTIONS:
        kept, secrets = redact(_read(api, section))
        rel = f"settings/{section}.json"
        size, sha256 = _write(set_dir, rel, kept)
        entries.append(
            SettingsEntry(
                section=section,
                file=rel,
                size=size,
                sha256=sha256,
                fields=len(kept),
                secrets_set=secrets,
            )
        )
    return tuple(entries)


def _optional(api: ManagementApi, suffix: str) -> tuple[Any, str | None]:
    """The answer of a GET that a project may not have (404) or a token may not read."""
    try:
        return api.call("GET", api.project_path(suffix)), None
    except ManagementApiError as exc:
        if exc.status == 404:
            return None, None
        return None, str(exc)


def manual_steps(api: ManagementApi, settings: tuple[SettingsEntry, ...]) -> tuple[str, ...]:
    """What a full restore of the project has to do by hand, from what the API says now."""
    steps: list[str] = []
    for entry in settings:
        if entry.secrets_set:
            steps.append(
                f"{entry.section} settings: set {len(entry.secrets_set)} secret(s) again "
                f"(never exported): {', '.join(entry.secrets_set)}"
            )
    secrets, error = _optional(api, "/secrets")
    if error is not None:
        steps.append(f"Edge Function secrets: could not be listed ({error})")
    elif isinstance(secrets, list) and secrets:
        names = sorted(str(s.get("name")) for s in secrets if isinstance(s, dict))
        steps.append(
            f"Edge Function secrets: set {len(names)} again (values are never exported): "
            + ", ".join(names)
        )
    hostname, error = _optional(api, "/custom-hostname")
    if error is not None:
        steps.append(f"custom domain: could not be read ({error})")
    elif isinstance(hostname, dict) and hostname.get("custom_hostname"):
        steps.append(
            f"custom domain {hostname['custom_hostname']} (status {hostname.get('status')}): "
            "set it up again on the new project, DNS records included"
        )
    restrictions, error = _optional(api, "/network-restrictions")
    if error is not None:
        steps.append(f"network restrictions: could not be read ({error})")
    elif isinstance(restrictions, dict):
        config = restrictions.get("config") or {}
        cidrs = [*config.get("dbAllowedCidrs", []), *config.get("dbAllowedCidrsV6", [])]
        restricted = [str(c) for c in cidrs if c not in _OPEN_CIDRS]
        if restricted:
            steps.append(
                f"network restrictions: apply the {len(restricted)} allowed CIDR range(s) "
                f"again: {', '.join(restricted)}"
            )
    return tuple(steps)


def export_platform(api: ManagementApi, set_dir: Path) -> PlatformExport:
    """Edge Function bundles, Auth and Storage settings, and the manual steps, into the set."""
    functions = export_functions(api, set_dir)
    settings = export_settings(api, set_dir)
    return PlatformExport(functions, settings, manual_steps(api, settings))


def differences(section: str, backup: Mapping[str, Any], live: Mapping[str, Any]) -> list[str]:
    """The fields (names only) whose values differ between the backup's settings and a
    project's, secrets and the fields each project has of its own left out."""
    names = (set(backup) | set(live)) - _OWN_FIELDS
    return [
        f"{section}.{name}"
        for name in sorted(names)
        if not is_secret(name) and backup.get(name) != live.get(name)
    ]


def compare_branch(
    api: ManagementApi,
    branch_ref: str,
    set_dir: Path,
    settings: tuple[SettingsEntry, ...],
    functions: tuple[FunctionEntry, ...],
) -> list[str]:
    """What the branch runs differently from the backup: settings fields by name, Edge
    Functions by slug (missing, or a bundle of another SHA-256)."""
    branch = ManagementApi.for_project(api, branch_ref)
    out: list[str] = []
    for entry in settings:
        backup = json.loads((set_dir / entry.file).read_text())
        try:
            live = _read(branch, entry.section)
        except ManagementApiError as exc:
            out.append(f"{entry.section} settings of the branch could not be read: {exc}")
            continue
        diff = differences(entry.section, backup, live)
        if diff:
            out.append(
                f"{entry.section} settings differ in {len(diff)} field(s): {', '.join(diff)}"
            )
    if functions:
        try:
            deployed = {str(f.get("slug")) for f in branch.functions()}
        except ManagementApiError as exc:
            return [*out, f"Edge Functions of the branch could not be listed: {exc}"]
        for fn in functions:
            if fn.slug not in deployed:
                out.append(f"Edge Function {fn.slug}: not deployed on the branch")
                continue
            body = branch.function_body(fn.slug)
            if hashlib.sha256(body).hexdigest() != fn.sha256:
                out.append(f"Edge Function {fn.slug}: the branch runs another bundle")
    return out


__all__ = [
    "compare_branch",
    "differences",
    "export_platform",
    "export_settings",
    "is_secret",
    "manual_steps",
    "redact",
]
