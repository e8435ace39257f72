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
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from bot.loyalty.settings import LoyaltySettings, ObjectiveSettings
from bot.operations.settings import OperationsSettings, PrivacySettings
from bot.settings_section import Section
from bot.suggestions.settings import SuggestionSettings
from bot.web.settings import WebSettings

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` lists ``(key, reason)`` pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {key}: {reason}" for key, reason in problems)
        super().__init__(f"{source}: invalid configuration\n{lines}")


class OrganisationSettings(Section):
    name: str = "Demo organisation"
    default_locale: Literal["en", "it"] = "en"
    default_timezone: str = "Europe/Rome"

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_timezone(value)


class DatabaseSettings(Section):
    url: str = "sqlite+aiosqlite:///var/fidelio.db"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _supported_driver(cls, value: str) -> str:
        if not (
            value.startswith("sqlite+aiosqlite://") or value.startswith("postgresql+asyncpg://")
        ):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// (async drivers only)"
            )
        return value


class ConsoleSettings(Section):
    enabled: bool = True
    #: The person the terminal chats as when ``fidelio run`` opens the console.
    as_email: str | None = None


class TelegramSettings(Section):
    enabled: bool = False
    token: SecretStr | None = None
    #: Bot API root; the token is appended (``{base_url}{token}/{method}``).
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    #: Used to build ``https://t.me/<bot_username>?start=<code>`` invite links; asked from
    #: Telegram (getMe) when empty.
    bot_username: str | None = None
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=0, le=65535)
    webhook_path: str = "/telegram/webhook"
    poll_timeout_s: int = Field(default=10, ge=0, le=50)
    request_timeout_s: float = Field(default=10.0, gt=0)


class SlackSettings(Section):
    enabled: bool = False
    bot_token: SecretStr | None = None
    app_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    base_url: str = "https://slack.com/api/"
    mode: Literal["socket", "http"] = "socket"
    http_listen: str = "127.0.0.1"
    http_port: int = Field(default=3000, ge=0, le=65535)
    http_path: str = "/slack/events"
    command: str = "/fidelio"
    request_timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"


class InviteSettings(Section):
    ttl_hours: int = Field(default=168, ge=1, le=24 * 90)


class SchedulerSettings(Section):
    #: How late a job may still run after downtime; APScheduler's 1 s default drops them.
    misfire_grace_s: int = Field(default=6 * 3600, ge=1)
    outbox_poll_s: float = Field(default=2.0, gt=0)
    #: How often due campaign work is recomputed (late joiners, missed wake-ups).
    sweep_s: float = Field(default=30.0, gt=0)
    #: Several instances on one PostgreSQL: when the active one dies or loses its database
    #: connection, another runs the scheduled work within this many seconds. The lock is
    #: checked and retried every failover_s / 8, so a small value costs a few more queries.
    failover_s: float = Field(default=15.0, gt=0)


class OutboxSettings(Section):
    max_attempts: int = Field(default=8, ge=1)
    backoff_base_s: float = Field(default=2.0, gt=0)
    backoff_max_s: float = Field(default=600.0, gt=0)
    batch_size: int = Field(default=50, ge=1)
    #: At-least-once: a send whose outcome is unknown (timeout) is retried this many times.
    retry_unknown: int = Field(default=1, ge=0)


class RateSettings(Section):
    """Our own pacing, kept just under the platforms' published limits."""

    telegram_global_per_s: float = Field(default=28.0, gt=0)
    telegram_per_chat_per_s: float = Field(default=1.0, gt=0)
    slack_global_per_s: float = Field(default=40.0, gt=0)
    slack_per_channel_per_s: float = Field(default=1.0, gt=0)
    #: While people are tapping, broadcasts leave this share of the global pace to replies.
    reply_reserve_share: float = Field(default=0.25, ge=0, lt=1)


class AnonymitySettings(Section):
    min_group: int = Field(default=5, ge=3)
    comment_min_group: int = Field(default=10, ge=3)
    #: Live response rates of an open round come from a stored snapshot refreshed at most this
    #: often (MEASUREMENT.md, rule 5), so nobody can time a known person's answer.
    live_rates_refresh_s: int = Field(default=3600, ge=60)

    @model_validator(mode="after")
    def _comments_need_more(self) -> AnonymitySettings:
        # Free text identifies more easily than a number: never a smaller group than k.
        if self.comment_min_group < self.min_group:
            raise ValueError("comment_min_group must be at least min_group")
        return self


#: The placeholder shipped in config.yaml; fine for the console, refused for real chat platforms.
DEFAULT_SECRET_KEY = "change-me-in-production"
#: Shortest key accepted with Telegram or Slack: 256 bits, the size of the HMAC-SHA256 key.
MIN_SECRET_KEY_BYTES = 32


class SecuritySettings(Section):
    #: Signs button payloads so tampered callback data is refused.
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)


class LoggingSettings(Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


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
    content_dir: Path = Path("content")
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


def check_timezone(value: str) -> str:
    """Return ``value`` if it is an IANA time zone name, else raise ValueError."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name such as Europe/Rome)"
        ) from None
    return value


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
        return "unknown key (check the spelling; see README, 'Configuration')"
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
