"""The ``web`` section of config.yaml: where the web console listens and how long sign-ins last."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from bot.settings_section import Section


class WebSettings(Section):
    """The web console. Off unless enabled; config.yaml ships it on, on 127.0.0.1."""

    enabled: bool = Field(
        default=False,
        description="Serve the web console with `fidelio run` (docs/hr-guide.md, The web console).",
    )
    listen: str = Field(
        default="127.0.0.1",
        description="Address to listen on; `0.0.0.0` serves other machines too.",
    )
    port: int = Field(
        default=8080,
        ge=0,
        le=65535,
        description="Port; `0` lets the system choose one (then `web.public_url` is required).",
    )
    public_url: str | None = Field(
        default=None,
        description="The address people open, as links from chat name it "
        "(`https://fidelio.example.com` behind a reverse proxy); empty: "
        "`http://<listen>:<port>`. With https, cookies are marked Secure.",
    )
    link_ttl_minutes: int = Field(
        default=10, ge=1, le=60, description="How long a sign-in link works (once)."
    )
    idle_minutes: int = Field(
        default=30,
        ge=1,
        le=24 * 60,
        description="A session ends after this long without a request.",
    )
    session_hours: int = Field(
        default=12,
        ge=1,
        le=7 * 24,
        description="A session ends this long after signing in, however active.",
    )
    retention_days: int = Field(
        default=30,
        ge=1,
        description="Used or expired links and ended sessions are deleted after this many "
        "days (the audit log keeps who signed in when).",
    )

    @field_validator("public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        # Links in chat messages are written as [label](url): these would cut them short.
        if any(ch.isspace() or ch in '()<>"' for ch in value):
            raise ValueError("must not contain spaces, quotes, parentheses or angle brackets")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _port_zero_needs_url(self) -> WebSettings:
        # Links from chat must name an address that works; a port chosen at start-up cannot.
        if self.enabled and self.port == 0 and self.public_url is None:
            raise ValueError("web.public_url is required when web.port is 0")
        return self

    @property
    def base_url(self) -> str:
        """The address the pages are reached at, without a trailing slash."""
        if self.public_url:
            return self.public_url
        host = f"[{self.listen}]" if ":" in self.listen else self.listen
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"  # all interfaces: this machine's own address reaches them
        return f"http://{host}:{self.port}"

    @property
    def reachable(self) -> bool:
        """Served to other machines: on, and on a public address or beyond loopback."""
        loopback = self.listen in ("127.0.0.1", "::1", "localhost")
        return self.enabled and (self.public_url is not None or not loopback)

    @property
    def secure(self) -> bool:
        """Cookies only over https: true when the public address is https."""
        return (self.public_url or "").startswith("https://")
