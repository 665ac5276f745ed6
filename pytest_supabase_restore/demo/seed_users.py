"""The demo's users: auth.users and what GoTrue keeps beside them (identities, sessions,
refresh tokens, MFA factors, the audit log), as SQL run by :func:`demo.seed.seed`.

The first statement creates ``demo_users``, a temp table of per-user facts that every later
statement (here and in :mod:`demo.seed_app`) reads; the ``pg_temp`` helpers it calls come
from ``demo.seed``.
"""

from __future__ import annotations

from collections.abc import Sequence

# The instance id GoTrue writes into every row of a single-tenant project.
_INSTANCE_ID = "00000000-0000-0000-0000-000000000000"
# Rows are dated from here on, so that the data does not depend on the day it was made.
EPOCH = "2024-10-01 00:00:00+00"

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
USER_AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0 Safari/537.36",
    "supabase-js/2.43.1",
    "Dart/3.3 (dart:io)",
]


def text_array(values: Sequence[str]) -> str:
    """A SQL text[] literal built from trusted constants of the demo's seed modules."""
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def _users_table_sql() -> str:
    """``demo_users``: the per-user facts (id, kind, dates, email, name) later statements share."""
    return f"""
CREATE TEMP TABLE demo_users ON COMMIT DROP AS
SELECT i,
       pg_temp.u('user:' || i) AS id,
       mod(i, 17) = 0 AS anon,
       mod(i, 17) <> 0 AND mod(i, 4) = 1 AS github,
       mod(i, 53) = 0 AS deleted,
       timestamptz '{EPOCH}' + (i - 1) * (interval '180 days' / %(n_users)s)
           + pg_temp.r('uc:' || i) * interval '1 hour' AS created,
       CASE WHEN mod(i, 17) = 0 THEN NULL
            ELSE 'user' || i || '@'
                 || pg_temp.pick('dom:' || i, ARRAY['example.com', 'example.org', 'mail.example.net'])
       END AS email,
       pg_temp.pick('fn:' || i, {text_array(_FIRST_NAMES)}) || ' '
           || pg_temp.pick('ln:' || i, {text_array(_LAST_NAMES)}) AS full_name
FROM generate_series(1, %(n_users)s) AS i
"""


def _user_metadata_sql() -> str:
    """The ``raw_user_meta_data`` of a user: what a Supabase app keeps in it."""
    return f"""CASE WHEN d.anon THEN '{{}}'::jsonb
            ELSE jsonb_build_object(
                'user_name', 'user_' || lpad(d.i::text, 6, '0'),
                'full_name', d.full_name,
                'email_verified', mod(d.i, 7) <> 0,
                'locale', pg_temp.pick('lc:' || d.i, ARRAY['en', 'de', 'fr', 'ja', 'pt-BR', 'uk']),
                'bio', CASE WHEN pg_temp.r('bio:' || d.i) < 0.3 THEN NULL
                            ELSE pg_temp.pick('bio2:' || d.i, {text_array(_BIOS)}) END,
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
       END"""


def _auth_users_sql() -> str:
    """``auth.users``, one row a ``demo_users`` row, with a real bcrypt hash of the password."""
    return f"""
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
       {_user_metadata_sql()},
       NULL,
       d.created,
       d.created + pg_temp.r('uu:' || d.i) * interval '30 days',
       CASE WHEN mod(d.i, 3) = 0 AND NOT d.anon THEN '1555' || lpad(d.i::text, 7, '0') END,
       CASE WHEN mod(d.i, 6) = 0 AND NOT d.anon THEN d.created + interval '10 minutes' END,
       d.anon,
       CASE WHEN d.deleted THEN d.created + interval '120 days' END
FROM demo_users AS d
ORDER BY d.i
"""


def users_sql() -> list[str]:
    """The users (a temp table of per-user facts the later statements share) and auth.users."""
    return [_users_table_sql(), _auth_users_sql()]


AUTH_SQL = [
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
       pg_temp.pick('ua:' || d.i || ':' || k, {text_array(USER_AGENTS)}),
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
