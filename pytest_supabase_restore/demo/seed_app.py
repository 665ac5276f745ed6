"""The app's rows in public (projects, tasks, comments, tags, audit events, an import log)
and the Database Webhooks' hooks, as SQL run by :func:`demo.seed.seed` after the users.
"""

from __future__ import annotations

from .seed_users import EPOCH, USER_AGENTS, text_array

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
TAGS = [
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


PUBLIC_SQL = [
    f"""
INSERT INTO public.projects (id, owner_id, name, description, visibility, budget, color,
                             starts_on, archived, metadata, created_at, updated_at)
OVERRIDING SYSTEM VALUE
SELECT row_number() OVER (ORDER BY d.i, k),
       d.id,
       pg_temp.pick('pn:' || d.i || ':' || k, {text_array(_PROJECT_NAMES)}) || ' ' || k,
       CASE WHEN pg_temp.r('pd:' || d.i || ':' || k) < 0.25 THEN NULL
            ELSE pg_temp.pick('pd2:' || d.i || ':' || k, {text_array(_SENTENCES)}) END,
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
       pg_temp.pick('tv:' || x.key, {text_array(_VERBS)}) || ' '
           || pg_temp.pick('tn:' || x.key, {text_array(_NOUNS)}) || ' #' || x.k,
       CASE WHEN pg_temp.r('tb:' || x.key) < 0.2 THEN NULL
            ELSE repeat(pg_temp.pick('tb2:' || x.key, {text_array(_SENTENCES)}) || ' ',
                        pg_temp.ri('tb3:' || x.key, 1, 4)::int) END,
       x.status::public.task_status,
       pg_temp.ri('tp:' || x.key, 1, 5)::smallint,
       ARRAY(SELECT pg_temp.pick('tl:' || x.key || ':' || j, {text_array(_LABELS)})
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
       pg_temp.pick('cb:' || t.id || ':' || k, {text_array(_COMMENTS)}) || ' (' || k || ')',
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
       timestamptz '{EPOCH}' + n.i * interval '1 hour'
FROM (
    SELECT i, name FROM unnest({text_array(TAGS)}) WITH ORDINALITY AS t(name, i)
    UNION ALL
    SELECT {len(TAGS)} + j, 'topic-' || lpad(j::text, 5, '0')
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
                     'user_agent', pg_temp.pick('aeua:' || e, {text_array(USER_AGENTS)}),
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
