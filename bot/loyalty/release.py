"""Closing a round for good: its release plan, its aggregates, and answers kept by plan atom.

At close (MEASUREMENT.md rules 4 and 6), in the closing transaction:

1. the per-team sums of the round's answers are computed once (bot.loyalty.metrics), and the
   release plan is decided from their counts (bot.loyalty.plan);
2. the plan is stored: its groups (``release_groups``) with the measures each may show and
   the plan atoms (``plan_atoms``) with every aggregate a figure needs, so a summary reads a
   few rows instead of scanning answers (closed rounds never change);
3. each answer moves to ``closed_responses`` with its plan atom only (no team, no pseudonym,
   set numbers drawn at random per atom, free text in an atom of its own); answers of people
   in no planned group (a round with fewer than k respondents) could never be reported and
   are not kept;
4. participation keeps only who was invited and whether they answered anything;
5. the open-round rows are deleted. After the transaction commits, their dead row versions
   are removed for good (bot.db.scrub), and ``scrubbed_at`` says so.

Rounds closed before plans existed are rewritten the same way by ``fidelio db upgrade``
(:func:`rewrite_closed_rounds`), one transaction per round.
"""

from __future__ import annotations

import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.db.models import Campaign, Team
from bot.db.scrub import scrub
from bot.db.session import Database
from bot.loyalty import metrics
from bot.loyalty.metrics import Atom, RoundItems, atom_from_json, atom_to_json
from bot.loyalty.plan import ORG, Plan, TreeShape, decide
from bot.loyalty.tables import ClosedResponse, PlanAtom, ReleaseGroup
from bot.pulse.content import Item
from bot.pulse.tables import Participation, Response, RoundStatus, SurveyRound

log = logging.getLogger(__name__)

RESPONDENTS = "respondents"
INDEX = "index"
ALPHA = "alpha"
SEGMENTS = "segments"
COMMENTS = "comments"

#: The tables that hold person-linked rows of open rounds: scrubbed after every close.
OPEN_ROUND_TABLES = ("responses", "participation", "conversation_states")


def item_measure(key: str) -> str:
    return f"item:{key}"


def round_items(round_: SurveyRound, campaign: Campaign) -> RoundItems:
    """What a round asked, from its schedule's snapshot, in the round's order."""
    known = {key: Item(**value) for key, value in campaign.snapshot["items"].items()}
    return RoundItems(round_.id, {key: known[key] for key in round_.items if key in known})


def measure_counts(atoms: dict[int, Atom], items: RoundItems) -> dict[str, dict[int, int]]:
    """People per team counted by each measure (what the plan keeps at 0 or >= k)."""
    counts: dict[str, dict[int, int]] = {
        INDEX: {t: a.people.index_n for t, a in atoms.items()},
        ALPHA: {t: a.people.complete_n for t, a in atoms.items()},
        SEGMENTS: {t: a.people.segment_n for t, a in atoms.items()},
    }
    for key, item in items.items.items():
        if item.kind in ("likert5", "scale0_10"):
            counts[item_measure(key)] = {
                t: (a.items[key].n if key in a.items else 0) for t, a in atoms.items()
            }
    return counts


async def close_round_storage(
    session: AsyncSession,
    settings: Settings,
    round_: SurveyRound,
    now: datetime,
    *,
    key_of: Callable[[int], str] | None = None,
) -> Plan:
    """Decide and store the plan of a round whose status is already ``closed``, and rewrite
    its storage (steps 1-5 above) in ``session``'s transaction.

    ``key_of(person_id)`` is a person's pseudonymous key (from the round's secret, read one
    last time before it is destroyed) and tells who answered anything; for rounds closed
    before plans existed it is None and "answered at least one question" is read from
    participation's progress instead.
    """
    campaign = await session.get(Campaign, round_.campaign_id)
    assert campaign is not None
    items = round_items(round_, campaign)
    cfg = settings.loyalty
    found = await metrics.fetch_atoms(
        session,
        [items],
        None,
        satisfaction_item=cfg.satisfaction_item,
        stay_item=cfg.stay_item,
        enps_item=cfg.enps_item,
        satisfied_from=cfg.satisfied_from,
        alpha_rounds=None,
    )
    per_team = {team: atom for (_rid, team), atom in found.items()}
    teams = (await session.execute(select(Team.id, Team.name, Team.parent_id))).all()
    shape = TreeShape({t.id: t.parent_id for t in teams})
    names = {t.id: t.name for t in teams}
    k = settings.anonymity.min_group
    comment_k = max(settings.anonymity.comment_min_group, k)
    respondents = {team: atom.people.respondents for team, atom in per_team.items()}
    plan = decide(shape, respondents, measure_counts(per_team, items), k)

    rows = (
        await session.execute(
            select(
                Response.respondent_key,
                Response.item_id,
                Response.team_id,
                Response.value_num,
                Response.value_text,
            ).where(Response.round_id == round_.id)
        )
    ).all()
    text_items = {key for key, item in items.items.items() if item.kind == "text"}
    writers = {
        r.respondent_key
        for r in rows
        if r.item_id in text_items and r.value_text and r.value_text.strip()
    }

    # Plan atoms with their sums, one per owning group, and the comments' own atom.
    owner_sums: dict[int, Atom] = defaultdict(Atom)
    for team, atom in per_team.items():
        owner = plan.atom_of_team.get(team)
        if owner is not None:
            owner_sums[owner].add(atom)
    atom_ids: dict[int, int] = {}
    for owner in sorted(owner_sums):
        sums = owner_sums[owner]
        record = PlanAtom(
            round_id=round_.id,
            owner=owner,
            kind="answers",
            respondents=sums.people.respondents,
            sums=atom_to_json(sums),
        )
        session.add(record)
        await session.flush()
        atom_ids[owner] = record.id
    comments_atom: int | None = None
    if ORG in plan.groups and writers:
        record = PlanAtom(
            round_id=round_.id, owner=ORG, kind=COMMENTS, respondents=len(writers), sums={}
        )
        session.add(record)
        await session.flush()
        comments_atom = record.id

    invited_by_team: dict[int, int] = dict(
        (
            await session.execute(
                select(Participation.team_id, func.count())
                .where(Participation.round_id == round_.id)
                .group_by(Participation.team_id)
            )
        )
        .tuples()
        .all()
    )
    atom_sums = {atom_ids[owner]: owner_sums[owner] for owner in atom_ids}
    for group in sorted(plan.groups):
        members = plan.members(group)
        group_atoms = sorted(atom_ids[o] for o in plan.atoms_of(group) if o in atom_ids)
        group_sums = Atom()
        for atom_id in group_atoms:
            group_sums.add(atom_sums[atom_id])
        measures = [RESPONDENTS] + sorted(
            name for name, groups in plan.measures.items() if group in groups
        )
        if group == ORG and comments_atom is not None and len(writers) >= comment_k:
            measures.append(COMMENTS)
        session.add(
            ReleaseGroup(
                round_id=round_.id,
                group_key=group,
                name="" if group == ORG else names[group],
                teams=sorted(members),
                atoms=group_atoms,
                measures=measures,
                invited=sum(invited_by_team.get(t, 0) for t in members),
                sums=atom_to_json(group_sums),
            )
        )

    # Answers keep their plan atom only; set numbers are drawn at random within each atom.
    draw = secrets.SystemRandom()
    numeric_sets: dict[int, list[str]] = defaultdict(list)
    comment_sets: list[str] = []
    seen: set[tuple[int, str]] = set()
    for r in rows:
        owner = plan.atom_of_team.get(r.team_id)
        if owner is None:
            continue
        if r.item_id in text_items:
            if r.respondent_key in writers and r.respondent_key not in comment_sets:
                comment_sets.append(r.respondent_key)
        elif (owner, r.respondent_key) not in seen:
            seen.add((owner, r.respondent_key))
            numeric_sets[owner].append(r.respondent_key)
    set_no: dict[tuple[int, str], int] = {}
    for owner, keys in numeric_sets.items():
        draw.shuffle(keys)
        for number, key in enumerate(keys, start=1):
            set_no[(atom_ids[owner], key)] = number
    draw.shuffle(comment_sets)
    comment_no = {key: number for number, key in enumerate(comment_sets, start=1)}
    moved: list[dict[str, Any]] = []
    for r in rows:
        owner = plan.atom_of_team.get(r.team_id)
        if owner is None:
            continue
        if r.item_id in text_items:
            if comments_atom is None or r.respondent_key not in comment_no:
                continue
            atom_id, number = comments_atom, comment_no[r.respondent_key]
        else:
            atom_id = atom_ids[owner]
            number = set_no[(atom_id, r.respondent_key)]
        moved.append(
            {
                "round_id": round_.id,
                "atom_id": atom_id,
                "set_no": number,
                "item_id": r.item_id,
                "value_num": r.value_num,
                "value_text": r.value_text,
            }
        )
    # Physical order follows (atom, random set number): nothing about arrival survives.
    moved.sort(key=lambda m: (m["atom_id"], m["set_no"], m["item_id"]))
    if moved:
        await session.execute(insert(ClosedResponse), moved)
    await session.execute(delete(Response).where(Response.round_id == round_.id))

    # Participation: who was invited and whether they answered anything, re-inserted in
    # person order (the old rows' order and progress followed the order of answering).
    invited = (
        await session.execute(
            select(Participation.person_id, Participation.team_id, Participation.answered)
            .where(Participation.round_id == round_.id)
            .order_by(Participation.person_id)
        )
    ).all()
    answered_keys = {r.respondent_key for r in rows}
    await session.execute(delete(Participation).where(Participation.round_id == round_.id))
    if invited:
        await session.execute(
            insert(Participation),
            [
                {
                    "round_id": round_.id,
                    "person_id": p.person_id,
                    "team_id": p.team_id,
                    "answered": 0,
                    "finished": (key_of(p.person_id) in answered_keys)
                    if key_of
                    else p.answered > 0,
                }
                for p in invited
            ],
        )
    round_.planned_at = now
    round_.scrubbed_at = None
    return plan


async def scrub_closed_rounds(db: Database, now: datetime) -> int:
    """Remove the dead row versions of rounds closed since the last scrub; returns how many
    rounds were marked scrubbed (0 when nothing was due or the scrub has to wait)."""
    async with db.session() as session:
        due = list(
            await session.scalars(
                select(SurveyRound.id).where(
                    SurveyRound.planned_at.is_not(None), SurveyRound.scrubbed_at.is_(None)
                )
            )
        )
    if not due:
        return 0
    if not await scrub(db, OPEN_ROUND_TABLES):
        return 0
    async with db.session() as session:
        await session.execute(
            update(SurveyRound).where(SurveyRound.id.in_(due)).values(scrubbed_at=now)
        )
    return len(due)


async def rewrite_closed_rounds(
    db: Database,
    settings: Settings,
    now: datetime,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Give every round closed before release plans existed its plan and its new storage,
    one transaction per round (an interrupted run leaves each round done or untouched, and a
    second run changes nothing). Returns the number of rounds rewritten."""
    async with db.session() as session:
        pending = list(
            await session.scalars(
                select(SurveyRound.id)
                .where(SurveyRound.status == RoundStatus.closed, SurveyRound.planned_at.is_(None))
                .order_by(SurveyRound.id)
            )
        )
    for done, round_id in enumerate(pending, start=1):
        async with db.session() as session:
            round_ = await session.get(SurveyRound, round_id, with_for_update=True)
            if round_ is None or round_.planned_at is not None:
                continue
            await close_round_storage(session, settings, round_, now)
        if progress is not None:
            progress(done, len(pending))
    if pending:
        await scrub_closed_rounds(db, now)
    return len(pending)


# Reading a plan


@dataclass
class GroupRelease:
    """One planned group of one round: what it may show, and its sums once loaded."""

    round_id: int
    key: int
    name: str
    teams: frozenset[int]
    atoms: tuple[int, ...]
    measures: frozenset[str]
    invited: int
    sums: Atom = field(default_factory=Atom)

    def shows(self, measure: str) -> bool:
        return measure in self.measures


async def load_groups(
    session: AsyncSession, round_ids: Iterable[int], keys: Iterable[int] | None = None
) -> dict[int, dict[int, GroupRelease]]:
    """Planned groups of ``round_ids`` (only ``keys`` when given), with their sums (kept at
    close: one row per group and round): round id -> group key -> group. A group not listed
    is not reportable, by any route."""
    ids = sorted(set(round_ids))
    out: dict[int, dict[int, GroupRelease]] = {rid: {} for rid in ids}
    if not ids:
        return out
    query = select(ReleaseGroup).where(ReleaseGroup.round_id.in_(ids))
    if keys is not None:
        query = query.where(ReleaseGroup.group_key.in_(sorted(set(keys))))
    for row in await session.scalars(query):
        out[row.round_id][row.group_key] = GroupRelease(
            row.round_id,
            row.group_key,
            row.name,
            frozenset(row.teams),
            tuple(row.atoms),
            frozenset(row.measures),
            row.invited,
            atom_from_json(row.sums or {}),
        )
    return out


async def comment_texts(session: AsyncSession, round_id: int) -> list[str]:
    """The free-text answers of a round's comments atom (only call when the plan's
    organisation group shows ``comments``)."""
    atom = select(PlanAtom.id).where(PlanAtom.round_id == round_id, PlanAtom.kind == COMMENTS)
    rows = await session.scalars(
        select(ClosedResponse.value_text).where(
            ClosedResponse.round_id == round_id,
            ClosedResponse.atom_id.in_(atom),
            ClosedResponse.value_text.is_not(None),
        )
    )
    return [text.strip() for text in rows if text and text.strip()]
