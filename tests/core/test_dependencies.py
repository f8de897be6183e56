"""Every runtime dependency declared in pyproject.toml is used by the code.

A dependency counts as used when one of the packages imports a module that
its distribution installs. The few used otherwise (a program started by
name, a SQLAlchemy driver named in a URL) say where, and that place must
still say it. The later-issue list holds what the design names for work
that the issues after this one do; each entry is removed when that work
lands.
"""

from __future__ import annotations

import ast
import re
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("sonicforge", "models", "orchestration", "assets", "analytics", "serving", "streaming", "cli")  # fmt: skip

# Used without an import statement: distribution -> (file, text that uses it).
USED_WITHOUT_IMPORT = {
    "dagster-webserver": ("cli/run.py", "dagster-webserver"),  # started as a program
    "duckdb-ext-delta": ("analytics/sql.py", 'find_spec("duckdb_ext")'),  # extension files
    "duckdb-ext-httpfs": ("analytics/sql.py", 'find_spec("duckdb_ext")'),
    "psycopg": ("README.md", "postgresql+psycopg://"),  # SQLAlchemy's driver, by URL
    "email-validator": ("serving/schemas/auth.py", "EmailStr"),  # pydantic's EmailStr needs it
    # Loaded by Dagster from the instance's storage config (orchestration/instance.py).
    "dagster-postgres": ("orchestration/instance.py", "storage is dagster-postgres"),
}
# Named by the design for work of later issues; prometheus-client (serving/metrics.py)
# and polars (analytics/transforms.py) are used now.
LATER_ISSUES: set[str] = set()


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = []
    for requirement in project["dependencies"]:
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        assert match, f"cannot read the name of dependency {requirement!r}"
        names.append(_norm(match.group(0)))
    return names


def _imported_modules() -> set[str]:
    modules: set[str] = set()
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, ast.Import):
                    modules |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    modules.add(node.module.split(".")[0])
    return modules


def test_every_declared_dependency_is_used() -> None:
    by_module = packages_distributions()
    imported = {_norm(d) for m in _imported_modules() for d in by_module.get(m, [])}
    unused = []
    for name in _declared():
        if name in imported or name in LATER_ISSUES:
            continue
        if name in USED_WITHOUT_IMPORT:
            file, text = USED_WITHOUT_IMPORT[name]
            assert text in (REPO / file).read_text(), (
                f"{name} is declared as used by {text!r} in {file}, which no longer says it"
            )
            continue
        unused.append(name)
    assert unused == [], (
        f"declared in pyproject.toml but nothing uses them: {unused}; "
        "drop them, or use them (a module under one of the packages imports it)"
    )


def test_the_exception_lists_name_declared_dependencies() -> None:
    declared = set(_declared())
    assert set(USED_WITHOUT_IMPORT) <= declared
    assert declared >= LATER_ISSUES
