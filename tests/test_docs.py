"""docs/BACKUP_VALIDATION.md against the code: every option, variable and flag is documented.

The configuration reference is parsed as a table and compared with ``config.OPTIONS`` in
both directions, so an option added to the code without docs, or a documented option that no
longer exists, fails here. The flags the installed plugin really registers are read from
``pytest --help``.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_supabase_restore
from pytest_supabase_restore import CATEGORIES
from pytest_supabase_restore.config import (
    BACKUP_ENV,
    NOTIFY_ENV,
    OPTIONS,
    PLATFORM_ENV,
    SECRET_ENV,
    SOURCE_ENV,
    STAGING_ENV,
)
from pytest_supabase_restore.connections import DISPOSABLE_MARKER
from pytest_supabase_restore.options import Option

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "BACKUP_VALIDATION.md"
PACKAGE = Path(pytest_supabase_restore.__file__).parent
FLAG_RE = re.compile(r"--supabase-[a-z0-9]+(?:-[a-z0-9]+)*")


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


def mentioned(text: str, token: str) -> bool:
    """``token`` appears as a whole word (``--supabase-github-issue`` is not found inside
    ``--supabase-github-issue-title``)."""
    return re.search(rf"(?<![\w-]){re.escape(token)}(?![\w-])", text) is not None


def cells(row: str) -> list[str]:
    # Split on the table's pipes, not on escaped ones (``auto\|ephemeral``).
    return [c.strip() for c in re.split(r"(?<!\\)\|", row.strip())[1:-1]]


def code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def table_rows(doc: str, heading: str) -> list[list[str]]:
    """The body rows of the first table after ``heading``."""
    start = doc.index(heading)
    rows: list[list[str]] = []
    for line in doc[start:].splitlines()[1:]:
        if line.startswith("|"):
            rows.append(cells(line))
        elif rows:
            break
    assert len(rows) > 2, f"no table after {heading!r}"
    return rows[2:]  # header and delimiter row


def option_rows(doc: str) -> dict[str, list[str]]:
    rows = table_rows(doc, "## 5. Configuration reference")
    return {code_spans(row[0])[0].split()[0]: row for row in rows}


def test_reference_table_lists_exactly_the_options(doc: str) -> None:
    documented = set(option_rows(doc))
    defined = {opt.flag for opt in OPTIONS}
    assert documented - defined == set(), "documented but not an option"
    assert defined - documented == set(), "an option missing from the reference table"


@pytest.mark.parametrize("opt", OPTIONS, ids=lambda opt: opt.name)
def test_option_row(doc: str, opt: Option) -> None:
    flag_cell, env_cell, ini_cell, default_cell, meaning = option_rows(doc)[opt.flag]
    assert opt.env and code_spans(env_cell) == [opt.env]
    assert opt.ini and code_spans(ini_cell) == [opt.ini]
    if opt.metavar:
        assert code_spans(flag_cell) == [f"{opt.flag} {opt.metavar}"]
    if opt.choices:
        assert all(choice in flag_cell for choice in opt.choices)
    if opt.kind == "bool":
        assert default_cell == ("on" if opt.default else "off")
    elif opt.default is None:
        assert default_cell.startswith("("), "an unset default is described in parentheses"
    else:
        assert code_spans(default_cell) == [str(opt.default)]
    assert meaning


@pytest.mark.parametrize("opt", OPTIONS, ids=lambda opt: opt.name)
def test_option_names_are_mentioned(doc: str, opt: Option) -> None:
    for token in (opt.flag, opt.env, opt.ini):
        assert token and mentioned(doc, token), token


@pytest.mark.parametrize(
    "name", [*SOURCE_ENV, *STAGING_ENV, *NOTIFY_ENV, *BACKUP_ENV, *PLATFORM_ENV]
)
def test_environment_variable_documented(doc: str, name: str) -> None:
    assert mentioned(doc, name)
    rows = table_rows(doc, "### Environment variables that are not options")
    (row,) = [r for r in rows if name in code_spans(r[0])]
    assert row[1] == ("yes" if name in SECRET_ENV else "no"), f"{name}: secret column"


def test_every_documented_flag_exists(doc: str) -> None:
    defined = {opt.flag for opt in OPTIONS}
    assert set(FLAG_RE.findall(doc)) - defined == set()


def test_every_documented_plugin_variable_exists(doc: str) -> None:
    envs = {opt.env for opt in OPTIONS}
    source = "\n".join(p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py"))
    for name in set(re.findall(r"\bSUPABASE_RESTORE_[A-Z0-9_]+\b", doc)) - envs:
        assert name in source, f"{name} is documented but the package never reads it"


def test_disposable_marker_and_categories(doc: str) -> None:
    assert f"COMMENT ON DATABASE postgres IS '{DISPOSABLE_MARKER}'" in doc
    mermaid = doc.split("```mermaid", 1)[1].split("```", 1)[0]
    for category in CATEGORIES:
        assert category in mermaid


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_internal_links_resolve(doc: str) -> None:
    anchors = {slug(h) for h in re.findall(r"^#{1,6} (.+)$", doc, flags=re.MULTILINE)}
    links = set(re.findall(r"\]\(#([^)]+)\)", doc))
    assert links
    assert links - anchors == set()


def plugin_help_flags(tmp_path: Path) -> set[str]:
    """The ``--supabase-*`` flags the installed plugin shows in ``pytest --help``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS",)}
    env.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)  # the flags come from the entry point
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    flags = set(FLAG_RE.findall(result.stdout))
    if flags:
        return flags
    try:
        importlib.import_module("pytest_supabase_restore.plugin")
    except ModuleNotFoundError as exc:
        if exc.name == "pytest_supabase_restore.plugin":
            pytest.skip("plugin not registered")
        raise
    pytest.fail(
        "pytest --help shows no --supabase-* flag although pytest_supabase_restore.plugin "
        f"imports:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    )


def test_every_registered_flag_is_documented(doc: str, tmp_path: Path) -> None:
    flags = plugin_help_flags(tmp_path)
    undocumented = sorted(flag for flag in flags if not mentioned(doc, flag))
    assert undocumented == []


# -- the team docs: messages, GitHub set-up, links ------------------------------------------
DOCS = ROOT / "docs"
WORKFLOWS = ROOT / ".github" / "workflows"
TEAM_DOCS = ("CONNECTING.md", "SOURCE_ROLE.md", "GITHUB_SETUP.md", "SIZING.md", "MESSAGES.md")


def package_strings() -> str:
    """Every string literal of the package, f-strings with each replacement field as ``…``
    (adjacent literals are one string to the parser, so a message split over lines is whole)."""
    found: list[str] = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.JoinedStr):
                found.append(
                    "".join(
                        str(v.value) if isinstance(v, ast.Constant) else "…" for v in node.values
                    )
                )
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append(node.value)
    return "\n".join(found)


def message_excerpts() -> list[str]:
    """The backticked excerpts of the Message column of docs/MESSAGES.md's tables."""
    excerpts: list[str] = []
    for line in (DOCS / "MESSAGES.md").read_text(encoding="utf-8").splitlines():
        row = cells(line) if line.startswith("|") else []
        if len(row) == 3 and row[1] != "Message" and not set(row[1]) <= {"-"}:
            spans = code_spans(row[1])
            assert spans, f"a message row quotes no message: {line}"
            excerpts += spans
    return excerpts


def test_the_messages_table_is_long_enough_to_be_useful() -> None:
    assert len(message_excerpts()) >= 30


@pytest.mark.parametrize("excerpt", message_excerpts())
def test_every_quoted_message_occurs_in_the_package(excerpt: str) -> None:
    assert excerpt in package_strings(), "docs/MESSAGES.md quotes a message the package lacks"


def workflow_names(kind: str) -> set[str]:
    """``secrets.X`` or ``vars.X`` names the workflows read (GITHUB_TOKEN: Actions' own)."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(WORKFLOWS.glob("*.yml")))
    return set(re.findall(rf"\b{kind}\.([A-Z][A-Z0-9_]*)\b", text)) - {"GITHUB_TOKEN"}


def test_the_github_setup_sets_exactly_the_secrets_and_variables_the_workflows_read() -> None:
    setup = (DOCS / "GITHUB_SETUP.md").read_text(encoding="utf-8")
    secrets = set(re.findall(r"gh secret set ([A-Z][A-Z0-9_]*)", setup))
    variables = set(re.findall(r"gh variable set ([A-Z][A-Z0-9_]*)", setup))
    assert workflow_names("secrets"), "the workflows read no secret: the pattern is wrong"
    assert secrets == workflow_names("secrets")
    assert variables == workflow_names("vars")
    # Every secret goes into the environment the drill job runs in.
    (environment,) = set(re.findall(r"^\s+environment: (\S+)$", _drill_workflow(), re.M))
    for line in re.findall(r"gh secret set [A-Z][A-Z0-9_]*[^\n]*", setup):
        assert f"--env {environment}" in line, line
    assert f"environments/{environment}" in setup


def _drill_workflow() -> str:
    return (WORKFLOWS / "monthly-backup-validation.yml").read_text(encoding="utf-8")


def test_the_readme_links_every_doc_and_the_docs_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    main = DOC.read_text(encoding="utf-8")
    anchors = {slug(h) for h in re.findall(r"^#{1,6} (.+)$", main, flags=re.MULTILINE)}
    for name in TEAM_DOCS:
        assert f"](docs/{name})" in readme, f"README does not link docs/{name}"
        text = (DOCS / name).read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+\.md)(?:#([^)]+))?\)", text):
            path, anchor = target
            assert (DOCS / path).resolve().is_file(), f"{name}: {path}"
            if anchor and path == "BACKUP_VALIDATION.md":
                assert anchor in anchors, f"{name}: #{anchor}"


def test_the_connection_doc_agrees_with_the_plugins_own_advice() -> None:
    """What CONNECTING.md says of poolers and IPv4 is what the plugin says when it fails."""
    from pytest_supabase_restore.preflight.source import TRANSACTION_POOLER_PORT, pooler_check

    text = " ".join((DOCS / "CONNECTING.md").read_text(encoding="utf-8").split())
    strings = package_strings()
    assert "use the session pooler URL on IPv4-only networks" in strings
    assert "use the session pooler URL on IPv4-only networks" in text
    check = pooler_check(f"postgresql://u@aws-0-x.pooler.supabase.com:{TRANSACTION_POOLER_PORT}/p")
    assert check.status == "FAIL"
    assert f"port **{TRANSACTION_POOLER_PORT}**" in text
    assert check.result.split(": ", 1)[1] in text


def test_the_sizing_figures_are_the_benchmarks_measured_ones() -> None:
    """Every duration in SIZING.md's time table (not the per-GB rows, which are derived) is a
    figure bench/README.md measured; the per-GB rows are those figures over the size."""
    text = (DOCS / "SIZING.md").read_text(encoding="utf-8")
    bench = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")
    rows = table_rows(text, "## Time per GB")
    sizes = [1e9 / 418e6, 1e9 / 819e6, 1e9 / 1624e6]
    measured: list[float] = []
    for row in rows:
        values = [float(v) for v in re.findall(r"([\d.]+) s\b", " ".join(row[1:]))]
        if row[0].startswith("**per GB") or row[0] == "per GB":
            assert values == [round(m * f) for m, f in zip(measured, sizes, strict=True)], row
            continue
        for cell in row[1:]:
            assert cell in bench, cell
        measured = values
    when = "04:10\N{EN DASH}04:24 UTC"  # the run's time, as both files write it
    assert "2026-12-02" in text and when in text and when in bench
