"""How a setting is declared and read: an :class:`Option` (flag, environment variable,
ini key) derived from the :class:`~pytest_supabase_restore.config.Config` field that
declares it with :func:`option`, and the conversion of its raw value into its type."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any

import pytest


@dataclass(frozen=True)
class Option:
    """One plugin option: its flag, environment variable and ini key, derived from the
    :class:`~pytest_supabase_restore.config.Config` field that declares it (see
    :func:`option`)."""

    name: str  # attribute on Config
    flag: str
    help: str
    kind: str  # "bool" | "int" | "float" | "str" | "path" | "choice"
    default: Any
    choices: tuple[str, ...] = ()
    env: str | None = None
    ini: str | None = None
    metavar: str | None = None
    zero: str | None = None  # for a float: what 0 means, when 0 is allowed at all


_OPTION = "supabase_restore_option"  # the key of a Config field's metadata


def option(
    help: str,
    default: Any,
    *,
    choices: tuple[str, ...] = (),
    metavar: str | None = None,
    zero: str | None = None,
    flag: str | None = None,
    env: str | None = None,
    ini: str | None = None,
) -> Any:
    """Declare a :class:`Config` field as an option: its help and default, the one place
    either is written. The flag, environment variable and ini key follow from the field's
    name (``demo_scale``: ``--supabase-demo-scale``, ``SUPABASE_RESTORE_DEMO_SCALE``,
    ``supabase_demo_scale``) unless given; the kind, from its type."""
    spec = {
        "help": help,
        "default": default,
        "choices": choices,
        "metavar": metavar,
        "zero": zero,
        "flag": flag,
        "env": env,
        "ini": ini,
    }
    return field(default=default, metadata={_OPTION: spec})


_KINDS = {"bool": "bool", "int": "int", "float": "float", "str": "str", "Path": "path"}


def _option(f: Field[Any]) -> Option:
    spec = f.metadata[_OPTION]
    kind = "choice" if spec["choices"] else _KINDS[str(f.type).removesuffix(" | None")]
    return Option(
        name=f.name,
        flag=spec["flag"] or "--supabase-" + f.name.replace("_", "-"),
        help=spec["help"],
        kind=kind,
        default=spec["default"],
        choices=spec["choices"],
        env=spec["env"] or "SUPABASE_RESTORE_" + f.name.upper(),
        ini=spec["ini"] or "supabase_" + f.name,
        metavar=spec["metavar"],
        zero=spec["zero"],
    )


def declared_options(cls: type) -> tuple[Option, ...]:
    """The options that the fields of the dataclass ``cls`` declare, in field order."""
    return tuple(_option(f) for f in fields(cls) if _OPTION in f.metadata)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _to_bool(opt: Option, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected one of {sorted(_TRUE | _FALSE - {''})}")


def _to_int(opt: Option, raw: Any) -> int:
    value = int(str(raw).strip())
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _to_float(opt: Option, raw: Any) -> float:
    value = float(str(raw).strip())
    unit = opt.metavar or "number"
    # float() accepts nan and inf: a time limit of inf never fires (or overflows the timer),
    # and nothing compares greater than nan, so a check against either could never fail.
    if not math.isfinite(value):
        raise ValueError(f"must be a finite number of {unit}")
    if value < 0 or (value == 0 and opt.zero is None):
        raise ValueError(
            f"must be {unit} greater than 0"
            + (f", or 0 for {opt.zero}" if opt.zero is not None else "")
        )
    return value


def _to_path(opt: Option, raw: Any) -> Path:
    text = str(raw).strip()
    if not text:
        raise ValueError("empty path")
    return Path(text).expanduser()


def _to_choice(opt: Option, raw: Any) -> str:
    text = str(raw).strip().lower()
    if text not in opt.choices:
        raise ValueError(f"expected one of {', '.join(opt.choices)}")
    return text


_CONVERTERS: dict[str, Callable[[Option, Any], Any]] = {
    "bool": _to_bool,
    "int": _to_int,
    "float": _to_float,
    "path": _to_path,
    "choice": _to_choice,
    "str": lambda opt, raw: str(raw),
}


def convert(opt: Option, raw: Any, origin: str) -> Any:
    """Turn a raw value (string from env/ini, or parsed CLI value) into the option's type."""
    if raw is None:
        return None
    try:
        return _CONVERTERS[opt.kind](opt, raw)
    except ValueError as exc:
        where = {"cli": opt.flag}.get(origin, origin)
        raise pytest.UsageError(
            f"{opt.name}: invalid value {str(raw)!r} from {where} ({exc}). "
            f"Fix {opt.flag} / {opt.env} / ini {opt.ini}."
        ) from exc
