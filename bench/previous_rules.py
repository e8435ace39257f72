"""The anonymity rules Fidelio applied before release plans, kept for comparison only.

Each viewer had a query history of their own (rule 4 of the time): a figure was released to a
viewer when, with everything already shown to *that viewer*, every cell still held k people;
a breakdown hid small siblings and their complement (rule 3). bench/anonymity.py measures how
many teams these rules showed, and tests/test_release_plan.py shows how two viewers (two
managers, or one person on chat and on the command line) together defeated them. Nothing in
Fidelio uses this module.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

from bot.loyalty.anonymity import Rules as CurrentRules

K = TypeVar("K", bound=Hashable)
TeamSet = frozenset[int]


class Rules(CurrentRules):
    """The previous rules 1-4: today's thresholds (rules 1-2) plus the per-breakdown
    suppression and the per-viewer history that release plans replaced."""

    # rules 1-3 for a breakdown
    def suppress_breakdown(self, parent_n: int, groups: Mapping[K, int]) -> set[K]:
        """Which sibling groups to hide when shown side by side under a parent of
        ``parent_n`` people: small groups (rule 1), then complementary suppression (rule 3),
        until what is hidden is either nothing or at least k people (rule 2)."""
        hidden = {key for key, n in groups.items() if 0 < n < self.k}
        shown = sorted(
            (key for key, n in groups.items() if key not in hidden and n > 0),
            key=lambda key: (groups[key], str(key)),
        )
        if len(hidden) == 1 and shown:
            hidden.add(shown.pop(0))
        while shown:
            rest = parent_n - sum(groups[key] for key in shown)
            if not 0 < rest < self.k:
                break
            hidden.add(shown.pop(0))
        return hidden

    # rule 4
    def history_ok(self, shown: Sequence[TeamSet], new: TeamSet, counts: Mapping[int, int]) -> bool:
        """May ``new`` be shown to a viewer who was already shown ``shown`` (same round)?

        ``counts`` gives the people each team contributes to the figure (respondents, or
        answers to one item). True when every non-empty cell of the sets is at least k.
        """
        return all(size >= self.k for size in cells([*shown, new], counts))

    def may_release(
        self,
        shown: Sequence[TeamSet],
        group: TeamSet,
        parent: TeamSet | None,
        counts: Mapping[int, int],
    ) -> bool:
        """Rules 1, 2 and 4 for one group of one round: ``counts`` are people per team,
        ``parent`` the teams of the group's parent (None at the top)."""
        n = sum(counts.get(team, 0) for team in group)
        if not self.group_ok(n):
            return False
        if parent is not None:
            parent_n = sum(counts.get(team, 0) for team in parent)
            if not self.remainder_ok(parent_n, n):
                return False
        return self.history_ok(shown, group, counts)


def cells(sets: Sequence[TeamSet], counts: Mapping[int, int]) -> list[int]:
    """Sizes of the non-empty cells that ``sets`` cut their union into: people are in the
    same cell when they belong to exactly the same sets."""
    signature: dict[int, list[int]] = defaultdict(list)
    for index, teams in enumerate(sets):
        for team in teams:
            signature[team].append(index)
    sizes: dict[tuple[int, ...], int] = defaultdict(int)
    for team, member_of in signature.items():
        n = counts.get(team, 0)
        if n:
            sizes[tuple(member_of)] += n
    return [size for size in sizes.values() if size]
