"""The seams hold: platforms stay in their adapters, features in their packages, imports form
no cycle, and modules stay small enough to read.

Every check reads the source with ``ast``, function-local imports included, so a cycle cannot
hide inside a function body.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from .harness import REPO

PLATFORM_MODULES = ("telegram", "slack_bolt", "slack_sdk", "aiohttp")
PACKAGES = ("bot", "handlers", "scheduler")
#: The feature packages under bot/, each plugged in through its ``feature.py``.
FEATURES = (
    "people",
    "briefings",
    "pulse",
    "suggestions",
    "loyalty",
    "home",
    "operations",
    "web",
)
#: Which features' code each chat surface may use (its own; people's onboarding is shared by
#: admin and dialogues, which belong to the people feature).
HANDLER_FEATURE = {
    "briefings": "briefings",
    "pulse": "pulse",
    "suggestions": "suggestions",
    "summaries": "loyalty",
    "onboarding": "people",
    "admin": "people",
    "dialogues": "people",
    "home": "home",
    "web": "web",
}
MAX_MODULE_LINES = 600


def source_files(*packages: str) -> list[Path]:
    """Every module of the packages, migrations left out (generated, one per schema step)."""
    return sorted(
        path
        for package in packages
        for path in (REPO / package).rglob("*.py")
        if "migrations" not in path.parts
    )


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def known_modules() -> frozenset[str]:
    return frozenset(module_name(p) for p in source_files(*PACKAGES))


def import_nodes(path: Path) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement of a module, at any depth (functions, ``if`` blocks)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module a file imports."""
    found: set[str] = set()
    for node in import_nodes(path):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif node.module:
            found.add(node.module.split(".")[0])
    return found


def project_imports(path: Path) -> set[str]:
    """The project modules a file imports: ``from a.b import c`` counts as ``a.b.c`` when that
    is a module, else ``a.b``."""
    known = known_modules()
    found: set[str] = set()
    for node in import_nodes(path):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in known)
        elif node.module and node.level == 0 and node.module.split(".")[0] in PACKAGES:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in known else node.module)
    return found & known


def import_graph() -> dict[str, set[str]]:
    return {module_name(p): project_imports(p) - {module_name(p)} for p in source_files(*PACKAGES)}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the list of modules around it, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_graph_finder_sees_cycles_and_function_local_imports() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    # bot/cli/main.py imports bot.features at the top, bot/app.py inside run() functions.
    graph = import_graph()
    assert "bot.features" in graph["bot.cli.main"]
    assert "bot.app" in graph["bot.cli.demo"]  # a function-local import


def test_no_import_cycles_at_all() -> None:
    assert find_cycle(import_graph()) is None


def test_no_module_imports_a_private_name_of_another() -> None:
    offenders = []
    for path in source_files(*PACKAGES, "tests", "bench"):
        for node in import_nodes(path):
            names = [a.name for a in node.names]
            if isinstance(node, ast.Import):
                names = [part for a in node.names for part in a.name.split(".")]
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {', '.join(private)}")
    assert offenders == []


def test_handlers_do_not_import_platform_libraries() -> None:
    files = source_files("handlers")
    assert files
    offenders = {
        str(f.relative_to(REPO)): sorted(imported_modules(f) & set(PLATFORM_MODULES)) for f in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_handlers_use_no_other_features_internals() -> None:
    offenders = []
    for path in source_files("handlers"):
        if path.stem == "__init__":
            continue
        own = HANDLER_FEATURE[path.stem]
        for target in project_imports(path):
            parts = target.split(".")
            if parts[0] == "bot" and len(parts) > 1 and parts[1] in FEATURES and parts[1] != own:
                offenders.append(f"{path.relative_to(REPO)} -> {target}")
            if parts[0] == "handlers" and HANDLER_FEATURE.get(parts[-1], own) != own:
                offenders.append(f"{path.relative_to(REPO)} -> {target}")
    assert offenders == []


def test_every_feature_is_one_package_plugged_in_once() -> None:
    from bot.features import FEATURES as LISTED

    assert [f.name for f in LISTED] == list(FEATURES)
    for name in FEATURES:
        assert (REPO / "bot" / name / "feature.py").is_file(), name
    listed = (REPO / "bot" / "features.py").read_text(encoding="utf-8")
    assert all(f"bot.{name}.feature import FEATURE" in listed for name in FEATURES)


def test_core_outside_adapters_does_not_import_platform_libraries() -> None:
    # The adapters: bot/channels/telegram*.py and bot/channels/slack*.py.
    adapters = REPO / "bot" / "channels"
    files = [
        f
        for f in source_files("bot", "scheduler")
        if not (f.parent == adapters and f.name.startswith(("telegram", "slack")))
    ]
    offenders = {
        str(f.relative_to(REPO))
        for f in files
        if imported_modules(f) & {"telegram", "slack_bolt", "slack_sdk"}
    }
    assert offenders == set()


#: Shared files that are not Python: a feature's settings or packaging live in them too.
SHARED_FILES = (REPO / "pyproject.toml", REPO / "config.yaml", REPO / "Makefile")


def test_no_splice_markers() -> None:
    """Sections between ``# ---`` markers were how a feature used to be spliced into shared
    files; a feature now lives in its package."""
    offenders = [
        f"{path.relative_to(REPO)}:{number}"
        for path in [*source_files(*PACKAGES, "tests", "bench"), *SHARED_FILES]
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if line.lstrip().startswith("# ---")
    ]
    assert offenders == []


def test_no_module_of_bot_is_over_600_lines() -> None:
    sizes = {
        str(p.relative_to(REPO)): len(p.read_text(encoding="utf-8").splitlines())
        for p in source_files("bot")
    }
    assert {k: v for k, v in sizes.items() if v > MAX_MODULE_LINES} == {}


def test_no_test_function_is_longer_than_80_lines() -> None:
    """A newcomer reads a test in one go: longer scenarios go through named helpers."""
    limit = 80
    too_long = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and node.name.startswith("test_")
                and node.end_lineno is not None
                and node.end_lineno - node.lineno + 1 > limit
            ):
                length = node.end_lineno - node.lineno + 1
                too_long.append(f"{path.relative_to(REPO)}::{node.name} ({length} lines)")
    assert too_long == [], f"test functions over {limit} lines: {too_long}"
