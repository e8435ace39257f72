"""A fake Slack platform for tests.

Two halves, both served by one aiohttp server bound to ``127.0.0.1`` on an ephemeral port:

* **Web API** (``FakeSlackServer.base_url``): the subset of ``https://slack.com/api/`` Fidelio uses,
  speaking the same wire format as the real thing so the *real* ``slack_sdk.AsyncWebClient`` can be
  pointed at it.  Tokens go in ``Authorization: Bearer``; params may arrive as query string,
  form, multipart or JSON (slack_sdk mixes all of them).  Errors are HTTP 200
  ``{"ok": false, "error": ...}`` as Slack does, except rate limiting (HTTP 429 + ``Retry-After``)
  and injected 5xx faults.
* **Driver** (``send_dm``, ``slash_command``, ``press``, ``submit_view`` ...): plays Slack
  *towards* the app, either as signed HTTP requests to the app's Request URL or, when a Socket
  Mode client is connected (``apps.connections.open`` → ``ws://127.0.0.1:PORT/socket``), as
  envelopes over the websocket, waiting for the ``{"envelope_id": ...}`` ack.

Everything runs on the test's event loop; no locks are needed because handlers never await in the
middle of mutating state.

Layout of this package:

* :mod:`.server`: :class:`FakeSlackServer`, its state and lifecycle;
* :mod:`.api`: the Web API methods, the upload URL and ``response_url`` endpoints;
* :mod:`.history`: ``conversations.history``, with message metadata;
* :mod:`.home`: the App Home tab (``views.publish``, ``app_home_opened``, its buttons);
* :mod:`.driver`: what tests call to act as workspace members and to read what the app posted;
* :mod:`.delivery`: Socket Mode and signed-HTTP delivery of events and interactions;
* :mod:`.limits`: rate limits, message size and Block Kit checks;
* :mod:`.faults`: injected failures;
* :mod:`.records`: records and helpers shared by the above.
"""

from .faults import FAULTS
from .records import UPLOAD_METHOD, PostedMessage, RecordedCall, SlackUser
from .server import FakeSlackServer

__all__ = [
    "FAULTS",
    "UPLOAD_METHOD",
    "FakeSlackServer",
    "PostedMessage",
    "RecordedCall",
    "SlackUser",
]
