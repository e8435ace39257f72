"""A scheduled survey as its campaign stores it, the invitation to a round, and the keys that
make each invitation, reminder and respondent unique."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from bot.db.models import Campaign
from bot.pulse.content import Item, Survey
from bot.pulse.tables import SurveyRound
from bot.replies import Reply, ReplyButton


def respondent_key(secret: bytes, person_id: int) -> str:
    """The pseudonym of a person's answers in one open round (its secret dies at close)."""
    return hmac.new(secret, str(person_id).encode(), hashlib.sha256).hexdigest()


def invite_key(round_id: int, person_id: int) -> str:
    """The delivery key of one invitation: the outbox sends it once."""
    return f"pulse:{round_id}:invite:{person_id}"


def reminder_key(round_id: int, index: int, person_id: int) -> str:
    """The delivery key of one reminder."""
    return f"pulse:{round_id}:reminder:{index}:{person_id}"


@dataclass(frozen=True)
class Schedule:
    """A scheduled survey as stored in its campaign's snapshot."""

    campaign: Campaign
    survey: Survey
    items: dict[str, Item]

    @classmethod
    def of(cls, campaign: Campaign) -> Schedule:
        snapshot = campaign.snapshot
        items = {key: Item(**value) for key, value in snapshot["items"].items()}
        return cls(campaign, Survey.from_json(snapshot["survey"]), items)


def invitation(round_: SurveyRound, schedule: Schedule, *, reminder: bool = False) -> Reply:
    """The message that invites a person to a round (or reminds them), with its Start button."""
    return Reply(
        "pulse/reminder" if reminder else "pulse/invitation",
        {
            "title": schedule.survey.title,
            "questions": len(round_.items),
            "closes_at": round_.closes_at.isoformat(),
        },
        (ReplyButton("pulse_start", "pulse_start", str(round_.id)),),
    )
