"""Deterministic, fast data for the demo project.

Rows are generated server-side (``generate_series`` and md5-derived pseudo-random values),
so scale 1 (a few thousand rows) takes well under a second and scale 1000 (millions of
rows, about 1.5 GB) takes minutes, not hours. The same ``scale`` and ``seed`` give the same
rows in auth and public, byte for byte. Storage objects are uploaded through the S3
protocol and described in ``storage.objects`` the way Supabase's Storage API describes
them; their ``lastModified`` comes from the S3 server, so it is the one part that differs
between runs.
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

DEMO_PASSWORD = "demo-password"  # noqa: S105 - the published password of every demo user
"""Every non-anonymous demo user signs in with this password (it is a demo, not a secret)."""

SCHEMAS: tuple[str, ...] = (
    "auth",
    "storage",
    "public",
    "supabase_functions",
    "supabase_migrations",
)
"""The schemas the demo project fills, and that :func:`table_counts` counts."""

CACHE_CONTROL = "max-age=3600"
MIB = 1024 * 1024

# The instance id GoTrue writes into every row of a single-tenant project.
_INSTANCE_ID = "00000000-0000-0000-0000-000000000000"
# Rows are dated from here on, so that the data does not depend on the day it was made.
_EPOCH = "2024-10-01 00:00:00+00"

# Unicode on purpose: names, bios and file names are where encodings break.
_FIRST_NAMES = [
    "Ada", "Zoë", "Łukasz", "Søren", "José", "Chloé", "Dmitrii", "Aiko",
    "Nguyễn", "Ελένη", "Ахмед", "李", "Ngozi", "Björn", "Mei", "Ōta",
]  # fmt: skip
_LAST_NAMES = [
    "Lovelace", "Müller", "Kowalski", "Ødegaard", "García", "Dubois", "Иванов", "山田",
    "Trần", "Παπαδοπούλου", "O'Brien", "Smith", "Nakamura", "Núñez", "Haddad", "Kim",
]  # fmt: skip
_BIOS = [
    "Building things 🚀",
    "Café lover ☕ — based in Zürich",
    "Ich mag Datenbanken.",
    "データベースが好きです",
    "Open source, open mind.",
    "Ex-physicist; now shipping web apps 🧪",
    "«Less is more»",
    "Σχεδιάζω διεπαφές.",
]
_PROJECT_NAMES = [
    "Website redesign", "Mobile app", "Q3 roadmap", "Data pipeline", "Onboarding",
    "Café menu", "Ünïcödé migration", "東京 launch", "Customer portal", "Billing v2",
    "Docs site", "Hiring plan",
]  # fmt: skip
_VERBS = ["Fix", "Write", "Review", "Ship", "Refactor", "Design", "Test", "Document", "Migrate"]
_NOUNS = [
    "login flow", "invoice PDF", "search index", "avatar upload", "RLS policy", "API client",
    "onboarding email", "dark mode", "CSV import", "résumé parser", "push notifications",
]  # fmt: skip
_SENTENCES = [
    "Steps to reproduce are in the linked thread.",
    "Needs a decision from design before we start.",
    "Blocked on the upstream release — see changelog.",
    "Customer reported this twice this week 😬",
    "Acceptance: works offline, degrades gracefully.",
    "Der Export schlägt bei Umlauten fehl: ä, ö, ü, ß.",
    "日本語のファイル名でアップロードに失敗する。",
    "Edge case: empty string vs NULL in the API payload.",
]
_LABELS = ["frontend", "backend", "urgent", "bug", "feature", "ux", "i18n", "tech-debt"]
_TAGS = [
    "bug", "feature", "ux", "backend", "frontend", "docs", "urgent", "tech-debt", "design",
    "infra", "security", "performance", "i18n", "mobile", "api", "data", "ops", "research",
    "qa", "légal", "café", "数据", "🚀 launch", "needs review",
]  # fmt: skip
_COMMENTS = [
    "Looks good to me 👍",
    "Can we split this into two PRs?",
    "I pushed a fix, please re-test.",
    "Ça marche chez moi.",
    "Waiting for the customer to confirm.",
    "確認しました。",
    "Duplicate of an older task, closing soon.",
    "Added screenshots in the attachment.",
]
_USER_AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0 Safari/537.36",
    "supabase-js/2.43.1",
    "Dart/3.3 (dart:io)",
]


def _text_array(values: Sequence[str]) -> str:
    """A SQL text[] literal built from trusted constants in this module."""
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def _temp_functions(seed: int) -> str:
    """Pseudo-random helpers in ``pg_temp``: inlined by the planner, gone with the session."""
    prefix = f"{int(seed)}:"
    return f"""
CREATE OR REPLACE FUNCTION pg_temp.r(key text) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ('x' || substr(md5('{prefix}' || key), 1, 13))::bit(52)::bigint::double precision
             / 4503599627370496 $$;
CREATE OR REPLACE FUNCTION pg_temp.ri(key text, lo bigint, hi bigint) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT lo + floor(pg_temp.r(key) * (hi - lo + 1))::bigint $$;
CREATE OR REPLACE FUNCTION pg_temp.pick(key text, options text[]) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT options[1 + floor(pg_temp.r(key) * array_length(options, 1))::int] $$;
CREATE OR REPLACE FUNCTION pg_temp.u(key text) RETURNS uuid
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT overlay(overlay(md5('{prefix}uuid:' || key) placing '4' from 13)
                     placing '8' from 17)::uuid $$;
"""


def _users_sql() -> list[str]:
    """The users (a temp table of per-user facts the later statements share) and auth.users."""
    return [
        f"""
CREATE TEMP TABLE demo_users ON COMMIT DROP AS
SELECT i,
       pg_temp.u('user:' || i) AS id,
       mod(i, 17) = 0 AS anon,
       mod(i, 17) <> 0 AND mod(i, 4) = 1 AS github,
       mod(i, 53) = 0 AS deleted,
       timestamptz '{_EPOCH}' + (i - 1) * (interval '180 days' / %(n_users)s)
           + pg_temp.r('uc:' || i) * interval '1 hour' AS created,
       CASE WHEN mod(i, 17) = 0 THEN NULL
            ELSE 'user' || i || '@'
                 || pg_temp.pick('dom:' || i, ARRAY['example.com', 'example.org', 'mail.example.net'])
       END AS email,
       pg_temp.pick('fn:' || i, {_text_array(_FIRST_NAMES)}) || ' '
           || pg_temp.pick('ln:' || i, {_text_array(_LAST_NAMES)}) AS full_name
FROM generate_series(1, %(n_users)s) AS i
""",
        f"""
INSERT INTO auth.users (
    instance_id, id, aud, role, email, encrypted_password, email_confirmed_at, invited_at,
    confirmation_token, confirmation_sent_at, recovery_token, email_change_token_new,
    email_change, last_sign_in_at, raw_app_meta_data, raw_user_meta_data, is_super_admin,
    created_at, updated_at, phone, phone_confirmed_at, is_anonymous, deleted_at)
SELECT '{_INSTANCE_ID}'::uuid,
       d.id,
       'authenticated',
       'authenticated',
       d.email,
       -- bcrypt with cost 4 (GoTrue uses 10) and a per-user salt derived from the seed:
       -- a real, checkable hash that is deterministic and cheap enough for 40k users.
       CASE WHEN d.anon THEN ''
            ELSE extensions.crypt(%(password)s,
                                  '$2a$04$' || substr(md5(%(seed_text)s || ':salt:' || d.i), 1, 22))
       END,
       CASE WHEN d.anon OR mod(d.i, 7) = 0 THEN NULL ELSE d.created + interval '3 minutes' END,
       NULL,
       '',
       CASE WHEN d.anon THEN NULL ELSE d.created END,
       '',
       '',
       '',
       CASE WHEN pg_temp.r('si:' || d.i) < 0.15 THEN NULL
            ELSE d.created + pg_temp.r('si2:' || d.i) * interval '90 days'
       END,
       CASE WHEN d.anon THEN jsonb_build_object('provider', 'anonymous', 'providers', '[]'::jsonb)
            WHEN d.github THEN jsonb_build_object('provider', 'email',
                                                  'providers', jsonb_build_array('email', 'github'))
            ELSE jsonb_build_object('provider', 'email', 'providers', jsonb_build_array('email'))
       END,
       CASE WHEN d.anon THEN '{{}}'::jsonb
            ELSE jsonb_build_object(
                'user_name', 'user_' || lpad(d.i::text, 6, '0'),
                'full_name', d.full_name,
                'email_verified', mod(d.i, 7) <> 0,
                'locale', pg_temp.pick('lc:' || d.i, ARRAY['en', 'de', 'fr', 'ja', 'pt-BR', 'uk']),
                'bio', CASE WHEN pg_temp.r('bio:' || d.i) < 0.3 THEN NULL
                            ELSE pg_temp.pick('bio2:' || d.i, {_text_array(_BIOS)}) END,
                'website', CASE WHEN pg_temp.r('web:' || d.i) < 0.5 THEN NULL
                                ELSE 'https://example.com/~user' || d.i END,
                'thumbhash', CASE WHEN pg_temp.r('th:' || d.i) < 0.4 THEN NULL
                                  ELSE encode(substring(sha256(convert_to('th:' || d.i, 'UTF8'))
                                                        FROM 1 FOR 24), 'base64') END,
                'settings', jsonb_build_object(
                    'theme', pg_temp.pick('theme:' || d.i, ARRAY['light', 'dark', 'system']),
                    'notifications', jsonb_build_object(
                        'email', pg_temp.r('ne:' || d.i) < 0.7,
                        'push', pg_temp.r('np:' || d.i) < 0.4),
                    'shortcuts', jsonb_build_array('g p', 'g t', 'c'),
                    'pinned_projects', '[]'::jsonb))
       END,
       NULL,
       d.created,
       d.created + pg_temp.r('uu:' || d.i) * interval '30 days',
       CASE WHEN mod(d.i, 3) = 0 AND NOT d.anon THEN '1555' || lpad(d.i::text, 7, '0') END,
       CASE WHEN mod(d.i, 6) = 0 AND NOT d.anon THEN d.created + interval '10 minutes' END,
       d.anon,
       CASE WHEN d.deleted THEN d.created + interval '120 days' END
FROM demo_users AS d
ORDER BY d.i
""",
    ]


_AUTH_SQL = [
    """
INSERT INTO auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at,
                             created_at, updated_at, id)
SELECT u.id::text, u.id,
       jsonb_build_object('sub', u.id::text, 'email', u.email,
                          'email_verified', u.email_confirmed_at IS NOT NULL,
                          'phone_verified', false),
       'email', u.last_sign_in_at, u.created_at, u.updated_at,
       pg_temp.u('identity:email:' || d.i)
FROM demo_users AS d JOIN auth.users AS u ON u.id = d.id
WHERE d.email IS NOT NULL
UNION ALL
SELECT (100000 + d.i)::text, u.id,
       jsonb_build_object('sub', (100000 + d.i)::text, 'email', u.email,
                          'user_name', 'gh-user-' || d.i, 'full_name', d.full_name,
                          'avatar_url', 'https://avatars.githubusercontent.com/u/' || (100000 + d.i),
                          'iss', 'https://api.github.com', 'provider_id', (100000 + d.i)::text,
                          'email_verified', true, 'phone_verified', false),
       'github', u.last_sign_in_at, u.created_at + interval '1 day', u.updated_at,
       pg_temp.u('identity:github:' || d.i)
FROM demo_users AS d JOIN auth.users AS u ON u.id = d.id
WHERE d.github
""",
    f"""
INSERT INTO auth.sessions (id, user_id, created_at, updated_at, factor_id, aal, not_after,
                           refreshed_at, user_agent, ip, tag)
SELECT pg_temp.u('session:' || d.i || ':' || k), d.id,
       d.created + k * interval '5 days',
       d.created + k * interval '5 days' + pg_temp.r('sr:' || d.i || ':' || k) * interval '2 days',
       NULL,
       CASE WHEN mod(d.i, 5) = 0 AND k = 1 THEN 'aal2' ELSE 'aal1' END::auth.aal_level,
       NULL,
       ((d.created + k * interval '5 days' + interval '1 hour') AT TIME ZONE 'UTC'),
       pg_temp.pick('ua:' || d.i || ':' || k, {_text_array(_USER_AGENTS)}),
       CASE WHEN pg_temp.r('ip6:' || d.i || ':' || k) < 0.2
            THEN ('2001:db8::' || CASE WHEN d.i >= 65536 THEN to_hex(d.i / 65536) || ':' ELSE '' END
                  || to_hex(mod(d.i, 65536)) || ':' || k)::inet
            ELSE ('10.' || mod(d.i / 65536, 256) || '.' || mod(d.i / 256, 256) || '.' || mod(d.i, 256))::inet
       END,
       NULL
FROM demo_users AS d
CROSS JOIN LATERAL generate_series(1, pg_temp.ri('sc:' || d.i, 0, 3)) AS k
WHERE NOT d.deleted
""",
    f"""
INSERT INTO auth.refresh_tokens (instance_id, id, token, user_id, revoked, created_at,
                                 updated_at, parent, session_id)
SELECT '{_INSTANCE_ID}'::uuid,
       row_number() OVER (ORDER BY s.created_at, s.id, k),
       substr(md5('rt:' || s.id || ':' || k), 1, 16),
       s.user_id::text,
       k < m.n,
       s.created_at + (k - 1) * interval '1 hour',
       s.created_at + k * interval '1 hour',
       CASE WHEN k > 1 THEN substr(md5('rt:' || s.id || ':' || (k - 1)), 1, 16) END,
       s.id
FROM auth.sessions AS s
CROSS JOIN LATERAL (SELECT pg_temp.ri('rtn:' || s.id, 1, 3) AS n) AS m
CROSS JOIN LATERAL generate_series(1, m.n) AS k
""",
    """
INSERT INTO auth.mfa_factors (id, user_id, friendly_name, factor_type, status, created_at,
                              updated_at, secret, phone, last_challenged_at)
SELECT pg_temp.u('mfa:' || d.i), d.id,
       CASE WHEN pg_temp.r('mfn:' || d.i) < 0.5 THEN 'My phone 📱' ELSE '' END,
       'totp',
       CASE WHEN pg_temp.r('mfs:' || d.i) < 0.8 THEN 'verified' ELSE 'unverified' END::auth.factor_status,
       d.created + interval '2 days',
       d.created + interval '2 days',
       upper(substr(md5('totp:' || d.i), 1, 32)),
       NULL,
       CASE WHEN pg_temp.r('mfs:' || d.i) < 0.8 THEN d.created + interval '3 days' END
FROM demo_users AS d
WHERE mod(d.i, 5) = 0 AND NOT d.anon
""",
    f"""
INSERT INTO auth.audit_log_entries (instance_id, id, payload, created_at, ip_address)
SELECT '{_INSTANCE_ID}'::uuid,
       pg_temp.u('auditlog:' || d.i || ':' || k),
       json_build_object(
           'action', pg_temp.pick('ala:' || d.i || ':' || k,
                                  ARRAY['login', 'logout', 'token_refreshed', 'user_signedup',
                                        'user_recovery_requested', 'user_updated_password']),
           'actor_id', d.id,
           'actor_username', d.email,
           'actor_via_sso', false,
           'log_type', pg_temp.pick('alt:' || d.i || ':' || k, ARRAY['account', 'token', 'user']),
           'traits', json_build_object('provider', CASE WHEN d.github THEN 'github' ELSE 'email' END)),
       d.created + k * interval '1 day',
       '192.0.2.' || pg_temp.ri('alip:' || d.i || ':' || k, 1, 254)
FROM demo_users AS d
CROSS JOIN generate_series(1, 5) AS k
""",
]


_PUBLIC_SQL = [
    f"""
INSERT INTO public.projects (id, owner_id, name, description, visibility, budget, color,
                             starts_on, archived, metadata, created_at, updated_at)
OVERRIDING SYSTEM VALUE
SELECT row_number() OVER (ORDER BY d.i, k),
       d.id,
       pg_temp.pick('pn:' || d.i || ':' || k, {_text_array(_PROJECT_NAMES)}) || ' ' || k,
       CASE WHEN pg_temp.r('pd:' || d.i || ':' || k) < 0.25 THEN NULL
            ELSE pg_temp.pick('pd2:' || d.i || ':' || k, {_text_array(_SENTENCES)}) END,
       pg_temp.pick('pv:' || d.i || ':' || k,
                    ARRAY['private', 'private', 'private', 'team', 'public'])::public.project_visibility,
       CASE WHEN pg_temp.r('pb:' || d.i || ':' || k) < 0.3 THEN NULL
            ELSE round((pg_temp.r('pb2:' || d.i || ':' || k) * 250000)::numeric, 2) END,
       '#' || substr(md5('color:' || d.i || ':' || k), 1, 6),
       date '2025-01-01' + pg_temp.ri('ps:' || d.i || ':' || k, -60, 120)::int,
       pg_temp.r('pa:' || d.i || ':' || k) < 0.1,
       CASE WHEN pg_temp.r('pm:' || d.i || ':' || k) < 0.4 THEN NULL
            ELSE jsonb_build_object('client', pg_temp.pick('pc:' || d.i || ':' || k,
                                                           ARRAY['ACME', 'Globex', 'Initech', 'Umbrella']),
                                    'billable', pg_temp.r('pbl:' || d.i || ':' || k) < 0.5,
                                    'links', jsonb_build_array('https://example.com/p/' || d.i || '/' || k))
       END,
       d.created + k * interval '2 days',
       d.created + k * interval '2 days' + pg_temp.r('pu:' || d.i || ':' || k) * interval '20 days'
FROM demo_users AS d
CROSS JOIN LATERAL generate_series(1, pg_temp.ri('pcount:' || d.i, 1, 5)) AS k
WHERE NOT d.anon
""",
    f"""
INSERT INTO public.tasks (id, project_id, creator_id, assignee_id, title, body, status,
                          priority, labels, estimate, progress, due_on, completed_at,
                          created_at, updated_at)
SELECT row_number() OVER (ORDER BY x.project_id, x.k),
       x.project_id,
       x.owner_id,
       CASE WHEN x.ra < 0.3 THEN NULL
            WHEN x.ra < 0.6 THEN x.owner_id
            ELSE pg_temp.u('user:' || pg_temp.ri('tau:' || x.key, 1, %(n_users)s))
       END,
       pg_temp.pick('tv:' || x.key, {_text_array(_VERBS)}) || ' '
           || pg_temp.pick('tn:' || x.key, {_text_array(_NOUNS)}) || ' #' || x.k,
       CASE WHEN pg_temp.r('tb:' || x.key) < 0.2 THEN NULL
            ELSE repeat(pg_temp.pick('tb2:' || x.key, {_text_array(_SENTENCES)}) || ' ',
                        pg_temp.ri('tb3:' || x.key, 1, 4)::int) END,
       x.status::public.task_status,
       pg_temp.ri('tp:' || x.key, 1, 5)::smallint,
       ARRAY(SELECT pg_temp.pick('tl:' || x.key || ':' || j, {_text_array(_LABELS)})
             FROM generate_series(1, pg_temp.ri('tln:' || x.key, 0, 3)) AS j),
       CASE WHEN pg_temp.r('te:' || x.key) < 0.3 THEN NULL
            ELSE make_interval(hours => pg_temp.ri('te2:' || x.key, 1, 40)::int,
                               mins => 15 * pg_temp.ri('te3:' || x.key, 0, 3)::int) END,
       CASE x.status WHEN 'done' THEN 1.0 WHEN 'todo' THEN 0.0
            ELSE pg_temp.r('tpr:' || x.key) END,
       CASE WHEN pg_temp.r('td:' || x.key) < 0.4 THEN NULL
            ELSE date '2025-01-15' + pg_temp.ri('td2:' || x.key, 0, 180)::int END,
       CASE WHEN x.status = 'done'
            THEN x.created + pg_temp.r('tc:' || x.key) * interval '30 days' END,
       x.created,
       x.created + pg_temp.r('tu:' || x.key) * interval '40 days'
FROM (
    SELECT p.id AS project_id, p.owner_id, k, p.id || ':' || k AS key,
           p.created_at + k * interval '3 hours' AS created,
           pg_temp.r('ta:' || p.id || ':' || k) AS ra,
           CASE WHEN pg_temp.r('ts:' || p.id || ':' || k) < 0.35 THEN 'todo'
                WHEN pg_temp.r('ts:' || p.id || ':' || k) < 0.55 THEN 'in_progress'
                WHEN pg_temp.r('ts:' || p.id || ':' || k) < 0.65 THEN 'blocked'
                ELSE 'done' END AS status
    FROM public.projects AS p
    CROSS JOIN LATERAL generate_series(1, pg_temp.ri('tcount:' || p.id, 2, 14)) AS k
) AS x
""",
    f"""
INSERT INTO public.comments (id, task_id, author_id, body, edited, reactions, created_at)
SELECT row_number() OVER (ORDER BY t.id, k),
       t.id,
       CASE WHEN t.assignee_id IS NOT NULL AND pg_temp.r('ca:' || t.id || ':' || k) < 0.5
            THEN t.assignee_id ELSE t.creator_id END,
       pg_temp.pick('cb:' || t.id || ':' || k, {_text_array(_COMMENTS)}) || ' (' || k || ')',
       pg_temp.r('ce:' || t.id || ':' || k) < 0.1,
       CASE WHEN pg_temp.r('cr:' || t.id || ':' || k) < 0.8 THEN NULL
            ELSE jsonb_build_object('👍', pg_temp.ri('cr1:' || t.id || ':' || k, 1, 9),
                                    '🎉', pg_temp.ri('cr2:' || t.id || ':' || k, 0, 3)) END,
       t.created_at + k * interval '7 hours'
FROM public.tasks AS t
CROSS JOIN LATERAL generate_series(1, pg_temp.ri('cc:' || t.id, 0, 3)) AS k
""",
    f"""
INSERT INTO public.tags (id, name, color, created_by, created_at)
SELECT n.i,
       n.name,
       CASE WHEN mod(n.i, 4) = 0 THEN NULL ELSE '#' || substr(md5('tag:' || n.name), 1, 6) END,
       CASE WHEN mod(n.i, 3) = 0 THEN NULL
            ELSE pg_temp.u('user:' || pg_temp.ri('tgu:' || n.i, 1, %(n_users)s)) END,
       timestamptz '{_EPOCH}' + n.i * interval '1 hour'
FROM (
    SELECT i, name FROM unnest({_text_array(_TAGS)}) WITH ORDINALITY AS t(name, i)
    UNION ALL
    SELECT {len(_TAGS)} + j, 'topic-' || lpad(j::text, 5, '0')
    FROM generate_series(1, %(extra_tags)s) AS j
) AS n
""",
    """
INSERT INTO public.task_tags (task_id, tag_id, added_at)
SELECT t.id,
       pg_temp.ri('tt:' || t.id || ':' || j, 1, %(n_tags)s)::int,
       t.created_at + j * interval '1 hour'
FROM public.tasks AS t
CROSS JOIN LATERAL generate_series(1, pg_temp.ri('ttn:' || t.id, 0, 3)) AS j
ON CONFLICT DO NOTHING
""",
    f"""
INSERT INTO public.audit_events (id, occurred_at, actor_id, action, entity, entity_id, details)
SELECT e,
       -- Mid-December to mid-April: the monthly partitions and the default one all get rows.
       timestamptz '2024-12-15 00:00:00+00' + pg_temp.r('aeo:' || e) * interval '120 days',
       CASE WHEN pg_temp.r('aea:' || e) < 0.1 THEN NULL
            ELSE pg_temp.u('user:' || pg_temp.ri('aeu:' || e, 1, %(n_users)s)) END,
       pg_temp.pick('aac:' || e, ARRAY['insert', 'update', 'update', 'delete', 'login', 'export'])
           ::public.event_action,
       pg_temp.pick('aen:' || e, ARRAY['project', 'task', 'comment', 'profile', 'attachment']),
       CASE WHEN pg_temp.r('aei:' || e) < 0.05 THEN NULL
            ELSE pg_temp.ri('aei2:' || e, 1, 1000000)::text END,
       CASE WHEN mod(e, 40) = 0 THEN
                jsonb_build_object(
                    'changes', (SELECT jsonb_agg(jsonb_build_object(
                                           'field', 'field_' || j,
                                           'old', md5('o:' || e || ':' || j),
                                           'new', md5('n:' || e || ':' || j),
                                           'position', j))
                                FROM generate_series(1, 60) AS j),
                    'request', jsonb_build_object('id', pg_temp.u('req:' || e),
                                                  'path', '/rest/v1/tasks',
                                                  'method', 'PATCH'))
            WHEN pg_temp.r('aed:' || e) < 0.1 THEN NULL
            ELSE jsonb_build_object(
                     'ip', '198.51.100.' || pg_temp.ri('aeip:' || e, 1, 254),
                     'user_agent', pg_temp.pick('aeua:' || e, {_text_array(_USER_AGENTS)}),
                     'changes', jsonb_build_object('status', jsonb_build_array('todo', 'done')),
                     'note', CASE WHEN pg_temp.r('aen2:' || e) < 0.5 THEN NULL
                                  ELSE 'Ünïcödé ✓ ' || e END)
       END
FROM generate_series(1, 25 * %(n_users)s) AS e
""",
    """
INSERT INTO public.import_log (imported_at, imported_by, source, line_no, raw_line,
                               payload_digest, ok, error, duration)
SELECT x.imported_at, x.imported_by, x.source, x.line_no, x.raw_line,
       CASE WHEN x.raw_line IS NULL THEN NULL ELSE sha256(convert_to(x.raw_line, 'UTF8')) END,
       NOT x.failed,
       CASE WHEN x.failed THEN 'invalid date in column 3' END,
       make_interval(secs => pg_temp.r('ild:' || x.l) * 0.5)
FROM (
    SELECT l,
           timestamptz '2025-01-03 00:00:00+00' + l * interval '17 minutes' AS imported_at,
           CASE WHEN pg_temp.r('ilu:' || l) < 0.2 THEN NULL
                ELSE pg_temp.u('user:' || pg_temp.ri('ilu2:' || l, 1, %(n_users)s)) END AS imported_by,
           pg_temp.pick('ils:' || l, ARRAY['contacts.csv', 'tasks-2025-01.csv', 'legacy_export.tsv',
                                            'Übersicht.csv']) AS source,
           mod(l - 1, 50) + 1 AS line_no,
           CASE WHEN pg_temp.r('ilr:' || l) < 0.05 THEN NULL
                ELSE l || ',' || pg_temp.pick('iln:' || l, ARRAY['Zoë', 'Łukasz', 'José', 'Ada'])
                     || ',2025-0' || (1 + mod(l, 9)) || '-1' || mod(l, 10) || ',"' || md5('ilv:' || l) || '"'
           END AS raw_line,
           pg_temp.r('ilf:' || l) < 0.08 AS failed
    FROM generate_series(1, 5 * %(n_users)s) AS l
) AS x
-- A table without a key can hold identical rows, and a restore must keep every copy.
CROSS JOIN LATERAL generate_series(1, CASE WHEN mod(x.l, 97) = 0 THEN 2 ELSE 1 END) AS dup
""",
    """
INSERT INTO supabase_functions.hooks (id, hook_table_id, hook_name, created_at, request_id)
SELECT h,
       'public.tasks'::regclass::oid::integer,
       pg_temp.pick('hn:' || h, ARRAY['notify_slack', 'sync_search', 'send_email']),
       timestamptz '2025-01-05 00:00:00+00' + h * interval '1 hour',
       CASE WHEN pg_temp.r('hr:' || h) < 0.1 THEN NULL ELSE 1000 + h END
FROM generate_series(1, %(n_hooks)s) AS h
""",
]


def seed(conn: psycopg.Connection[Any], scale: int = 1, seed: int = 42) -> dict[str, int]:
    """Fill auth and public with deterministic rows; return the row count per table.

    ``conn`` should be a superuser connection (``supabase_admin``) so that the final
    ANALYZE covers the platform schemas too. Users go into ``auth.users`` and the app's
    ``on_auth_user_created`` trigger creates their profiles. Scale 1 is about 6,000 rows;
    rows grow linearly with ``scale``.
    """
    if scale < 1:
        raise ValueError(f"scale must be >= 1, not {scale}")
    n_users = 40 * scale
    params: dict[str, Any] = {
        "n_users": n_users,
        "password": DEMO_PASSWORD,
        "seed_text": str(int(seed)),
        "extra_tags": 2 * (scale - 1),
        "n_tags": len(_TAGS) + 2 * (scale - 1),
        "n_hooks": 10 * scale,
    }
    with conn.transaction():
        # generate_series estimates make these plans look expensive enough for JIT, whose
        # compile time (about a second) would dominate a small seed.
        conn.execute("SET LOCAL jit = off")
        conn.execute(_temp_functions(seed))
        for statement in (*_users_sql(), *_AUTH_SQL, *_PUBLIC_SQL):
            used = {k: v for k, v in params.items() if f"%({k})s" in statement}
            conn.execute(statement, used or None)
        conn.execute("REFRESH MATERIALIZED VIEW public.daily_task_stats")
        sync_sequences(conn)
        conn.execute("ANALYZE")
    counts = table_counts(conn)
    log.info("seeded the demo project at scale %s: %s rows", scale, sum(counts.values()))
    return counts


def sync_sequences(conn: psycopg.Connection[Any], schemas: Iterable[str] = SCHEMAS) -> None:
    """Move every identity/serial sequence to the max of its column, as in a real database.

    Rows seeded with explicit keys leave their sequences at 1; a restored database whose
    next insert collides with an existing key would pass a row-count check and still be
    broken, so the demo must look like a database that has been used.
    """
    rows = conn.execute(
        """
        SELECT n.nspname, c.relname, a.attname, s.seq
        FROM pg_catalog.pg_attribute AS a
        JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid
        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        CROSS JOIN LATERAL (
            SELECT pg_catalog.pg_get_serial_sequence(
                       quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname) AS seq
        ) AS s
        WHERE c.relkind IN ('r', 'p')
          AND NOT c.relispartition
          AND a.attnum > 0
          AND NOT a.attisdropped
          AND n.nspname = ANY(%s)
          AND s.seq IS NOT NULL
        ORDER BY 1, 2, 3
        """,
        (list(schemas),),
    ).fetchall()
    for schema, table, column, seq in rows:
        conn.execute(
            sql.SQL(
                "SELECT setval({seq}, coalesce(max({col}), 1), max({col}) IS NOT NULL) "
                "FROM {schema}.{table}"
            ).format(
                seq=sql.Literal(seq),
                col=sql.Identifier(column),
                schema=sql.Identifier(schema),
                table=sql.Identifier(table),
            )
        )


def table_counts(conn: psycopg.Connection[Any], schemas: Iterable[str] = SCHEMAS) -> dict[str, int]:
    """Exact row count of every table holding rows (leaf partitions, not their parent).

    Keys are ``schema.table`` as written by ``quote_ident(schema) || '.' || quote_ident(table)``. A partitioned parent is
    left out because its rows are its partitions' rows; counting both would count twice.
    """
    tables = conn.execute(
        """
        SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), n.nspname, c.relname
        FROM pg_catalog.pg_class AS c
        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname = ANY(%s)
        ORDER BY 1
        """,
        (list(schemas),),
    ).fetchall()
    counts: dict[str, int] = {}
    for name, schema, table in tables:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
        ).fetchone()
        counts[name] = int(row[0]) if row else 0
    return counts


# ------------------------------------------------------------------------------------------
# Storage
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketSpec:
    """A Storage bucket as the demo creates it, in storage.buckets and in S3."""

    id: str
    public: bool
    file_size_limit: int | None = None
    allowed_mime_types: tuple[str, ...] | None = None


BUCKETS: tuple[BucketSpec, ...] = (
    BucketSpec("avatars", public=True),
    BucketSpec("documents", public=False),
    BucketSpec(
        "images",
        public=False,
        file_size_limit=2 * MIB,
        allowed_mime_types=("image/png", "image/jpeg", "image/webp"),
    ),
)


@dataclass(frozen=True)
class PlannedObject:
    """One Storage object to upload: where, what type, how big, whose."""

    bucket: str
    name: str
    mimetype: str
    size: int
    owner: str


_MAGIC: dict[str, bytes] = {
    "image/png": b"\x89PNG\r\n\x1a\n",
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "image/webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    "application/pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
}


def default_object_count(scale: int) -> int:
    """About 30 objects at scale 1, growing with the square root of the scale."""
    return max(1, round(30 * math.sqrt(scale)))


def _fraction(seed: int, key: str) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:7], "big") / float(1 << 56)


def _uuid(seed: int, key: str) -> str:
    digest = hashlib.md5(f"{seed}:{key}".encode(), usedforsecurity=False).digest()
    return str(uuid.UUID(bytes=digest, version=4))


def _log_uniform(fraction: float, low: int, high: int) -> int:
    return round(low * math.exp(math.log(high / low) * fraction))


# 30% avatars, 40% documents, 30% images, interleaved so that even three objects cover
# every bucket.
_BUCKET_CYCLE = (
    "avatars", "documents", "images", "documents", "avatars",
    "images", "documents", "avatars", "images", "documents",
)  # fmt: skip


def _document_name(i: int, variant: int) -> tuple[str, str]:
    """(path below the owner's folder, MIME type) of the i-th object when it is a document."""
    kinds = (
        (f"reports/{2024 + i % 2}/Q{1 + i % 4} report {i}.pdf", "application/pdf"),
        (f"notes/Résumé {i}.txt", "text/plain"),
        (f"exports/data-{i}.csv", "text/csv"),
        (f"archive/2025/deep/nested/blob-{i}.bin", "application/octet-stream"),
    )
    return kinds[variant % len(kinds)]


def _image_name(i: int, variant: int) -> tuple[str, str]:
    """(key, MIME type) of the i-th object when it is an image."""
    kinds = (
        (f"gallery/{2024 + i % 2}/{1 + i % 12:02d}/photo-{i}.jpg", "image/jpeg"),
        (f"gallery/東京/夜景 {i}.webp", "image/webp"),
        (f"products/{i}/main.png", "image/png"),
    )
    return kinds[variant % len(kinds)]


def plan_objects(count: int, owners: Sequence[str], seed: int = 42) -> list[PlannedObject]:
    """The objects to upload: 30% avatars, 40% documents, 30% images, deterministic.

    Keys have nested folders, and some have spaces and non-ASCII characters. One document
    is exactly 1 MiB and one is 3 bytes, so the extremes are always there.
    """
    if not owners:
        raise ValueError("no users to own the Storage objects: seed the database first")
    planned: list[PlannedObject] = []
    avatars_of: dict[str, int] = {}
    for i in range(count):
        owner = owners[(i * 7 + 3) % len(owners)]
        fraction = _fraction(seed, f"size:{i}")
        bucket = _BUCKET_CYCLE[i % len(_BUCKET_CYCLE)]
        variant = i // len(_BUCKET_CYCLE) + i
        if bucket == "avatars":
            n = avatars_of.get(owner, 0)
            avatars_of[owner] = n + 1
            name = f"{owner}/avatar.png" if n == 0 else f"{owner}/avatar-{n}.png"
            planned.append(
                PlannedObject(
                    "avatars", name, "image/png", _log_uniform(fraction, 64, 256 * 1024), owner
                )
            )
        elif bucket == "documents":
            path, mime = _document_name(i, variant)
            size = _log_uniform(fraction, 3, MIB)
            planned.append(PlannedObject("documents", f"{owner}/{path}", mime, size, owner))
        else:
            name, mime = _image_name(i, variant)
            planned.append(
                PlannedObject("images", name, mime, _log_uniform(fraction, 100, MIB), owner)
            )
    # The extremes, whatever the count: the first document 1 MiB, the second 3 bytes.
    documents = [k for k, o in enumerate(planned) if o.bucket == "documents"]
    for position, size in zip(documents, (MIB, 3), strict=False):
        o = planned[position]
        planned[position] = PlannedObject(o.bucket, o.name, o.mimetype, size, o.owner)
    return planned


def object_bytes(obj: PlannedObject, seed: int = 42) -> bytes:
    """Deterministic content: a file-type signature (so sniffers agree) then filler."""
    if obj.mimetype.startswith("text/"):
        line = f"{obj.name},{seed},Zoë;Łukasz;東京\n".encode()
        body = line * (obj.size // len(line) + 1)
        # Cut on a line boundary when possible so the text stays valid UTF-8.
        data = body[: obj.size]
        return data.decode("utf-8", errors="ignore").encode().ljust(obj.size, b".")
    magic = _MAGIC.get(obj.mimetype, b"")
    filler = hashlib.shake_256(f"{seed}:{obj.bucket}/{obj.name}".encode()).digest(obj.size)
    return (magic + filler)[: obj.size]


def _iso_millis(moment: datetime) -> str:
    """``2025-01-02T03:04:05.000Z``: how Storage writes lastModified into metadata."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _create_buckets(s3_client: S3Client) -> None:
    region = s3_client.meta.region_name
    for bucket in BUCKETS:
        if region in (None, "us-east-1"):
            # us-east-1 is the one region S3 refuses an explicit LocationConstraint for.
            s3_client.create_bucket(Bucket=bucket.id)
        else:
            s3_client.create_bucket(
                Bucket=bucket.id,
                CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
            )


def _last_modified(s3_client: S3Client) -> dict[tuple[str, str], datetime]:
    """LastModified as the S3 server recorded it, for the metadata and the row timestamps."""
    modified: dict[tuple[str, str], datetime] = {}
    paginator = s3_client.get_paginator("list_objects_v2")
    for bucket in BUCKETS:
        for page in paginator.paginate(Bucket=bucket.id):
            for item in page.get("Contents", []):
                modified[(bucket.id, item["Key"])] = item["LastModified"]
    return modified


def seed_storage(
    conn: psycopg.Connection[Any],
    s3_client: S3Client,
    scale: int = 1,
    *,
    objects: int | None = None,
    seed: int = 42,
) -> dict[str, int]:
    """Create the buckets and objects in S3 and in storage.*; return objects per bucket.

    Buckets: ``avatars`` (public), ``documents`` (private), ``images`` (private, with a
    size limit and allowed MIME types). Each object is uploaded with ContentType and
    CacheControl, then described in ``storage.objects`` with the metadata the Storage API
    writes (eTag exactly as S3 returned it, quotes included). Avatars become the owner's
    ``profiles.avatar_url``; documents and images get a ``public.attachments`` row.
    """
    count = default_object_count(scale) if objects is None else objects
    if count < 0:
        raise ValueError(f"objects must be >= 0, not {count}")
    owners = [
        str(row[0])
        for row in conn.execute(
            "SELECT id FROM auth.users WHERE NOT is_anonymous AND deleted_at IS NULL "
            "ORDER BY created_at, id"
        )
    ]
    planned = plan_objects(count, owners, seed) if count else []

    bucket_created = datetime(2024, 10, 1, 12, 0, tzinfo=timezone.utc)
    _create_buckets(s3_client)

    uploaded: list[tuple[PlannedObject, str, bytes]] = []
    for obj in planned:
        data = object_bytes(obj, seed)
        response = s3_client.put_object(
            Bucket=obj.bucket,
            Key=obj.name,
            Body=data,
            ContentType=obj.mimetype,
            CacheControl=CACHE_CONTROL,
        )
        uploaded.append((obj, response["ETag"], hashlib.sha256(data).digest()))

    modified = _last_modified(s3_client)

    with conn.transaction():
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO storage.buckets (id, name, owner, owner_id, public, avif_autodetection, "
                "file_size_limit, allowed_mime_types, created_at, updated_at) "
                "VALUES (%s, %s, NULL, NULL, %s, false, %s, %s, %s, %s)",
                [
                    (
                        b.id,
                        b.id,
                        b.public,
                        b.file_size_limit,
                        list(b.allowed_mime_types) if b.allowed_mime_types else None,
                        bucket_created,
                        bucket_created,
                    )
                    for b in BUCKETS
                ],
            )
            object_rows = []
            attachment_rows = []
            avatar_rows = []
            for index, (obj, etag, digest) in enumerate(uploaded):
                last_modified = modified[(obj.bucket, obj.name)]
                metadata = {
                    "eTag": etag,
                    "size": obj.size,
                    "mimetype": obj.mimetype,
                    "cacheControl": CACHE_CONTROL,
                    "lastModified": _iso_millis(last_modified),
                    "contentLength": obj.size,
                    "httpStatusCode": 200,
                }
                user_metadata = (
                    Jsonb({"source": "demo", "label": f"Ünïcödé {index}"})
                    if index % 5 == 0
                    else None
                )
                object_rows.append(
                    (
                        _uuid(seed, f"object:{obj.bucket}/{obj.name}"),
                        obj.bucket,
                        obj.name,
                        obj.owner,
                        obj.owner,
                        last_modified,
                        last_modified,
                        last_modified,
                        Jsonb(metadata),
                        _uuid(seed, f"version:{obj.bucket}/{obj.name}"),
                        user_metadata,
                    )
                )
                if obj.bucket == "avatars":
                    if obj.name == f"{obj.owner}/avatar.png":
                        avatar_rows.append((obj.name, last_modified, obj.owner))
                else:
                    attachment_rows.append(
                        (
                            _uuid(seed, f"attachment:{obj.bucket}/{obj.name}"),
                            obj.owner,
                            obj.bucket,
                            obj.name,
                            obj.size,
                            digest,
                            obj.mimetype,
                            last_modified,
                        )
                    )
            cur.executemany(
                "INSERT INTO storage.objects (id, bucket_id, name, owner, owner_id, created_at, "
                "updated_at, last_accessed_at, metadata, version, user_metadata) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                object_rows,
            )
            # The explicit updated_at is kept by public.set_updated_at (it only fills in now()
            # when an UPDATE leaves updated_at alone).
            cur.executemany(
                "UPDATE public.profiles SET avatar_url = %s, updated_at = %s WHERE id = %s",
                avatar_rows,
            )
            cur.executemany(
                "INSERT INTO public.attachments (id, owner_id, task_id, bucket_id, object_path, "
                "byte_size, sha256, mime_type, created_at) "
                "VALUES (%s, %s, (SELECT min(t.id) FROM public.tasks AS t WHERE t.creator_id = %s), "
                "%s, %s, %s, %s, %s, %s)",
                [(r[0], r[1], r[1], *r[2:]) for r in attachment_rows],
            )
        sync_sequences(conn)
        conn.execute(
            "ANALYZE storage.buckets, storage.objects, public.profiles, public.attachments"
        )

    per_bucket = {b.id: 0 for b in BUCKETS}
    for obj, _, _ in uploaded:
        per_bucket[obj.bucket] += 1
    log.info("uploaded %s Storage objects: %s", len(uploaded), per_bucket)
    return per_bucket
