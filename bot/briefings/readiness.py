"""Launch readiness per briefing and team.

Per team: audience, % reached (message confirmed sent), % acknowledged before launch, mean
quiz score, the most-missed question and who has not acknowledged yet. Briefings are not
anonymous, so names are allowed here (never for survey answers). The organisation total feeds
the loyalty measurement as "communication reach".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.briefings.content import Briefing
from bot.briefings.tables import BriefingReceipt
from bot.db.models import Campaign, Delivery, DeliveryStatus, Person, Role, Team
from bot.people import managed_team_ids


@dataclass
class TeamReadiness:
    team: str
    audience: int = 0
    reached: int = 0
    acknowledged_before_launch: int = 0
    acknowledged: int = 0
    quiz_done: int = 0
    score_sum_pct: float = 0.0
    missed: Counter[int] = field(default_factory=Counter)
    not_acknowledged: list[str] = field(default_factory=list)

    def pct(self, part: int) -> float | None:
        return round(100.0 * part / self.audience, 1) if self.audience else None

    @property
    def mean_score_pct(self) -> float | None:
        return round(self.score_sum_pct / self.quiz_done, 1) if self.quiz_done else None

    @property
    def most_missed(self) -> int | None:
        if not self.missed:
            return None
        index, count = self.missed.most_common(1)[0]
        return index if count else None

    def add(self, other: TeamReadiness) -> None:
        self.audience += other.audience
        self.reached += other.reached
        self.acknowledged_before_launch += other.acknowledged_before_launch
        self.acknowledged += other.acknowledged
        self.quiz_done += other.quiz_done
        self.score_sum_pct += other.score_sum_pct
        self.missed.update(other.missed)
        self.not_acknowledged.extend(other.not_acknowledged)

    def as_dict(self, briefing: Briefing, *, with_names: bool) -> dict[str, Any]:
        missed = self.most_missed
        return {
            "team": self.team,
            "audience": self.audience,
            "reached_pct": self.pct(self.reached),
            "ack_before_launch_pct": self.pct(self.acknowledged_before_launch),
            "ack_pct": self.pct(self.acknowledged),
            "quiz_done": self.quiz_done,
            "mean_score_pct": self.mean_score_pct,
            "most_missed": None if missed is None else missed + 1,
            "most_missed_text": None if missed is None else briefing.quiz[missed].question,
            "not_acknowledged": sorted(self.not_acknowledged) if with_names else [],
        }


@dataclass
class ReadinessReport:
    campaign_id: int
    rows: list[TeamReadiness]
    total: TeamReadiness

    def context(self, briefing: Briefing, *, with_names: bool) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "title": briefing.title,
            "launch_at": briefing.launch_at.isoformat(),
            "teams": [r.as_dict(briefing, with_names=with_names) for r in self.rows],
            "total": self.total.as_dict(briefing, with_names=False),
        }


async def visible_team_ids(session: AsyncSession, viewer: Person | None) -> set[int] | None:
    """None = all teams (HR, admin, CLI); managers see their team subtrees."""
    if viewer is None or viewer.role in (Role.hr, Role.admin):
        return None
    return await managed_team_ids(session, viewer)


async def team_readiness(
    session: AsyncSession, campaign: Campaign, briefing: Briefing, *, viewer: Person | None = None
) -> ReadinessReport:
    """Readiness of ``campaign`` per team, restricted to what ``viewer`` may see."""
    scope = await visible_team_ids(session, viewer)
    query = (
        select(BriefingReceipt, Person.name, Team.name)
        .join(Person, Person.id == BriefingReceipt.person_id)
        .join(Team, Team.id == BriefingReceipt.team_id)
        .where(BriefingReceipt.campaign_id == campaign.id)
    )
    if scope is not None:
        query = query.where(BriefingReceipt.team_id.in_(scope))
    rows = (await session.execute(query)).all()
    prefix = f"briefing:{campaign.id}:brief:"
    sent = {
        int(key.removeprefix(prefix))
        for key in await session.scalars(
            select(Delivery.key).where(
                Delivery.key.like(prefix + "%"), Delivery.status == DeliveryStatus.sent
            )
        )
    }
    teams: dict[str, TeamReadiness] = {}
    total_questions = len(briefing.quiz)
    for receipt, person_name, team_name in rows:
        row = teams.setdefault(team_name, TeamReadiness(team_name))
        row.audience += 1
        row.reached += int(receipt.person_id in sent)
        if receipt.acknowledged_at is not None:
            row.acknowledged += 1
            row.acknowledged_before_launch += int(receipt.acknowledged_at < briefing.launch_at)
        else:
            row.not_acknowledged.append(person_name)
        if receipt.quiz_completed_at is not None and total_questions:
            row.quiz_done += 1
            row.score_sum_pct += 100.0 * (receipt.quiz_score or 0) / total_questions
        for index_text, chosen in (receipt.quiz_answers or {}).items():
            index = int(index_text)
            if index < total_questions and chosen != briefing.quiz[index].correct:
                row.missed[index] += 1
    ordered = [teams[name] for name in sorted(teams)]
    total = TeamReadiness("total")
    for row in ordered:
        total.add(row)
    return ReadinessReport(campaign.id, ordered, total)
