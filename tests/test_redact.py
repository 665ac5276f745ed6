"""The redactor on its own: what it masks, in which spellings, and that it masks before it
shortens; and the sites that shorten messages (verdict, Slack, restore, drill)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from psycopg.conninfo import conninfo_to_dict

from pytest_supabase_restore import CATEGORIES
from pytest_supabase_restore.config import Config, header_lines
from pytest_supabase_restore.connections import Connection, mask_url
from pytest_supabase_restore.drill import Drill
from pytest_supabase_restore.notify.slack import slack_payload
from pytest_supabase_restore.redact import Redactor, shorten, spellings, tail
from pytest_supabase_restore.restore_messages import STATEMENT_LIMIT, parse_pg_restore_errors
from pytest_supabase_restore.results import DrillState
from pytest_supabase_restore.scrub import RedactingFilter
from pytest_supabase_restore.verdict import CheckOutcome, build_verdict

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
PASSWORD = "p@ss:w/rd-Geheim-4711"
URL = f"postgresql://postgres:{quote(PASSWORD, safe='')}@db.example.supabase.co:5432/postgres"
ENCODED = quote(PASSWORD, safe="")


def settings(db_url: str = URL, **kw: Any) -> Config:
    return Config(enabled=True, source=Connection(db_url=db_url), **kw)


def passing() -> list[CheckOutcome]:
    return [CheckOutcome(f"t.py::test[{c}]", c, "passed") for c in CATEGORIES]


def state(**kw: Any) -> DrillState:
    return DrillState(enabled=True, rto_seconds=1.0, snapshot_time=NOW.isoformat(), **kw)


def no_prefix(text: str) -> bool:
    """Nothing of the password is left, not even the start a cut would leave."""
    return all(p[:4] not in text for p in (ENCODED, PASSWORD))


# -- shortening ----------------------------------------------------------------------------


def test_shorten_cuts_at_a_word_boundary() -> None:
    text = "the restore reported seventeen unexpected errors in the schema section"
    assert shorten(text, 40) == "the restore reported seventeen…"
    assert shorten(text, len(text)) == text
    assert shorten("y" * 50, 10) == "y" * 9 + "…"  # one long word is cut where it must be


def test_shorten_in_the_middle_keeps_the_start_and_the_end() -> None:
    statement = (
        "CREATE FUNCTION public.refresh_totals() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        + "PERFORM pg_notify('totals', NEW.id::text); " * 40
        + "RETURN NEW; END $$;"
    )
    out = shorten(statement, 160, middle=True)
    assert len(out) <= 160
    assert out.startswith("CREATE FUNCTION public.refresh_totals() RETURNS trigger")
    assert out.endswith("RETURN NEW; END $$;")
    assert " … " in out


def test_tail_keeps_whole_lines_only() -> None:
    log = "\n".join(f"line {i}: connection to postgresql://u:pw{i}@h/d refused" for i in range(50))
    out = tail(log, 200)
    assert out.startswith("…\n") and out.endswith("pw49@h/d refused")
    assert all(line == "…" or line.startswith("line ") for line in out.splitlines())


@pytest.mark.parametrize("into", range(0, 80, 3))
def test_a_url_across_the_limit_is_masked_whole(into: int) -> None:
    """Wherever the limit falls inside the URL, nothing of its password is shown."""
    redactor = Redactor(settings().secrets())
    head = "x" * (300 - into)
    for message in (f"{head} {URL} and more", f"{head}{URL}"):
        line = redactor.line(message, 300)
        assert no_prefix(line), line
        assert no_prefix(redactor.shorten(message, 300))


def test_the_verdict_redacts_before_it_shortens() -> None:
    """The verdict's messages (terminal, JSON, job summary, GitHub, Slack come from them)."""
    cut_in_password = 300 - len("postgresql://postgres:p%40ss")
    message = "could not connect: " + "x" * (cut_in_password - 21) + " " + URL
    failed = CheckOutcome("t.py::test_storage_bad", "storage", "failed", [message])
    st = state(error=message, not_tested=["y" * (500 - 30) + " " + URL])
    verdict = build_verdict([*passing(), failed], st, settings(), NOW, env={})
    text = json.dumps(verdict.to_json())
    assert no_prefix(text), text
    assert "could not connect: xxx" in verdict.failures[0].message
    assert verdict.failures[0].message.endswith("***")


def test_a_test_id_holding_a_secret_is_redacted_in_the_verdict() -> None:
    failed = CheckOutcome(f"t.py::test_url[{URL}]", "storage", "failed", ["no"])
    verdict = build_verdict([*passing(), failed], state(), settings(), NOW, env={})
    assert verdict.failures[0].test == "t.py::test_url[***]"


def test_slack_redacts_before_it_escapes_and_cuts() -> None:
    """Slack escapes ``&<>`` and cuts sections at 2,900 characters: the redactor must see
    each text whole and before escaping (``a&amp;b`` is no longer the password ``a&b``)."""
    password = "a&b<c>d-Geheim-0815"
    raw = f"postgresql://postgres:{password}@db.example:5432/postgres"
    # Built without secrets, so the verdict itself still holds them: only Slack redacts.
    verdict = build_verdict(passing(), state(), Config(enabled=True), NOW, env={})
    # "*Not tested:* " + "fallback <password>" + "; " + 2800 z + " ": the URL starts at
    # 2855, so Slack's cut at 2900 falls 44 characters into it, just after "-Geh".
    verdict.not_tested = [f"fallback {password}", "z" * 2800 + " " + raw]
    payload = json.dumps(slack_payload(verdict, Redactor([raw, password])))
    assert "-Geh" not in payload, payload[-400:]
    assert "fallback ***" in payload


def test_restore_keeps_failed_statements_redacted_then_shortened() -> None:
    conninfo = "host=h user=u password=s3cr3t-0815 dbname=d"
    body = "x " * (STATEMENT_LIMIT // 2 + 100)  # longer than what is kept
    stderr = (
        "pg_restore: error: could not execute query: ERROR:  server does not exist\n"
        f"Command was: CREATE SERVER s FOREIGN DATA WRAPPER dblink_fdw OPTIONS ({body}"
        f"connstr '{conninfo}');\n"
    )
    ((message, statement),) = parse_pg_restore_errors(stderr, Redactor())
    assert message == "ERROR: server does not exist"
    assert "s3cr3t" not in statement and "password=***" in statement
    assert statement.startswith("CREATE SERVER s") and statement.endswith("dbname=d');")
    assert len(statement) <= STATEMENT_LIMIT


def test_the_drill_error_is_redacted_before_it_is_shortened(tmp_path: Path) -> None:
    class Broken(Exception):
        pass

    drill = Drill(settings(), tmp_path, lambda _m: None)

    def fail() -> Any:
        raise Broken("y" * (1000 - 60) + " " + URL)

    drill._source = fail  # type: ignore[method-assign]  # the first phase raises this
    out = drill.run()
    assert out.error is not None and len(out.error) <= 1000
    assert no_prefix(out.error), out.error


# -- URL passwords whatever they hold --------------------------------------------------------

# Each is accepted by libpq (checked below): the password is what libpq reads from it.
LIBPQ_URLS = [
    (
        "postgresql://user:pa?ss#x@db.example:5432/postgres",
        "pa?ss#x",
        "postgresql://user:***@db.example:5432/postgres",
    ),
    (
        "postgresql://user:pa?ss#x@db.example/postgres?sslmode=require",
        "pa?ss#x",
        "postgresql://user:***@db.example/postgres?sslmode=require",
    ),
    (
        "postgresql://user:p'q\"r<s>t`u@db.example/postgres",
        "p'q\"r<s>t`u",
        "postgresql://user:***@db.example/postgres",
    ),
    (
        "postgresql://user:[pw]:x@db.example/postgres",
        "[pw]:x",
        "postgresql://user:***@db.example/postgres",
    ),
    (
        "postgresql://user:ab#cd?ef@[::1]:5432/postgres",
        "ab#cd?ef",
        "postgresql://user:***@[::1]:5432/postgres",
    ),
    (
        "postgresql://db.example/postgres?password=qu#ery?pw&sslmode=require",
        "qu#ery?pw",
        "postgresql://db.example/postgres?password=***&sslmode=require",
    ),
]


@pytest.mark.parametrize(("url", "password", "masked"), LIBPQ_URLS)
def test_mask_url_masks_the_whole_password(url: str, password: str, masked: str) -> None:
    assert conninfo_to_dict(url)["password"] == password  # libpq accepts the URL
    assert mask_url(url) == masked


@pytest.mark.parametrize(("url", "password", "masked"), LIBPQ_URLS)
def test_the_redactor_masks_an_unknown_url_password_in_free_text(
    url: str, password: str, masked: str
) -> None:
    assert Redactor().redact(f"connection to {url} refused") == f"connection to {masked} refused"


def test_the_header_never_shows_a_password_with_question_mark_or_hash() -> None:
    url = "postgresql://postgres.ref:pa?ss#x@db.example:5432/postgres"
    text = "\n".join(header_lines(settings(url)))
    assert "pa?ss" not in text and "ss#x" not in text
    assert "postgres.ref:***@db.example:5432/postgres" in text


def test_key_value_dsn_passwords_are_masked_with_quotes_and_escapes() -> None:
    dsn = r"host=h password='a b\'c d' dbname=d"
    assert conninfo_to_dict(dsn)["password"] == "a b'c d"
    assert mask_url(dsn) == "host=h password=*** dbname=d"
    assert Redactor().redact(f"PGPASSWORD=hunter22 psql '{dsn}'") == (
        "PGPASSWORD=*** psql 'host=h password=*** dbname=d'"
    )


# -- what Config.secrets() registers -----------------------------------------------------------


def test_a_query_password_is_a_known_secret() -> None:
    url = "postgresql://db.example/postgres?password=Qx9-query-secret&sslmode=require"
    secrets = settings(url).secrets()
    assert "Qx9-query-secret" in secrets
    # Known, so it is masked wherever it appears, not only inside its URL.
    assert Redactor(secrets).redact("auth with Qx9-query-secret failed") == "auth with *** failed"


def test_a_password_libpq_decodes_is_known_in_both_spellings() -> None:
    secrets = settings("postgresql://u:p%C3%A4ss-w0rd@h/d").secrets()
    assert {"p%C3%A4ss-w0rd", "päss-w0rd"} <= set(secrets)


def test_a_short_password_is_masked_where_it_stands_as_a_password() -> None:
    redactor = Redactor(settings("postgresql://postgres:ab@db.example:5432/postgres").secrets())
    for text, expected in [
        ("PGPASSWORD=ab psql", "PGPASSWORD=*** psql"),
        ("dsn: host=h password='ab' dbname=d", "dsn: host=h password=*** dbname=d"),
        ("dsn: host=h sslpassword=ab dbname=d", "dsn: host=h sslpassword=*** dbname=d"),
        ("scp postgres:ab@db.example:/tmp/x", "scp postgres:***@db.example:/tmp/x"),
        ("db_pass=ab&user=u", "db_pass=***&user=u"),
    ]:
        assert redactor.redact(text) == expected
    # Not in ordinary words: two letters are everywhere.
    prose = "about a table: abandoned rows (ab) in tab_ab"
    assert redactor.redact(prose) == prose


# -- spellings --------------------------------------------------------------------------------

NON_ASCII = "pässwörd-é-€-0815"


@pytest.mark.parametrize(
    "printed",
    [
        json.dumps({"password": NON_ASCII}),  # \u00e4 ... (ensure_ascii)
        repr({"password": NON_ASCII.encode("utf-8")}),  # \xc3\xa4 ... (bytes, as logged)
        ascii(NON_ASCII),  # \xe4 ...
        NON_ASCII.encode("unicode_escape").decode("ascii"),
        quote(NON_ASCII, safe="").lower(),  # %c3%a4 ...
        json.dumps({"password": NON_ASCII}, ensure_ascii=False),
    ],
)
def test_escaped_spellings_of_a_non_ascii_secret_are_masked(printed: str) -> None:
    out = Redactor([NON_ASCII]).redact(f"sent {printed}")
    assert "***" in out
    assert "wörd" not in out and "w\\u00f6rd" not in out and "w\\xf6rd" not in out, out
    assert "\\xc3\\xb6rd" not in out and "%c3%b6rd" not in out, out


def test_spellings_include_the_escaped_forms() -> None:
    forms = spellings("é")
    assert {"é", "\\u00e9", "\\xe9", "\\xc3\\xa9", "%C3%A9", "%c3%a9"} <= forms


# -- logging ------------------------------------------------------------------------------------


def test_the_log_filter_redacts_message_arguments_and_exceptions() -> None:
    stream = StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(Redactor(settings().secrets())))
    logger = logging.getLogger("test_redact.filter")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("connecting to %s", URL)
        try:
            raise ConnectionError(f"refused: {URL}")
        except ConnectionError:
            logger.exception("export failed")
        logger.warning("no secret in %s", "this one")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert no_prefix(text), text
    assert "connecting to ***" in text and "ConnectionError: refused: ***" in text
    assert "no secret in this one" in text
