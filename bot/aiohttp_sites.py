"""The port an aiohttp server really listens on.

Fidelio's own HTTP endpoints (the Telegram webhook, Slack's HTTP mode, ``/healthz`` and
``/metrics``) may be configured with port 0, which lets the system pick a free port; the port
actually bound is then what gets logged and reported. aiohttp's public ``BaseRunner.addresses``
lists the socket addresses every started site of a runner is bound to, so the private
``TCPSite._server`` that used to be read for this is not needed. ``tests/test_library_internals``
checks that the pinned aiohttp still reports a port chosen by the system there.
"""

from __future__ import annotations

from aiohttp import web


def bound_port(runner: web.BaseRunner, asked: int) -> int:
    """The TCP port the first started site of ``runner`` listens on; ``asked`` if none does."""
    for address in runner.addresses:
        # (host, port) for IPv4, (host, port, flowinfo, scope_id) for IPv6, a path for Unix.
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return asked
