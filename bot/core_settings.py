"""The sections of config.yaml that belong to no single feature: the organisation, the
database, the channels, delivery, anonymity, security and logging.

Each key carries its description (``Field(description=...)``) and each section its docstring:
``fidelio docs reference`` turns them into docs/configuration.md, so what is written here is
what operators read. Feature sections live in their packages (``bot/<feature>/settings.py``).
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator

from bot.settings_section import Section

#: The placeholder shipped in config.yaml; fine for the console, refused for real chat platforms.
DEFAULT_SECRET_KEY = "change-me-in-production"
#: Shortest key accepted with Telegram or Slack: 256 bits, the size of the HMAC-SHA256 key.
MIN_SECRET_KEY_BYTES = 32


def check_timezone(value: str) -> str:
    """Return ``value`` if it is an IANA time zone name, else raise ValueError."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name such as Europe/Rome)"
        ) from None
    return value


class OrganisationSettings(Section):
    """Who Fidelio speaks for, and the language and time zone of people who have none."""

    name: str = Field(
        default="Demo organisation",
        description="Shown in welcome and onboarding messages.",
    )
    default_locale: Literal["en", "it"] = Field(
        default="en",
        description="Language for people whose directory row has no locale, and for people "
        "Fidelio does not know yet (unless their Telegram app language is `en` or `it`).",
    )
    default_timezone: str = Field(
        default="Europe/Rome",
        description="IANA time zone for people whose row has none.",
    )

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_timezone(value)


class DatabaseSettings(Section):
    """Where Fidelio keeps its data: a SQLite file or a PostgreSQL database."""

    url: str = Field(
        default="sqlite+aiosqlite:///var/fidelio.db",
        description="`sqlite+aiosqlite:///path` or `postgresql+asyncpg://user:pass@host:5432/db`; "
        "only these two async drivers are accepted. A relative SQLite path in the file is "
        "relative to the file's folder, and the folder is created when needed.",
    )
    echo: bool = Field(default=False, description="Log every SQL statement.")

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
    """The terminal chat opened by ``fidelio run``."""

    enabled: bool = Field(
        default=True, description="Open the terminal chat when `fidelio run` starts."
    )
    as_email: str | None = Field(
        default=None,
        description="Who the terminal chats as in `fidelio run` (`--as` overrides it). Empty: "
        "the first HR person, else the first admin, of the directory.",
    )


class TelegramSettings(Section):
    """The Telegram channel. When enabled it needs `token`; in webhook mode also
    `webhook_url` and `webhook_secret` (1 to 256 characters of `A-Z a-z 0-9 _ -`)."""

    enabled: bool = Field(default=False, description="Run the Telegram channel.")
    token: SecretStr | None = Field(
        default=None, description="Bot token from @BotFather. Required when enabled."
    )
    base_url: str = Field(
        default="https://api.telegram.org/bot",
        description="Bot API root; requests go to `{base_url}{token}/{method}`.",
    )
    base_file_url: str = Field(
        default="https://api.telegram.org/file/bot", description="File download root."
    )
    bot_username: str | None = Field(
        default=None,
        description="Used in invite links (`https://t.me/<bot_username>?start=<code>`); when "
        "empty it is asked from Telegram (`getMe`).",
    )
    mode: Literal["polling", "webhook"] = Field(
        default="polling", description="How updates arrive: long polling or a webhook."
    )
    webhook_url: str | None = Field(
        default=None,
        description="Public HTTPS URL registered with Telegram. Required in webhook mode.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Expected in the `X-Telegram-Bot-Api-Secret-Token` header. Required in "
        "webhook mode.",
    )
    webhook_listen: str = Field(
        default="127.0.0.1", description="Address the webhook endpoint listens on."
    )
    webhook_port: int = Field(
        default=8443, ge=0, le=65535, description="Port of the webhook endpoint."
    )
    webhook_path: str = Field(
        default="/telegram/webhook", description="Path of the webhook endpoint."
    )
    poll_timeout_s: int = Field(
        default=10, ge=0, le=50, description="Long-polling timeout of `getUpdates`, in seconds."
    )
    request_timeout_s: float = Field(
        default=10.0, gt=0, description="Timeout of each API request, in seconds."
    )
    # A role changed by `fidelio people import` shows in the menu within this time.
    menu_refresh_s: float = Field(
        default=60.0,
        gt=0,
        description="How often the command menus of managers, HR and admins are compared with "
        "the directory, in seconds.",
    )


class SlackSettings(Section):
    """The Slack channel. When enabled it needs `bot_token`; Socket Mode also needs
    `app_token`, HTTP mode `signing_secret`."""

    enabled: bool = Field(default=False, description="Run the Slack channel.")
    bot_token: SecretStr | None = Field(
        default=None,
        description="Bot User OAuth Token, `xoxb-...`. Required when enabled.",
    )
    app_token: SecretStr | None = Field(
        default=None,
        description="App-level token, `xapp-...`, scope `connections:write`. Required in "
        "Socket Mode.",
    )
    signing_secret: SecretStr | None = Field(
        default=None, description="Verifies incoming requests. Required in HTTP mode."
    )
    base_url: str = Field(
        default="https://slack.com/api/",
        description="Web API root (a trailing `/` is added if missing).",
    )
    mode: Literal["socket", "http"] = Field(
        default="socket", description="Socket Mode, or HTTP requests from Slack."
    )
    http_listen: str = Field(default="127.0.0.1", description="HTTP mode: address to listen on.")
    http_port: int = Field(default=3000, ge=0, le=65535, description="HTTP mode: port.")
    http_path: str = Field(
        default="/slack/events",
        description="HTTP mode: path for events, interactivity and the slash command.",
    )
    command: str = Field(
        default="/fidelio", description="The slash command, as named in the Slack app."
    )
    request_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Timeout of each Web API request, in seconds (rounded down to whole "
        "seconds, at least 1).",
    )

    @field_validator("base_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"


class InviteSettings(Section):
    """Telegram invite links (`fidelio people invite`)."""

    ttl_hours: int = Field(
        default=168, ge=1, le=24 * 90, description="Lifetime of a Telegram invite link, in hours."
    )


class SchedulerSettings(Section):
    """When scheduled work runs, and how a second instance takes over."""

    # APScheduler's own 1 s default would drop every job missed during a restart.
    misfire_grace_s: int = Field(
        default=6 * 3600,
        ge=1,
        description="How late a scheduled job may still run after downtime, in seconds "
        "(APScheduler's own default of 1 s would drop it).",
    )
    outbox_poll_s: float = Field(
        default=2.0, gt=0, description="Pause between outbox polls when nothing is due, in seconds."
    )
    sweep_s: float = Field(
        default=30.0,
        gt=0,
        description="Interval of the periodic sweeps that work out due work: for briefings, "
        "people who joined an audience, campaigns scheduled while Fidelio runs, wake-ups missed "
        "during downtime; for pulse surveys, every opening, reminder and closing (so a round "
        "opens within this many seconds of its time).",
    )
    failover_s: float = Field(
        default=15.0,
        gt=0,
        description="Several instances on one PostgreSQL: when the active instance dies or "
        "loses its database connection, another one runs the scheduled work within this many "
        "seconds (see [Several instances](administration.md#several-instances)). The lock is checked "
        "and retried every `failover_s / 8` seconds, so a small value costs a few more queries.",
    )


class OutboxSettings(Section):
    """Retries of outgoing messages (see [Delivery guarantees](delivery.md))."""

    max_attempts: int = Field(
        default=8,
        ge=1,
        description="Sends that fail with a server or connection error are tried at most this "
        "many times, then marked `failed`.",
    )
    backoff_base_s: float = Field(
        default=2.0,
        gt=0,
        description="First retry delay, in seconds; it doubles with each attempt.",
    )
    backoff_max_s: float = Field(
        default=600.0, gt=0, description="Upper bound of the retry delay, in seconds."
    )
    batch_size: int = Field(default=50, ge=1, description="Deliveries claimed per outbox round.")
    # At-least-once: a send that timed out may have gone out, so resending is a choice.
    retry_unknown: int = Field(
        default=1,
        ge=0,
        description="Retries of a send whose outcome is unknown (a timeout); 0 means never resend.",
    )


class RateSettings(Section):
    """Our own pacing, kept just under the platforms' published limits."""

    telegram_global_per_s: float = Field(
        default=28.0,
        gt=0,
        description="Messages per second across all Telegram chats (Telegram allows about 30).",
    )
    telegram_per_chat_per_s: float = Field(
        default=0.9,
        gt=0,
        description="Messages per second within one Telegram chat (Telegram allows about 1; "
        "the margin absorbs the jitter of requests on their way, which could bring two sends "
        "paced a second apart closer together when they arrive).",
    )
    slack_global_per_s: float = Field(
        default=40.0, gt=0, description="Messages per second across all Slack channels."
    )
    slack_per_channel_per_s: float = Field(
        default=1.0, gt=0, description="Messages per second within one Slack channel."
    )
    reply_reserve_share: float = Field(
        default=0.25,
        ge=0,
        lt=1,
        description="While people are tapping (a reply in the last 5 s), broadcasts leave this "
        "share of the global pace to replies; replies always go before waiting broadcast cards.",
    )
    slack_views_per_min: int = Field(
        default=90,
        ge=1,
        description="Home tabs published per minute across the Slack workspace (Slack allows "
        "`views.publish` about 100 times a minute, its Tier 4).",
    )


class AnonymitySettings(Section):
    """How small a group reported figures may describe. `comment_min_group` must be at least
    `min_group`: free text identifies more easily than a number."""

    min_group: int = Field(
        default=5,
        ge=3,
        description="Smallest group any reported figure may describe (see "
        "[Response rates](measurement.md#response-rates)).",
    )
    comment_min_group: int = Field(
        default=10,
        ge=3,
        description="Smallest group for which free-text comments may be shown "
        "(`fidelio report comments`).",
    )
    # A snapshot, not live counts, so nobody can time a known person's answer
    # (MEASUREMENT.md, rule 5).
    live_rates_refresh_s: int = Field(
        default=3600,
        ge=60,
        description="While a round is open, its response rates come from a stored snapshot "
        "refreshed at most this often, in seconds, with started and finished counts rounded "
        "down to a multiple of 5.",
    )

    @model_validator(mode="after")
    def _comments_need_more(self) -> AnonymitySettings:
        # Free text identifies more easily than a number: never a smaller group than k.
        if self.comment_min_group < self.min_group:
            raise ValueError("comment_min_group must be at least min_group")
        return self


class SecuritySettings(Section):
    """The key that protects buttons and anonymous suggestion tokens. With Telegram or Slack
    enabled it must not be the shipped placeholder and must be at least 32 bytes long (checked
    by `fidelio run` and `fidelio config check`); with the console alone a weak key is only
    warned about."""

    secret_key: SecretStr = Field(
        default=SecretStr(DEFAULT_SECRET_KEY),
        description="Signs button payloads, so edited, replayed or invented button data is "
        "refused, and seals anonymous suggestion tokens. Changing it invalidates buttons "
        "already sent and tokens already issued. Generate one with "
        '`python -c "import secrets; print(secrets.token_urlsafe(48))"`.',
    )


class LoggingSettings(Section):
    """Log lines, on standard error (their format is `operations.log_format`)."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="The least severe level logged."
    )
