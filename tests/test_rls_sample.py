"""RLS visibility at bounded cost: keys sampled from the dump, looked up on both sides.

A real export of a source with row-level security (a keyed table of 5,000 rows, one keyed
only by a plain index, one with neither, one whose keys need escaping) records a bounded,
stratified key sample per table and which sampled keys each identity sees; ``dst`` is
pg_restore of that set. The lookups must read only the sampled rows, give the same answer
on the restored copy, and name (by table and counts, never by value) a policy that now hides
rows or shows more. A set written before samples (every table counted) still verifies.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pytest_supabase_restore.errors import BackupError
from pytest_supabase_restore.export import ExportOptions, export
from pytest_supabase_restore.manifest import read_manifest, validate_manifest
from pytest_supabase_restore.model import Manifest, RlsProof
from pytest_supabase_restore.pg.binaries import find_client_tools
from pytest_supabase_restore.pg.cluster import Cluster, start_cluster
from pytest_supabase_restore.proof.copyhash import Part
from pytest_supabase_restore.proof.postgrest import ANON, AUTHENTICATED
from pytest_supabase_restore.proof.rls import compare_rls_visibility, rls_visibility
from pytest_supabase_restore.proof.rlskeys import PER_USER, SPREAD, WHOLE, KeyPicker
from pytest_supabase_restore.proof.scope import TableRef, list_tables, schemas_in_scope
from tests.test_fingerprint import ROLES_SQL  # anon, authenticated and a BYPASSRLS reader

USERS = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(1, 7)]
LABELS = ["tab\there", "back\\slash", "new\nline", "Ünïcode", "plain"]

SCHEMA_SQL = f"""
CREATE SCHEMA extensions;
CREATE SCHEMA auth;
GRANT USAGE ON SCHEMA auth TO anon, authenticated;
CREATE TABLE auth.users (id uuid PRIMARY KEY, email text);
INSERT INTO auth.users SELECT u::uuid, 'u' || n || '@example.test'
FROM unnest(ARRAY{USERS!r}) WITH ORDINALITY AS x(u, n);
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
  SELECT (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')::uuid
$$;

CREATE TABLE public.notes (id bigint PRIMARY KEY, owner uuid, shared boolean NOT NULL,
    body text);
INSERT INTO public.notes
SELECT g, (ARRAY{USERS!r}::uuid[])[g % 7 + 1], g % 10 = 0, 'note ' || g
FROM generate_series(1, 5000) AS g;
ALTER TABLE public.notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY "own notes" ON public.notes FOR SELECT TO authenticated
    USING (owner = auth.uid());
CREATE POLICY "shared notes" ON public.notes FOR SELECT TO anon, authenticated USING (shared);

-- No primary key: looked up by its plain index, a key that repeats.
CREATE TABLE public.events (at timestamptz NOT NULL, who uuid, n int);
INSERT INTO public.events
SELECT timestamptz '2024-03-31 01:00+00' + (g / 3) * interval '17 min 0.25 s',
    (ARRAY{USERS!r}::uuid[])[g % 6 + 1], g
FROM generate_series(1, 3000) AS g;
CREATE INDEX events_at_idx ON public.events (at);
ALTER TABLE public.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY "own events" ON public.events FOR SELECT TO authenticated USING (who = auth.uid());

-- Neither a primary key nor an index: counted in full.
CREATE TABLE public.scratch (who uuid, n int);
INSERT INTO public.scratch SELECT (ARRAY{USERS!r}::uuid[])[g % 6 + 1], g
FROM generate_series(1, 60) AS g;
ALTER TABLE public.scratch ENABLE ROW LEVEL SECURITY;
CREATE POLICY "own scratch" ON public.scratch FOR SELECT TO authenticated
    USING (who = auth.uid());

-- Keys COPY escapes, small enough to be sampled whole.
CREATE TABLE public.labels (label text PRIMARY KEY, owner uuid);
ALTER TABLE public.labels ENABLE ROW LEVEL SECURITY;
CREATE POLICY "own labels" ON public.labels FOR SELECT TO authenticated
    USING (owner = auth.uid());

-- No uuid column: its lines are not searched for the users' ids.
CREATE TABLE public.codes (code int PRIMARY KEY, label text);
INSERT INTO public.codes SELECT g, 'code ' || g FROM generate_series(1, 1000) AS g;
ALTER TABLE public.codes ENABLE ROW LEVEL SECURITY;
CREATE POLICY "even codes" ON public.codes FOR SELECT TO anon, authenticated
    USING (code % 2 = 0);

GRANT SELECT ON public.notes, public.events, public.scratch, public.labels, public.codes
    TO anon, authenticated;
"""
LABELS_SQL = """
INSERT INTO public.labels SELECT l || n, (%s::uuid[])[n]
FROM unnest(%s::text[]) AS l, generate_series(1, 6) AS n
"""

_STATS = """
SELECT relname::text, seq_tup_read, coalesce(idx_tup_fetch, 0)
FROM pg_catalog.pg_stat_user_tables WHERE schemaname = 'public'
"""


@dataclass
class Env:
    cluster: Cluster
    manifest: Manifest
    tables: list[TableRef]
    reads: dict[str, tuple[int, int]]  # table -> (seq rows, index fetches) during the export

    def connect(self, db: str, **kw: Any) -> psycopg.Connection[Any]:
        return psycopg.connect(self.cluster.dsn(db), **kw)


def _stats(dsn: str) -> dict[str, tuple[int, int]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_force_next_flush()")
        return {name: (int(s), int(i)) for name, s, i in conn.execute(_STATS)}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tools = find_client_tools(15)
    with start_cluster(name="rlssample") as cluster:
        with cluster.connect(autocommit=True) as conn:
            conn.execute(ROLES_SQL)
            conn.execute("CREATE DATABASE src")
            conn.execute("CREATE DATABASE dst")
        with psycopg.connect(cluster.dsn("src"), autocommit=True) as conn:
            conn.execute(SCHEMA_SQL)
            conn.execute(LABELS_SQL, (USERS, LABELS))
            conn.execute("ANALYZE")
            conn.execute("ALTER DATABASE src SET TimeZone = 'Asia/Kolkata'")
        with psycopg.connect(cluster.dsn("dst"), autocommit=True) as conn:
            conn.execute("CREATE SCHEMA extensions")
        before = _stats(cluster.dsn("src"))
        out = export(
            cluster.dsn("src"),
            tmp_path_factory.mktemp("sets"),
            s3=None,
            options=ExportOptions(jobs=2),
        )
        time.sleep(1.2)  # other backends flush their statistics within a second
        after = _stats(cluster.dsn("src"))
        reads = {
            n: (s - before.get(n, (0, 0))[0], i - before.get(n, (0, 0))[1])
            for n, (s, i) in after.items()
        }
        proc = subprocess.run(
            [tools.path("pg_restore"), "--dbname", cluster.dsn("dst"), str(out / "db")],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert "ERROR" not in proc.stderr.replace("already exists", ""), proc.stderr[-2000:]
        with psycopg.connect(cluster.dsn("dst")) as conn:
            tables = list_tables(conn, schemas_in_scope(conn))
        yield Env(cluster, read_manifest(out), tables, reads)


def _visible(conn: psycopg.Connection[Any], table: str, col: str, uid: str | None) -> set[Any]:
    """What a policy of the fixture shows ``uid`` (None: anon), read directly as superuser."""
    if table == "codes":
        return {
            v for (v,) in conn.execute("SELECT code::text FROM public.codes WHERE code % 2 = 0")
        }
    owner = {"notes": "owner", "events": "who", "labels": "owner"}[table]
    shared = " OR shared" if table == "notes" else ""
    anon_sees = "shared" if table == "notes" else "false"
    cond = anon_sees if uid is None else f"({owner} = %(uid)s::uuid{shared})"
    rows = conn.execute(f"SELECT {col}::text FROM public.{table} WHERE {cond}", {"uid": uid})
    return {v for (v,) in rows}


def test_each_table_gets_a_bounded_stratified_sample_or_a_stated_full_count(env: Env) -> None:
    rls = env.manifest.rls
    assert rls.users == tuple(USERS[:5])
    assert rls.counted == {
        "public.scratch": "no primary key and no plain B-tree index to look keys up by"
    }
    assert set(rls.samples) == {"public.notes", "public.events", "public.labels", "public.codes"}
    codes = rls.samples["public.codes"]  # no uuid column: the spread alone
    assert codes.spread == len(codes.keys) == SPREAD and not codes.whole and codes.hits == {}
    notes = rls.samples["public.notes"]
    assert notes.by == "primary key" and notes.columns == ("id",) and not notes.whole
    assert notes.spread == SPREAD and len(notes.keys) <= SPREAD + PER_USER * len(rls.users)
    ids = [int(k) for (k,) in notes.keys]
    assert len(set(ids)) == len(ids) and max(ids[:SPREAD]) - min(ids[:SPREAD]) > 4000
    with env.connect("src") as conn:
        owner = dict(conn.execute("SELECT id, owner::text FROM public.notes").fetchall())
    for user in rls.users:  # each sampled user's own rows are in the sample, as its hits
        hits = notes.hits[user]
        assert len(hits) == PER_USER and all(owner[ids[i]] == user for i in hits)
        assert notes.probed(user) == sorted({*range(SPREAD), *hits})
    assert notes.probed(None) == list(range(SPREAD))  # anon: the spread
    events = rls.samples["public.events"]
    assert events.by == 'index "events_at_idx"' and events.columns == ("at",)
    assert all(k[0].endswith("+05:30") for k in events.keys)  # as pg_dump wrote them
    labels = rls.samples["public.labels"]  # at most WHOLE rows: every key
    assert labels.whole and labels.spread == len(labels.keys) == len(LABELS) * 6 <= WHOLE
    assert {k for (k,) in labels.keys} == {f"{x}{n}" for x in LABELS for n in range(1, 7)}


def test_each_identity_sees_exactly_the_sampled_keys_its_policies_allow(env: Env) -> None:
    rls = env.manifest.rls
    with env.connect("src") as conn:
        for uid in [None, *rls.users]:
            seen = rls.visibility[ANON if uid is None else uid]
            for name, col in (
                ("notes", "id"),
                ("events", "at"),
                ("labels", "label"),
                ("codes", "code"),
            ):
                sample = rls.samples[f"public.{name}"]
                allowed = _visible(conn, name, col, uid)  # in src's TimeZone, as pg_dump
                asked = sample.probed(uid)  # the spread, and the user's own hits
                want = [i for i in asked if sample.keys[i][0] in allowed]
                assert seen[f"public.{name}"] == {"visible": want}, (name, rls.label(uid or ANON))
            scratch = 0 if uid is None else sum(1 for g in range(1, 61) if USERS[g % 6] == uid)
            assert seen["public.scratch"] == scratch
    assert any(rls.visibility[u]["public.notes"]["visible"] for u in rls.users)  # type: ignore[index]


def test_the_lookups_read_only_the_sampled_rows(env: Env) -> None:
    """pg_dump reads each table once; the RLS evaluation adds index probes of the sampled
    keys (6 identities) and a full count of the table without any key, nothing more."""
    rls = env.manifest.rls
    identities = len(rls.users) + 1
    for name, rows in (("notes", 5000), ("events", 3000)):
        seq, fetched = env.reads[name]
        assert seq == rows, name  # pg_dump's COPY and nothing else
        sample = rls.samples[f"public.{name}"]
        asked = sum(len(sample.probed(u)) for u in [None, *rls.users])
        assert identities == 6 and 0 < fetched <= asked * (3 if name == "events" else 1), name
    assert env.reads["scratch"][0] == 60 * (1 + len(rls.users))  # pg_dump + a count per user


def test_the_restored_copy_sees_the_same_and_a_changed_policy_is_named(env: Env) -> None:
    rls = env.manifest.rls
    with env.connect("dst") as conn:
        seen = rls_visibility(conn, env.tables, list(rls.users), rls.session, rls.samples)
        assert seen == rls.visibility
        user = rls.users[0]
        own = rls.visibility[user]["public.notes"]["visible"]  # type: ignore[index]
        with conn.transaction(force_rollback=True):
            conn.execute('ALTER POLICY "own notes" ON public.notes USING (false)')
            conn.execute('CREATE POLICY "all events" ON public.events FOR SELECT USING (true)')
            fewer = rls_visibility(conn, env.tables, [user], rls.session, rls.samples)
            result = compare_rls_visibility(
                conn,
                env.tables,
                rls.visibility[user],
                fewer[user],
                AUTHENTICATED,
                rls.session,
                rls.samples,
                user,
            )
    lost = len(own) - sum(1 for i in own if int(rls.samples["public.notes"].keys[i][0]) % 10 == 0)
    events = rls.samples["public.events"]
    mine = len(rls.visibility[user]["public.events"]["visible"])  # type: ignore[index]
    asked, asked_notes = len(events.probed(user)), len(rls.samples["public.notes"].probed(user))
    assert result.problems == [
        f"public.events: {mine} of {asked} sampled rows visible expected, "
        f"{asked} found (0 no longer visible, {asked - mine} newly "
        'visible) (SELECT policies for authenticated: "all events", "own events")',
        f"public.notes: {len(own)} of {asked_notes} sampled rows "
        f"visible expected, {len(own) - lost} found ({lost} no longer visible, 0 newly "
        'visible) (SELECT policies for authenticated: "own notes", "shared notes")',
    ]
    assert lost > 0
    text = "\n".join(result.problems)
    assert user not in text
    assert not any(k[0] in text for k in events.keys)


def test_a_set_written_with_full_counts_still_verifies(env: Env) -> None:
    """Before samples, every table was counted: such a set has no ``samples`` and compares
    by counting again."""
    with env.connect("src") as conn:
        counts = rls_visibility(conn, env.tables, list(USERS[:2]))
    old = {"users": USERS[:2], "visibility": counts}  # the old manifest's rls section
    proof = RlsProof.from_json(old)
    assert proof.samples == {} and proof.counted == {}
    assert counts[USERS[0]]["public.notes"] == 5000 // 7 + 500 - 5000 // 70
    with env.connect("dst") as conn:
        staging = rls_visibility(conn, env.tables, list(proof.users), proof.session, {})
        result = compare_rls_visibility(
            conn, env.tables, counts[USERS[0]], staging[USERS[0]], AUTHENTICATED, proof.session
        )
    assert staging == counts and result.ok


def _with_rls(rls: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": "pytest-supabase-restore/backup-set",
        "version": 1,
        "snapshot_time": "2026-01-01T00:00:00+00:00",
        "source": {"server_major": 15},
        "tables": {},
        "schema": {},
        "files": {"db/toc.dat": {"size": 1, "sha256": "0" * 64}},
        "storage": {},
        "rls": rls,
    }


SAMPLE = {"by": "primary key", "columns": ["id"], "keys": [["1"], ["2"]], "spread": 2}


@pytest.mark.parametrize(
    ("rls", "where"),
    [
        ({"samples": {"public.a": {**SAMPLE, "keys": [["1", "2"]]}}}, "rls.samples.public.a"),
        ({"samples": {"public.a": {**SAMPLE, "keys": [["1"], ["1"]]}}}, "rls.samples.public.a"),
        ({"samples": {"public.a": {**SAMPLE, "spread": 3}}}, "rls.samples.public.a"),
        ({"samples": {"public.a": {**SAMPLE, "hits": {"u": [2]}}}}, "rls.samples.public.a"),
        ({"counted": {"public.b": 1}}, "rls.counted"),
        (  # an index past the sample
            {
                "samples": {"public.a": SAMPLE},
                "visibility": {"anon": {"public.a": {"visible": [2]}}},
            },
            "rls.visibility",
        ),
        (  # a count where a sample was recorded
            {"samples": {"public.a": SAMPLE}, "visibility": {"anon": {"public.a": 2}}},
            "rls.visibility",
        ),
        ({"visibility": {"anon": {"public.a": {"visible": [0]}}}}, "rls.visibility"),  # no sample
    ],
)
def test_malformed_samples_are_refused(rls: dict[str, Any], where: str) -> None:
    with pytest.raises(BackupError, match=f"malformed manifest: {where}: "):
        validate_manifest(_with_rls(rls), Path("manifest.json"))


def test_picker_bounds_the_spread_skips_null_keys_and_is_deterministic() -> None:
    part = Part("public", "t", ("id", "owner", "body"))
    lines = [
        f"{i}\t{USERS[i % 3] if i % 5 else chr(92) + 'N'}\tbody {i}".encode()
        for i in range(1, 100_001)
    ]

    def pick() -> Any:
        picker = KeyPicker(("owner",), USERS[:2], "utf-8")
        for start in range(0, len(lines), 7_919):
            picker.feed(part, lines[start : start + 7_919])
        return picker.sample("primary key")

    sample = pick()
    assert sample == pick()
    assert len(sample.keys) == len({*sample.keys}) <= SPREAD + 2 * PER_USER
    assert all(k[0] in USERS[:3] for k in sample.keys)  # never the NULL of ``\\N``
    by_id = KeyPicker(("id",), USERS[:1], "utf-8")
    by_id.feed(part, lines)
    spread = [int(k) for (k,) in by_id.sample("primary key").keys[:SPREAD]]
    assert len(spread) == SPREAD and spread == sorted(spread) and spread[-1] > 90_000
