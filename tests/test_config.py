"""Configuration: substitution, typed validation, errors that name the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings

from .harness import REPO


def write(tmp_path: Path, text: str) -> Path:
    if not (tmp_path / "content").exists():
        (tmp_path / "content").symlink_to(REPO / "content")
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_runs_without_secrets() -> None:
    settings = load_settings(REPO / "config.yaml", env={})
    assert settings.console.enabled
    assert not settings.telegram.enabled and not settings.slack.enabled
    assert settings.database.url == f"sqlite+aiosqlite:///{REPO / 'var' / 'fidelio.db'}"
    assert settings.content_dir == REPO / "content"
    assert settings.telegram.token is None


def test_env_substitution_with_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "telegram:\n  enabled: ${TG_ON:-false}\n  token: ${TG_TOKEN}\n"
        "  base_url: ${TG_URL:-http://127.0.0.1:9/bot}\n",
    )
    settings = load_settings(path, env={"TG_ON": "true", "TG_TOKEN": "123:abc"})
    assert settings.telegram.enabled
    assert settings.telegram.token is not None
    assert settings.telegram.token.get_secret_value() == "123:abc"
    assert settings.telegram.base_url == "http://127.0.0.1:9/bot"


def test_missing_required_variable_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "slack:\n  bot_token: ${SLACK_BOT_TOKEN}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert (
        "slack.bot_token",
        "environment variable SLACK_BOT_TOKEN is not set",
    ) in caught.value.problems


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("anonymity:\n  min_group: 2\n", "anonymity.min_group", "greater than or equal to 3"),
        ("telegram:\n  tokken: x\n", "telegram.tokken", "unknown key"),
        (
            "organisation:\n  default_timezone: Mars/Base\n",
            "organisation.default_timezone",
            "unknown time zone",
        ),
        ("organisation:\n  default_locale: fr\n", "organisation.default_locale", "'en' or 'it'"),
        ("database:\n  url: mysql://x\n", "database.url", "async drivers only"),
        ("telegram:\n  enabled: true\n", "telegram.token", "required when telegram.enabled"),
        (
            "telegram:\n  enabled: true\n  token: t\n  mode: webhook\n",
            "telegram.webhook_url",
            "required in webhook mode",
        ),
        ("slack:\n  enabled: true\n  bot_token: x\n", "slack.app_token", "socket mode"),
        (
            "slack:\n  enabled: true\n  bot_token: x\n  mode: http\n",
            "slack.signing_secret",
            "http mode",
        ),
        ("console:\n  enabled: false\n", "(channels)", "enable at least one"),
        (
            "rates:\n  telegram_per_chat_per_s: 0\n",
            "rates.telegram_per_chat_per_s",
            "greater than 0",
        ),
    ],
)
def test_bad_values_name_key_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), env={})
    problems = dict(caught.value.problems)
    assert key in problems, caught.value.problems
    assert reason in problems[key]
    assert str(tmp_path / "config.yaml") in str(caught.value)


def test_yaml_syntax_error_gives_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "telegram:\n  enabled: [true\n"), env={})
    where, reason = caught.value.problems[0]
    assert where.startswith("line ")
    assert "YAML syntax error" in reason


def test_content_dir_must_hold_templates(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "content_dir: elsewhere\n"), env={})
    assert "content_dir" in dict(caught.value.problems)
    assert "no templates/ folder" in dict(caught.value.problems)["content_dir"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "nope.yaml", env={})
    assert caught.value.problems == [("(file)", "file not found")]


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "anonymity:\n  min_group: 5\n")
    settings = load_settings(path, env={"FIDELIO_ANONYMITY__MIN_GROUP": "7"})
    assert settings.anonymity.min_group == 7


def test_settings_are_frozen() -> None:
    settings = load_settings(REPO / "config.yaml", env={})
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="frozen"):
        settings.console.enabled = False  # type: ignore[misc]


def test_unknown_section_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, "telegramm:\n  enabled: true\n"), env={})
    assert "unknown key" in dict(caught.value.problems)["telegramm"]


def test_bad_environment_override_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "anonymity:\n  min_group: 5\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={"FIDELIO_ANONYMITY__MIN_GROUP": "2"})
    assert "greater than or equal to 3" in dict(caught.value.problems)["anonymity.min_group"]
    assert str(path) in str(caught.value)


def test_given_environment_is_the_only_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``env`` given, the process environment neither overrides nor gets changed."""
    monkeypatch.setenv("FIDELIO_ANONYMITY__MIN_GROUP", "9")
    monkeypatch.setenv("FIDELIO_LOGGING__LEVEL", "DEBUG")
    before = dict(os.environ)
    path = write(tmp_path, "anonymity:\n  min_group: 5\n")
    assert load_settings(path, env={}).anonymity.min_group == 5
    assert load_settings(path, env={"FIDELIO_ANONYMITY__MIN_GROUP": "7"}).anonymity.min_group == 7
    assert dict(os.environ) == before


def test_process_environment_is_read_when_none_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "anonymity:\n  min_group: ${MIN_GROUP:-5}\n")
    monkeypatch.setenv("MIN_GROUP", "6")
    assert load_settings(path).anonymity.min_group == 6
    monkeypatch.setenv("FIDELIO_ANONYMITY__MIN_GROUP", "8")
    before = dict(os.environ)
    assert load_settings(path).anonymity.min_group == 8
    assert dict(os.environ) == before


def test_environment_override_merges_into_the_file_section(tmp_path: Path) -> None:
    path = write(tmp_path, "anonymity:\n  min_group: 5\n  comment_min_group: 12\n")
    settings = load_settings(path, env={"FIDELIO_ANONYMITY__MIN_GROUP": "7"})
    assert (settings.anonymity.min_group, settings.anonymity.comment_min_group) == (7, 12)
