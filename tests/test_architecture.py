"""The seams hold: handlers never import a platform library."""

from __future__ import annotations

import ast

from .harness import REPO

PLATFORM_MODULES = ("telegram", "slack_bolt", "slack_sdk", "aiohttp")


def imported_modules(path: object) -> set[str]:
    tree = ast.parse(open(path, encoding="utf-8").read())  # type: ignore[arg-type]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_handlers_do_not_import_platform_libraries() -> None:
    files = sorted((REPO / "handlers").rglob("*.py"))
    assert files
    offenders = {
        str(f.relative_to(REPO)): sorted(imported_modules(f) & set(PLATFORM_MODULES)) for f in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_core_outside_adapters_does_not_import_platform_libraries() -> None:
    allowed = {
        REPO / "bot" / "channels" / "telegram.py",
        REPO / "bot" / "channels" / "telegram_internals.py",
        REPO / "bot" / "channels" / "slack.py",
        REPO / "bot" / "cli.py",
    }
    files = [f for f in (REPO / "bot").rglob("*.py") if f not in allowed]
    offenders = {
        str(f.relative_to(REPO))
        for f in files
        if imported_modules(f) & {"telegram", "slack_bolt", "slack_sdk"}
    }
    assert offenders == set()


def test_no_test_function_is_longer_than_80_lines() -> None:
    """A newcomer reads a test in one go: longer scenarios go through named helpers."""
    import ast as syntax

    from .harness import REPO as root

    limit = 80
    too_long = []
    for path in sorted((root / "tests").rglob("*.py")):
        for node in syntax.walk(syntax.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, syntax.FunctionDef | syntax.AsyncFunctionDef)
                and node.name.startswith("test_")
                and node.end_lineno is not None
                and node.end_lineno - node.lineno + 1 > limit
            ):
                length = node.end_lineno - node.lineno + 1
                too_long.append(f"{path.relative_to(root)}::{node.name} ({length} lines)")
    assert too_long == [], f"test functions over {limit} lines: {too_long}"
