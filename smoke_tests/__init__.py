"""The built-in smoke tests: eight categories that prove a restored backup works.

Installed as ``pytest_supabase_restore.smoke_tests``, inside the plugin's own namespace, so a
project's own ``smoke_tests/`` package never shadows them. Each module is one category
(``pytestmark = pytest.mark.supabase_category(...)``) and is parametrized from the backup's
manifest in ``conftest.py``, so every test id names the object it checks:
``test_table_fingerprint[public.tasks]``, ``test_bucket_settings[avatars]``,
``test_policy[public.tasks/own tasks]``. What the categories share lives in ``_support``.
"""
