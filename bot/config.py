"""Typed, frozen settings loaded once from config.yaml.

Secrets never live in the file: it refers to the environment with ``${VAR}`` (required) or
``${VAR:-default}`` (optional). Any environment variable ``FIDELIO_<SECTION>__<KEY>`` overrides
the file as well (for example ``FIDELIO_DATABASE__URL``). Every problem is reported as a
:class:`ConfigError` naming the key and the reason, so ``fidelio config check`` can print it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from bot.core_settings import (
    DEFAULT_SECRET_KEY,
    MIN_SECRET_KEY_BYTES,
    AnonymitySettings,
    ConsoleSettings,
    DatabaseSettings,
    InviteSettings,
    LoggingSettings,
    OrganisationSettings,
    OutboxSettings,
    RateSettings,
    SchedulerSettings,
    SecuritySettings,
    SlackSettings,
    TelegramSettings,
)
from bot.core_settings import check_timezone as check_timezone
from bot.home.settings import HomeSettings
from bot.loyalty.settings import LoyaltySettings, ObjectiveSettings
from bot.operations.settings import OperationsSettings, PrivacySettings
from bot.suggestions.settings import SuggestionSettings
from bot.web.settings import WebSettings

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def env_references(text: str) -> list[str]:
    """The environment variables a configuration value refers to (``${VAR}``,
    ``${VAR:-default}``), in order."""
    return [match.group(1) for match in _ENV_REF.finditer(text)]


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` lists ``(key, reason)`` pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {key}: {reason}" for key, reason in problems)
        super().__init__(f"{source}: invalid configuration\n{lines}")


class Settings(BaseSettings):
    """Every setting Fidelio reads; built once by :func:`load_settings` and passed around."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        env_prefix="FIDELIO_",
        env_nested_delimiter="__",
    )

    organisation: OrganisationSettings = OrganisationSettings()
    database: DatabaseSettings = DatabaseSettings()
    content_dir: Path = Field(
        default=Path("content"),
        description="Templates (`templates/<locale>/`), briefing files (`briefings/*.md`), the "
        "pulse item bank and survey definitions (`surveys/*.yaml`) and demo data "
        "(`demo/people.csv`). The folder must contain `templates/`; otherwise the configuration "
        "is refused. A relative path in the file is relative to the file's folder.",
    )
    console: ConsoleSettings = ConsoleSettings()
    telegram: TelegramSettings = TelegramSettings()
    slack: SlackSettings = SlackSettings()
    invites: InviteSettings = InviteSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    outbox: OutboxSettings = OutboxSettings()
    rates: RateSettings = RateSettings()
    anonymity: AnonymitySettings = AnonymitySettings()
    security: SecuritySettings = SecuritySettings()
    logging: LoggingSettings = LoggingSettings()
    # The sections of features (each defined in its feature package).
    objective: ObjectiveSettings = ObjectiveSettings()
    suggestions: SuggestionSettings = SuggestionSettings()
    loyalty: LoyaltySettings = LoyaltySettings()
    home: HomeSettings = HomeSettings()
    # Reliability, security and privacy
    operations: OperationsSettings = OperationsSettings()
    privacy: PrivacySettings = PrivacySettings()
    # The web console for HR and managers
    web: WebSettings = WebSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file, so an operator can override one key without
        # editing config.yaml.
        loading = _loading.get()
        if loading is None:
            # Built directly (tests, benchmarks): keyword arguments under the process environment.
            return (env_settings, init_settings)
        return (
            GivenEnvSource(settings_cls, loading.env),
            init_settings,
            ConfigFileSource(settings_cls, loading.path, loading.env),
        )


def secret_key_weakness(settings: Settings) -> str | None:
    """Why ``security.secret_key`` is unfit to protect a real chat platform, or None.

    The key is unfit when it is the shipped default or shorter than
    :data:`MIN_SECRET_KEY_BYTES` bytes (UTF-8). Which channels are enabled does not matter
    here; :func:`secret_key_problem` decides whether that refuses the start.
    """
    key = settings.security.secret_key.get_secret_value()
    if key == DEFAULT_SECRET_KEY:
        return "security.secret_key is the default value"
    size = len(key.encode("utf-8"))
    if size < MIN_SECRET_KEY_BYTES:
        return f"security.secret_key is {size} bytes long, fewer than {MIN_SECRET_KEY_BYTES}"
    return None


def secret_key_problem(settings: Settings) -> str | None:
    """The one-line reason ``fidelio run`` and ``fidelio config check`` refuse to start, or None.

    Telegram and Slack buttons are signed with ``security.secret_key``, and anonymous
    suggestion tokens are sealed with a key derived from it: with a guessable key anyone could
    forge button presses or open those tokens. So a weak key (see :func:`secret_key_weakness`)
    is refused whenever Telegram or Slack is enabled, and so is a web console other machines
    can reach (its forms' CSRF tokens are derived from the key too). The console alone, with
    the web console on this machine's loopback address, reaches nobody outside the machine, so
    there a weak key is only worth a warning and ``make run`` keeps working on a fresh clone.
    """
    weakness = secret_key_weakness(settings)
    exposed = settings.telegram.enabled or settings.slack.enabled or settings.web.reachable
    if weakness is None or not exposed:
        return None
    return (
        f"{weakness}, which is refused while Telegram, Slack or a web console reachable from "
        "other machines is enabled: set FIDELIO_SECRET_KEY "
        "(read by the shipped config.yaml; FIDELIO_SECURITY__SECRET_KEY overrides any file) to a "
        f"random value of at least {MIN_SECRET_KEY_BYTES} bytes, for example the output of "
        'python -c "import secrets; print(secrets.token_urlsafe(48))"'
    )


def substitute_env(
    node: Any, env: dict[str, str], path: str = ""
) -> tuple[Any, list[tuple[str, str]]]:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string of a parsed YAML tree."""
    problems: list[tuple[str, str]] = []
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            sub, found = substitute_env(value, env, f"{path}.{key}" if path else str(key))
            out[key] = sub
            problems.extend(found)
        return out, problems
    if isinstance(node, list):
        items = []
        for index, value in enumerate(node):
            sub, found = substitute_env(value, env, f"{path}[{index}]")
            items.append(sub)
            problems.extend(found)
        return items, problems
    if isinstance(node, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env and env[name] != "":
                return env[name]
            if default is not None:
                return default
            problems.append((path, f"environment variable {name} is not set"))
            return ""

        replaced = _ENV_REF.sub(replace, node)
        # A value that was only an empty optional reference means "not configured".
        if replaced == "" and _ENV_REF.fullmatch(node):
            return None, problems
        return replaced, problems
    return node, problems


def _format_location(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts[-1:] = [f"{parts[-1]}[{item}]"] if parts else [f"[{item}]"]
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


@dataclass(frozen=True)
class _Loading:
    path: Path
    env: Mapping[str, str]


#: What :func:`load_settings` is reading right now: the file and the environment it was given.
#: Unset, :class:`Settings` reads its keyword arguments and the process environment.
_loading: ContextVar[_Loading | None] = ContextVar("fidelio_settings_loading", default=None)


class ConfigFileSource(InitSettingsSource):
    """The YAML configuration file, with ``${VAR}`` / ``${VAR:-default}`` taken from ``env``.

    Relative paths inside the file (``content_dir``, SQLite database files) are resolved
    against the file's folder. A file that cannot be read, is not YAML, or refers to a required
    variable that is not set raises :class:`ConfigError` naming the file and the key.
    """

    def __init__(
        self, settings_cls: type[BaseSettings], path: Path, env: Mapping[str, str]
    ) -> None:
        self.path = path
        super().__init__(settings_cls, read_config_file(path, env))


class GivenEnvSource(EnvSettingsSource):
    """``FIDELIO_<SECTION>__<KEY>`` overrides read from a given mapping instead of os.environ.

    Prefix, nested delimiter and parsing are those of :class:`EnvSettingsSource` (taken from the
    settings' ``model_config``); only where the variables come from differs.
    """

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env_vars = parse_env_vars(
            env, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )


def read_config_file(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """The file's sections after ``${VAR}`` substitution, relative paths made absolute."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(source, [("(file)", "file not found")]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [("(file)", f"not UTF-8 text ({exc.reason})")]) from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(source, [(where, f"YAML syntax error: {reason}")]) from None
    if not isinstance(raw, dict):
        raise ConfigError(source, [("(top level)", "must be a mapping of sections")])

    data, problems = substitute_env(raw, dict(env))
    if problems:
        raise ConfigError(source, problems)

    base = path.resolve().parent
    data.setdefault("content_dir", "content")
    if isinstance(data.get("content_dir"), str):
        data["content_dir"] = str((base / data["content_dir"]).resolve())
    database = data.get("database")
    if isinstance(database, dict) and isinstance(database.get("url"), str):
        database["url"] = _resolve_sqlite_path(database["url"], base)
    elif database is None:
        data["database"] = {"url": _resolve_sqlite_path(DatabaseSettings().url, base)}
    return data


def load_settings(path: str | Path | None = None, env: dict[str, str] | None = None) -> Settings:
    """Load, substitute and validate the configuration file.

    ``env`` (the process environment when None) supplies both the ``${VAR}`` references of the
    file and the ``FIDELIO_<SECTION>__<KEY>`` overrides; the process environment is only read,
    never changed. Relative paths inside the file (``content_dir``, SQLite database files) are
    resolved against the file's folder, so Fidelio behaves the same whatever the working
    directory.
    """
    env = dict(os.environ if env is None else env)
    config_path = Path(path or env.get("FIDELIO_CONFIG") or "config.yaml")
    source = str(config_path)
    token = _loading.set(_Loading(config_path, env))
    try:
        settings = Settings()
    except ValidationError as exc:
        raise ConfigError(
            source,
            [(_format_location(err["loc"]), _reason(err)) for err in exc.errors()],
        ) from None
    finally:
        _loading.reset(token)
    return _check_channels(settings, source)


def _reason(err: Any) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key (check the spelling; see docs/configuration.md)"
    if err["type"] == "missing":
        return "required"
    message = str(err["msg"])
    return message.removeprefix("Value error, ")


def _resolve_sqlite_path(url: str, base: Path) -> str:
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix):
        file_part = url[len(prefix) :]
        if file_part and file_part != ":memory:" and not file_part.startswith("/"):
            return prefix + str((base / file_part).resolve())
    return url


def _check_channels(settings: Settings, source: str) -> Settings:
    """Cross-field rules: an enabled channel needs its secrets and mode-specific keys."""
    problems: list[tuple[str, str]] = []
    tg = settings.telegram
    if tg.enabled:
        if tg.token is None or not tg.token.get_secret_value():
            problems.append(("telegram.token", "required when telegram.enabled is true"))
        if tg.mode == "webhook":
            if not tg.webhook_url:
                problems.append(("telegram.webhook_url", "required in webhook mode"))
            if tg.webhook_secret is None:
                problems.append(("telegram.webhook_secret", "required in webhook mode"))
            elif not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", tg.webhook_secret.get_secret_value()):
                problems.append(
                    ("telegram.webhook_secret", "1-256 characters of A-Z, a-z, 0-9, _ and -")
                )
    sl = settings.slack
    if sl.enabled:
        if sl.bot_token is None:
            problems.append(("slack.bot_token", "required when slack.enabled is true"))
        if sl.mode == "socket" and sl.app_token is None:
            problems.append(("slack.app_token", "required in socket mode (an xapp- token)"))
        if sl.mode == "http" and sl.signing_secret is None:
            problems.append(("slack.signing_secret", "required in http mode"))
    if not (settings.content_dir / "templates").is_dir():
        problems.append(
            ("content_dir", f"{settings.content_dir} has no templates/ folder (is the path right?)")
        )
    if not (settings.console.enabled or tg.enabled or sl.enabled):
        problems.append(("(channels)", "enable at least one of console, telegram, slack"))
    if problems:
        raise ConfigError(source, problems)
    return settings
