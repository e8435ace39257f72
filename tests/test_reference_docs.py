"""The reference pages under docs/ are generated from the code (``make docs``) and kept in
step with it: a committed page that differs from what the generator writes now fails here."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import typer.main
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from bot.cli.main import app
from bot.config import Settings
from bot.features import build_registry
from bot.reference.field_types import readable_type
from bot.reference.pages import CONFIGURATION, reference_pages
from bot.render import Renderer

from .harness import REPO

DOCS = REPO / "docs"


def generated_pages() -> dict[str, str]:
    """What ``make docs`` writes, made the way ``fidelio docs reference`` makes it."""
    return reference_pages(
        typer.main.get_command(app),
        build_registry(),
        Renderer(REPO / "content" / "templates"),
        REPO / "config.yaml",
    )


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return generated_pages()


def test_committed_reference_pages_are_up_to_date(pages: dict[str, str]) -> None:
    stale = [
        name
        for name, text in pages.items()
        if not (DOCS / name).is_file() or (DOCS / name).read_text(encoding="utf-8") != text
    ]
    assert stale == [], f"docs/{', docs/'.join(stale)} out of date: run `make docs`"


def test_the_pages_do_not_depend_on_the_run(pages: dict[str, str]) -> None:
    assert generated_pages() == pages
    for text in pages.values():
        assert "\r" not in text and text.endswith("\n") and not text.endswith("\n\n")
        assert str(REPO) not in text


def settings_models() -> Iterator[type[BaseModel]]:
    """Every model config.yaml is made of: the sections and the mappings inside them."""
    pending: list[Any] = [f.annotation for f in Settings.model_fields.values()]
    seen: set[type[BaseModel]] = set()
    while pending:
        annotation = pending.pop(0)
        for candidate in (annotation, *get_args(annotation)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                if candidate not in seen:
                    seen.add(candidate)
                    pending += [f.annotation for f in candidate.model_fields.values()]
                    yield candidate


def settings_keys() -> Iterator[tuple[str, FieldInfo, str]]:
    """``(dotted key, field, environment variable)`` of every key of :class:`Settings`."""
    for name, info in Settings.model_fields.items():
        model = info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            for key, key_info in model.model_fields.items():
                yield f"{name}.{key}", key_info, f"FIDELIO_{name}__{key}".upper()
        else:
            yield name, info, f"FIDELIO_{name}".upper()


def test_every_setting_has_a_description_and_every_section_an_intro() -> None:
    models = list(settings_models())
    assert len(models) > 15
    undocumented = [
        f"{model.__name__}.{name}"
        for model in models
        for name, info in model.model_fields.items()
        if not (info.description or "").strip()
    ]
    # Top-level keys that are not sections (content_dir) are keys too.
    undocumented += [
        name
        for name, info in Settings.model_fields.items()
        if info.annotation not in models and not (info.description or "").strip()
    ]
    assert undocumented == [], "add Field(description=...) to: " + ", ".join(undocumented)
    no_intro = [m.__name__ for m in models if not (m.__doc__ or "").strip()]
    assert no_intro == [], "add a docstring to: " + ", ".join(no_intro)


def test_every_key_appears_with_its_environment_variable(pages: dict[str, str]) -> None:
    rows = [line for line in pages[CONFIGURATION].splitlines() if line.startswith("| `")]
    missing = []
    for key, _info, env in settings_keys():
        row = next((r for r in rows if r.startswith(f"| `{key}` |")), None)
        if row is None or f"| `{env}` |" not in row:
            missing.append(key)
    assert missing == []
    assert len(rows) == len(list(settings_keys()))


def test_the_environment_variables_shown_are_the_ones_read(tmp_path: Path) -> None:
    from bot.config import load_settings

    config = tmp_path / "config.yaml"
    config.write_text(f"content_dir: {REPO / 'content'}\n", encoding="utf-8")
    env = {
        "FIDELIO_TELEGRAM__POLL_TIMEOUT_S": "7",
        "FIDELIO_OBJECTIVE__QUIZ_SCORE": '{"worst": 50, "best": 100, "weight": 0}',
        "FIDELIO_PRIVACY__SUGGESTION_RETENTION_DAYS": "90",
    }
    settings = load_settings(config, env)
    assert settings.telegram.poll_timeout_s == 7
    assert settings.objective.quiz_score.worst == 50
    assert settings.privacy.suggestion_retention_days == 90
    assert all(any(env_name == e for _, _, e in settings_keys()) for env_name in env)


def test_types_read_as_words() -> None:
    fields = {key: info for key, info, _ in settings_keys()}
    assert readable_type(fields["invites.ttl_hours"]) == "int (1–2160)"
    assert readable_type(fields["scheduler.outbox_poll_s"]) == "float > 0"
    assert readable_type(fields["rates.reply_reserve_share"]) == "float ≥ 0 and < 1"
    assert readable_type(fields["telegram.mode"]) == '"polling" | "webhook"'
    assert readable_type(fields["telegram.token"]) == "secret string or empty"
    assert readable_type(fields["console.as_email"]) == "string or empty"
    assert readable_type(fields["privacy.audit_retention_days"]) == "int ≥ 1 or empty"
    assert readable_type(fields["content_dir"]) == "path"


def test_the_configuration_page_shows_the_shipped_file_and_hides_secrets(
    pages: dict[str, str],
) -> None:
    rows = {
        line.split(" | ")[0].removeprefix("| "): line.split(" | ")
        for line in pages[CONFIGURATION].splitlines()
        if line.startswith("| `")
    }
    # Key | Type | Default | Environment variable | config.yaml | Description
    assert rows["`telegram.token`"][4] == "`${TELEGRAM_BOT_TOKEN:-}`"
    assert rows["`organisation.name`"][4] == "`Demo Elettronica SpA`"
    assert rows["`outbox.max_attempts`"][4] == ""  # the file repeats the default
    assert rows["`security.secret_key`"][2] == "hidden"
    assert rows["`telegram.token`"][2] == "empty"
    assert "change-me-in-production`" not in rows["`security.secret_key`"][2]


def run_fidelio(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "-c", str(REPO / "config.yaml"), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )


def test_docs_reference_writes_the_pages_and_check_names_a_stale_one(
    tmp_path: Path, pages: dict[str, str]
) -> None:
    written = run_fidelio("docs", "reference", "--dir", str(tmp_path))
    assert written.returncode == 0, written.stderr
    assert {p.name: p.read_text(encoding="utf-8") for p in tmp_path.iterdir()} == pages
    assert run_fidelio("docs", "reference", "--dir", str(tmp_path), "--check").returncode == 0

    (tmp_path / "command-line.md").write_text("old\n", encoding="utf-8")
    checked = run_fidelio("docs", "reference", "--dir", str(tmp_path), "--check")
    assert checked.returncode == 1
    assert "command-line.md" in checked.stderr and "make docs" in checked.stderr
    assert "configuration.md" not in checked.stderr
    assert (tmp_path / "command-line.md").read_text(encoding="utf-8") == "old\n"


def test_config_reference_writes_the_configuration_page(
    tmp_path: Path, pages: dict[str, str]
) -> None:
    output = tmp_path / "configuration.md"
    done = run_fidelio("config", "reference", "--output", str(output))
    assert done.returncode == 0, done.stderr
    assert output.read_text(encoding="utf-8") == pages[CONFIGURATION]
    assert run_fidelio("config", "reference", "-o", str(output), "--check").returncode == 0
