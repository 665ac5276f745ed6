"""The catalog queries behind the schema inventory, one per kind of object.

Each selects the facts :mod:`.inventory` records for one kind, keyed by an unquoted dotted
name, and nothing a faithful restore may change (no OIDs). ``%(schemas)s`` is the scope;
objects that belong to an extension are left out (the extension's own entry covers them).
"""

from __future__ import annotations

from .scope import NOT_EXTENSION_MEMBER

_NSP = "n.nspname = ANY(%(schemas)s::text[])"
_REL_MEMBER = NOT_EXTENSION_MEMBER.format(catalog="pg_catalog.pg_class", oid="c.oid")
_PROC_MEMBER = NOT_EXTENSION_MEMBER.format(catalog="pg_catalog.pg_proc", oid="p.oid")
_TYPE_MEMBER = NOT_EXTENSION_MEMBER.format(catalog="pg_catalog.pg_type", oid="t.oid")
_OWNER_NAME = "CASE WHEN {0} = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid({0})::text END"
_FUNC_SIG = (
    "n.nspname || '.' || p.proname || '(' || pg_catalog.oidvectortypes(p.proargtypes) || ')'"
)

SCHEMAS = f"""
SELECT n.nspname::text, pg_catalog.pg_get_userbyid(n.nspowner)::text,
    pg_catalog.obj_description(n.oid, 'pg_namespace')
FROM pg_catalog.pg_namespace n WHERE {_NSP}
"""

TABLES = f"""
SELECT n.nspname || '.' || c.relname, c.relkind::text, pg_catalog.pg_get_userbyid(c.relowner)::text,
    c.relrowsecurity, c.relforcerowsecurity, c.relpersistence::text,
    pg_catalog.pg_get_expr(c.relpartbound, c.oid),
    CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END,
    ARRAY(SELECT pn.nspname || '.' || pc.relname
          FROM pg_catalog.pg_inherits i
          JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
          JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
          WHERE i.inhrelid = c.oid ORDER BY i.inhseqno),
    c.relreplident::text, coalesce(c.reloptions, '{{}}'::text[]),
    pg_catalog.obj_description(c.oid, 'pg_class')
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'f') AND {_NSP} AND {_REL_MEMBER}
"""

COLUMNS = f"""
SELECT n.nspname || '.' || c.relname || '.' || a.attname,
    row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
    pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
    CASE WHEN a.attgenerated = '' THEN pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) END,
    CASE WHEN a.attgenerated <> '' THEN pg_catalog.pg_get_expr(ad.adbin, ad.adrelid) END,
    a.attidentity::text,
    CASE WHEN a.attcollation <> ty.typcollation THEN (
        SELECT cn.nspname || '.' || co.collname FROM pg_catalog.pg_collation co
        JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
        WHERE co.oid = a.attcollation) END,
    pg_catalog.col_description(c.oid, a.attnum)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'f')
    AND {_NSP} AND {_REL_MEMBER}
"""

CONSTRAINTS = f"""
SELECT n.nspname || '.' || c.relname || '.' || co.conname, co.contype::text,
    pg_catalog.pg_get_constraintdef(co.oid), co.condeferrable, co.condeferred, co.convalidated
FROM pg_catalog.pg_constraint co
JOIN pg_catalog.pg_class c ON c.oid = co.conrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE {_NSP} AND {_REL_MEMBER}
"""

INDEXES = f"""
SELECT n.nspname || '.' || ic.relname, n.nspname || '.' || c.relname,
    pg_catalog.pg_get_indexdef(i.indexrelid), i.indisunique, i.indisprimary,
    i.indisreplident, i.indisclustered
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE {_NSP} AND {_REL_MEMBER}
"""

VIEWS = f"""
SELECT n.nspname || '.' || c.relname, pg_catalog.pg_get_userbyid(c.relowner)::text,
    pg_catalog.md5(pg_catalog.pg_get_viewdef(c.oid)), coalesce(c.reloptions, '{{}}'::text[]),
    c.relispopulated, pg_catalog.obj_description(c.oid, 'pg_class')
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind::text = %(relkind)s AND {_NSP} AND {_REL_MEMBER}
"""

FUNCTIONS = f"""
SELECT {_FUNC_SIG}, p.prokind::text, pg_catalog.pg_get_function_result(p.oid),
    pg_catalog.pg_get_function_arguments(p.oid), l.lanname::text, p.prosecdef,
    p.provolatile::text, p.proisstrict, p.proleakproof, p.proparallel::text,
    coalesce(p.proconfig, '{{}}'::text[]),
    pg_catalog.md5(CASE WHEN p.prosqlbody IS NOT NULL
                        THEN pg_catalog.pg_get_function_sqlbody(p.oid) ELSE p.prosrc END),
    pg_catalog.pg_get_userbyid(p.proowner)::text, pg_catalog.obj_description(p.oid, 'pg_proc')
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
JOIN pg_catalog.pg_language l ON l.oid = p.prolang
WHERE {_NSP} AND {_PROC_MEMBER}
"""

TRIGGERS = f"""
SELECT n.nspname || '.' || c.relname || '.' || tg.tgname,
    pg_catalog.pg_get_triggerdef(tg.oid), tg.tgenabled::text
FROM pg_catalog.pg_trigger tg
JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE NOT tg.tgisinternal AND {_NSP} AND {_REL_MEMBER}
"""

# pg_sequence_last_value raises without SELECT or USAGE; such a sequence's position is
# recorded as unknown instead of failing the whole inventory.
SEQUENCES = f"""
SELECT n.nspname || '.' || c.relname, pg_catalog.format_type(s.seqtypid, NULL),
    s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcycle, s.seqcache,
    pg_catalog.has_sequence_privilege(c.oid, 'SELECT, USAGE') AS readable,
    CASE WHEN pg_catalog.has_sequence_privilege(c.oid, 'SELECT, USAGE')
         THEN pg_catalog.pg_sequence_last_value(c.oid) END,
    (SELECT rn.nspname || '.' || rc.relname || '.' || ra.attname
     FROM pg_catalog.pg_depend d
     JOIN pg_catalog.pg_class rc ON rc.oid = d.refobjid
     JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
     JOIN pg_catalog.pg_attribute ra ON ra.attrelid = d.refobjid AND ra.attnum = d.refobjsubid
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid
         AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
         AND d.deptype IN ('a', 'i') AND d.refobjsubid > 0
     LIMIT 1),
    pg_catalog.pg_get_userbyid(c.relowner)::text
FROM pg_catalog.pg_sequence s
JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE {_NSP} AND {_REL_MEMBER}
"""

ENUMS = f"""
SELECT n.nspname || '.' || t.typname, pg_catalog.pg_get_userbyid(t.typowner)::text,
    ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e
          WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder)
FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
WHERE t.typtype = 'e' AND {_NSP} AND {_TYPE_MEMBER}
"""

EXTENSIONS = """
SELECT e.extname::text, e.extversion, n.nspname::text
FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
"""

POLICIES = f"""
SELECT n.nspname || '.' || c.relname || '.' || p.polname, n.nspname || '.' || c.relname,
    p.polname::text, p.polcmd::text, p.polpermissive,
    ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(r)::text END
          FROM pg_catalog.unnest(p.polroles) AS r),
    pg_catalog.pg_get_expr(p.polqual, p.polrelid),
    pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)
FROM pg_catalog.pg_policy p
JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE {_NSP} AND {_REL_MEMBER}
"""

# A NULL ACL means "the built-in default"; acldefault() spells it out, so an explicit ACL
# equal to the default and a NULL one compare equal. Grantors are left out on purpose:
# a restore run by another role legitimately records another grantor.
GRANTS = f"""
SELECT 'relation:' || c.relkind::text, n.nspname || '.' || c.relname,
    {_OWNER_NAME.format("a.grantee")}, a.privilege_type, a.is_grantable
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(coalesce(c.relacl, pg_catalog.acldefault(
    CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) AS a
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND {_NSP} AND {_REL_MEMBER}
UNION ALL
SELECT 'column', n.nspname || '.' || c.relname || '.' || att.attname,
    {_OWNER_NAME.format("a.grantee")}, a.privilege_type, a.is_grantable
FROM pg_catalog.pg_attribute att
JOIN pg_catalog.pg_class c ON c.oid = att.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(att.attacl) AS a
WHERE att.attacl IS NOT NULL AND att.attnum > 0 AND NOT att.attisdropped
    AND {_NSP} AND {_REL_MEMBER}
UNION ALL
SELECT 'function', {_FUNC_SIG}, {_OWNER_NAME.format("a.grantee")}, a.privilege_type,
    a.is_grantable
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(
    coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) AS a
WHERE {_NSP} AND {_PROC_MEMBER}
UNION ALL
SELECT 'schema', n.nspname::text, {_OWNER_NAME.format("a.grantee")}, a.privilege_type,
    a.is_grantable
FROM pg_catalog.pg_namespace n
CROSS JOIN LATERAL pg_catalog.aclexplode(
    coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) AS a
WHERE {_NSP}
UNION ALL
SELECT 'default:' || d.defaclobjtype::text,
    'for role ' || pg_catalog.pg_get_userbyid(d.defaclrole)
        || coalesce(' in schema ' || n.nspname, ''),
    {_OWNER_NAME.format("a.grantee")}, a.privilege_type, a.is_grantable
FROM pg_catalog.pg_default_acl d
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
CROSS JOIN LATERAL pg_catalog.aclexplode(d.defaclacl) AS a
WHERE d.defaclnamespace = 0 OR {_NSP}
"""

PUBLICATIONS = """
SELECT p.pubname::text, pg_catalog.pg_get_userbyid(p.pubowner)::text, p.puballtables,
    p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate, p.pubviaroot,
    ARRAY(SELECT pn.nspname || '.' || pc.relname
              || coalesce(' (' || (SELECT pg_catalog.string_agg(pa.attname, ', ' ORDER BY pa.attnum)
                                   FROM pg_catalog.pg_attribute pa
                                   WHERE pa.attrelid = pr.prrelid
                                       AND pa.attnum = ANY(pr.prattrs)) || ')', '')
              || coalesce(' WHERE ' || pg_catalog.pg_get_expr(pr.prqual, pr.prrelid), '')
          FROM pg_catalog.pg_publication_rel pr
          JOIN pg_catalog.pg_class pc ON pc.oid = pr.prrelid
          JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
          WHERE pr.prpubid = p.oid),
    ARRAY(SELECT pn.nspname::text FROM pg_catalog.pg_publication_namespace pns
          JOIN pg_catalog.pg_namespace pn ON pn.oid = pns.pnnspid
          WHERE pns.pnpubid = p.oid)
FROM pg_catalog.pg_publication p
"""


__all__ = [
    "COLUMNS",
    "CONSTRAINTS",
    "ENUMS",
    "EXTENSIONS",
    "FUNCTIONS",
    "GRANTS",
    "INDEXES",
    "POLICIES",
    "PUBLICATIONS",
    "SCHEMAS",
    "SEQUENCES",
    "TABLES",
    "TRIGGERS",
    "VIEWS",
]
