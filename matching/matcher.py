"""Passive matching of one nub: every candidate's score or first failed key, winners per category.

This is xnu's ``matchPassive`` for each personality the catalogue offers, followed by
the sort (score descending, ties in catalogue order) and the choice of one winner per
``IOMatchCategory``. It never imports driver code; the engine
(:mod:`hwkit.matching.engine`) adds ``probe`` and ``start`` on top of the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hwkit.matching.context import Failure, MatchContext
from hwkit.matching.rules import kernel_driver_failure, name_matched

if TYPE_CHECKING:
    from hwkit.matching.catalogue import Catalogue
    from hwkit.matching.personality import Personality

    from hwkit.registry import Registry, RegistryEntry


@dataclass
class Candidate:
    """One personality's fate on one nub: passive result, then probe and start results."""

    personality: Personality
    failure: Failure | None = None
    score: int | None = None
    name_matched: str | None = None
    probe: str = "not run"
    probe_score: int | None = None
    started: bool | None = None
    start_problem: str | None = None

    @property
    def matched(self) -> bool:
        """Passed every key, was not declined by probe, and did not fail to start."""
        return self.failure is None and self.probe != "declined" and self.started is not False

    @property
    def final_score(self) -> int | None:
        """The score after probe (the passive score when probe has not run)."""
        return self.probe_score if self.probe_score is not None else self.score

    @property
    def reason(self) -> str | None:
        """Why this candidate is not (or could not be) the driver, or None."""
        if self.failure is not None:
            return str(self.failure)
        if self.probe == "declined":
            return "probe() declined the device"
        if self.started is False:
            return self.start_problem or "start() failed"
        return None

    def to_json(self) -> dict[str, Any]:
        """The candidate entry of ``hwkit match --json``."""
        p = self.personality
        return {
            "personality": p.name,
            "file": p.file,
            "category": p.category,
            "score": self.final_score,
            "matched": self.matched,
            "reason": self.reason,
        }


@dataclass
class NubMatch:
    """The outcome for one nub: candidates (winners first) and the winner per category."""

    nub: RegistryEntry
    candidates: list[Candidate] = field(default_factory=list)
    winners: dict[str, Candidate] = field(default_factory=dict)
    occupied: dict[str, str] = field(default_factory=dict)

    def ranked(self) -> list[Candidate]:
        """Matched candidates by final score (ties in catalogue order), then the rest."""
        return sorted(self.candidates, key=_rank)

    def to_json(self) -> dict[str, Any]:
        """The nub entry of ``hwkit match --json``."""
        return {
            "name": self.nub.name,
            "class": self.nub.class_name,
            "candidates": [c.to_json() for c in self.ranked()],
            "winners": {cat: c.personality.name for cat, c in self.winners.items()},
        }


def _rank(candidate: Candidate) -> tuple[int, int, int]:
    if candidate.matched:
        return (0, -(candidate.final_score or 0), candidate.personality.seq)
    return (1, 0, candidate.personality.seq)


def occupied_categories(nub: RegistryEntry) -> dict[str, str]:
    """Categories in which the nub already has a started client: category -> client name."""
    from hwkit.service import Service

    taken: dict[str, str] = {}
    for client in nub.children():
        if isinstance(client, Service) and client.is_started and not client.is_inactive:
            category = client.get_property("IOMatchCategory", "IODefaultMatchCategory")
            taken.setdefault(str(category), client.class_name)
    return taken


def evaluate(personality: Personality, ctx: MatchContext, occupied: dict[str, str]) -> Candidate:
    """Run one personality's passive match against the nub in `ctx`."""
    candidate = Candidate(personality)
    category = personality.category
    if category in occupied:
        candidate.failure = Failure(
            "IOMatchCategory",
            f"category {category!r}",
            f"a client there already ({occupied[category]})",
        )
        return candidate
    compiled = personality.compiled
    candidate.failure = compiled.first_failure(ctx) or kernel_driver_failure(
        personality.table, category, ctx
    )
    if candidate.failure is None:
        candidate.score = personality.passive_score
        if compiled.name_match:
            candidate.name_matched = name_matched(compiled, ctx)
    return candidate


def choose_winners(result: NubMatch) -> None:
    """Pick the best matched candidate per category (passive, or after probe)."""
    result.winners = {}
    for candidate in result.ranked():
        if candidate.matched:
            result.winners.setdefault(candidate.personality.category, candidate)


def match_nub(
    catalogue: Catalogue,
    nub: RegistryEntry,
    *,
    registry: Registry | None = None,
    explain: bool = False,
    linear: bool = False,
) -> NubMatch:
    """Match one nub passively against the catalogue.

    Args:
        catalogue: the personalities.
        nub: the nub (its registry supplies resources and ancestors).
        registry: overrides the nub's registry.
        explain: list every personality whose IOProviderClass fits, failures included
            (otherwise only the indexed candidates are evaluated).
        linear: scan the whole catalogue without the index (the benchmark's baseline).

    Never raises on odd nub properties: a value of the wrong type fails the key.
    """
    ctx = MatchContext.for_entry(nub, registry)
    if linear:
        personalities = catalogue.linear(nub)
    elif explain:
        personalities = catalogue.for_provider(nub)
    else:
        personalities = catalogue.candidates(nub, ctx)
    result = NubMatch(nub, occupied=occupied_categories(nub))
    for personality in personalities:
        candidate = evaluate(personality, ctx, result.occupied)
        if explain or candidate.failure is None:
            result.candidates.append(candidate)
    choose_winners(result)
    return result
