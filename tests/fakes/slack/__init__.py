"""A fake Slack platform for tests (see :mod:`tests.fakes.slack.api`)."""

from .api import FAULTS, UPLOAD_METHOD, FakeSlackServer, PostedMessage, RecordedCall, SlackUser

__all__ = [
    "FAULTS",
    "UPLOAD_METHOD",
    "FakeSlackServer",
    "PostedMessage",
    "RecordedCall",
    "SlackUser",
]
