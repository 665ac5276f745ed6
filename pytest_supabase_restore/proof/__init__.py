"""The proof: one definition of "the same" for the backup and its restored copy.

The export computes these facts on the source, inside the dump's exported snapshot, as the
non-superuser ``postgres`` role (BYPASSRLS); the smoke tests compute them again on the
restored staging copy, as a superuser, and only compare. Both sides run exactly the same SQL,
under exactly the same session settings, so a difference means the data or the schema differ,
never the way they were read.

- :mod:`.scope`: which schemas and tables the backup covers, and the pinned session.
- :mod:`.fingerprint`: row counts and fingerprints, per primary-key range.
- :mod:`.inventory`: the schema inventory and its diff; :mod:`.catalog` holds its queries.
- :mod:`.postgrest`: the session PostgREST sets up for a request, read and reproduced.
- :mod:`.rls`: what each identity sees under row-level security, in that session.
- :mod:`.rlskeys`: the keys that is evaluated on, sampled from the dump's own lines.

Every function takes an open psycopg 3 connection and is safe inside a caller's REPEATABLE
READ transaction that imported a snapshot: work runs in a savepoint that is rolled back at
the end (so every ``SET LOCAL`` and ``SET ROLE`` is undone), nothing is committed and the
isolation level is never touched. On an idle connection the work runs in a short
transaction of its own that is rolled back.
"""
