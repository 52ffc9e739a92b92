"""Explanations of matching outcomes, for people (text) and programs (JSON).

For each nub: its class chain and properties, every personality whose
``IOProviderClass`` fits, best first, with its score and how it was made (the USB
combination, IOProbeScore), its probe result when probe ran, the winner of each match
category, and for each loser why: the first key that failed with the two values
compared, a lower score, a tie lost on catalogue order, a declined probe or a failed
start.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hwkit.matching.context import hex_or_repr
from hwkit.matching.matcher import Candidate, NubMatch
from hwkit.matching.pci import NUB_FIELDS
from hwkit.matching.personality import Rejection
from hwkit.matching.usb import KEY_MAX

_HEX_WIDTH = {
    **{k: 4 if v > 0xFF else 2 for k, v in KEY_MAX.items()},
    **dict.fromkeys(NUB_FIELDS, 4),
}
_HEX_WIDTH["class-code"] = 6
_HEX_WIDTH["revision-id"] = 2


def format_value(key: str, value: Any) -> str:
    """Show ids and classes in hex (as datasheets do), anything else as Python shows it."""
    if key in _HEX_WIDTH:
        return hex_or_repr(value, _HEX_WIDTH[key])
    return repr(value)


def _score_origin(candidate: Candidate) -> str:
    p = candidate.personality
    rule = p.compiled.family_rule or "no family keys (0)"
    text = f"{rule} + IOProbeScore {p.probe_score}"
    if candidate.probe in ("accepted", "changed score"):
        text += f"; probe() returned {candidate.probe_score}"
    return text


def _verdict(candidate: Candidate, result: NubMatch) -> str:
    category = candidate.personality.category
    winner = result.winners.get(category)
    if candidate.reason is not None:
        return "no match"
    if winner is candidate:
        return f"WINNER of {category}"
    assert winner is not None
    if winner.final_score == candidate.final_score:
        return (
            f"matched, but lost {category} to {winner.personality.name} on a tie (listed earlier)"
        )
    return f"matched, but lost {category} to {winner.personality.name} (higher score)"


def format_nub(result: NubMatch, number: int, total: int) -> str:
    """A readable explanation of one nub's matching (see the module docstring)."""
    nub = result.nub
    lines = [
        f"Nub {number} of {total}: {nub.name!r} ({nub.class_name})",
        f"  path        {nub.path()}",
        f"  class chain {' > '.join(nub.class_chain())}",
    ]
    props = nub.properties()
    if props:
        shown = [f"{k}={format_value(k, v)}" for k, v in props.items()]
        lines.append("  properties  " + ", ".join(shown))
    for category, client in result.occupied.items():
        lines.append(f"  already has {client} in {category}")
    lines.append("")
    ranked = result.ranked()
    if not ranked:
        lines.append(f"  No personality names {nub.class_name} or a superclass as IOProviderClass.")
    else:
        count = "1 personality names" if len(ranked) == 1 else f"{len(ranked)} personalities name"
        lines.append(f"  {count} this class (or a superclass) as IOProviderClass, best first:")
    for i, candidate in enumerate(ranked, 1):
        score = candidate.final_score
        label = f"score {score}" if score is not None and candidate.failure is None else "       -"
        lines.append(
            f"  {i:>3}. {candidate.personality.name:<28} {label:<14} {_verdict(candidate, result)}"
        )
        lines.append(f"       file: {candidate.personality.file}")
        if candidate.reason is not None:
            lines.append(f"       why not: {candidate.reason}")
        else:
            lines.append(f"       score from: {_score_origin(candidate)}")
        if candidate.name_matched:
            lines.append(f"       IONameMatched: {candidate.name_matched}")
    lines.append("")
    if result.winners:
        for category, winner in result.winners.items():
            lines.append(
                f"  Result: {category} -> {winner.personality.name} ({winner.personality.io_class})"
            )
    else:
        lines.append("  Result: no driver matches this nub.")
    return "\n".join(lines)


PASSIVE_NOTE = """\
How to read this: for each nub, every personality whose IOProviderClass is the nub's
class (or a superclass) is a candidate. A candidate matches when all its keys match;
its score is its family rule's score (USB: the key combination, e.g. idVendor+idProduct
= 90000) plus its IOProbeScore. In each IOMatchCategory the highest score wins; a tie
goes to the personality loaded first. For a candidate that did not match, "why not"
names the first key that failed and the two values compared.

Passive matching only: hwkit match does not import driver code, so probe() and start()
do not run here. A driver's probe() may still raise or lower its score, or decline."""


def format_summary(result: NubMatch) -> str:
    """One line per nub: its winners, or that nothing matched."""
    nub = result.nub
    matched = sum(1 for c in result.candidates if c.matched)
    head = f"{nub.name} ({nub.class_name}): "
    if not result.winners:
        return head + f"no match ({len(result.candidates)} candidates)"
    winners = ", ".join(
        f"{cat} -> {c.personality.name} (score {c.final_score})"
        for cat, c in result.winners.items()
    )
    return head + f"{winners}; {matched} of {len(result.candidates)} candidates matched"


def format_rejections(rejected: Iterable[Rejection]) -> list[str]:
    """One line per problem, ``path: personality 'X': key 'Y': what is wrong``."""
    return [str(r) for r in rejected]


def report_json(results: Iterable[NubMatch], rejected: Iterable[Rejection]) -> dict[str, Any]:
    """The whole ``hwkit match --json`` document."""
    return {
        "nubs": [r.to_json() for r in results],
        "rejected": [r.to_json() for r in rejected],
    }
