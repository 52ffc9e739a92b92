"""What a match test sees (the nub and its registry) and what it says when it fails.

Every key of a personality compiles to a test, ``test(ctx) -> Failure | None``; the
first failure is what the explainer reports for a losing personality, with the two
values that were compared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hwkit.registry import Registry, RegistryEntry


@dataclass(frozen=True)
class Failure:
    """The first key that failed: the key, what the personality wants, what the nub has."""

    key: str
    wanted: str
    got: str
    note: str = ""
    subject: str = "nub has"

    def __str__(self) -> str:
        text = f"{self.key}: personality wants {self.wanted}, {self.subject} {self.got}"
        return f"{text} ({self.note})" if self.note else text


@dataclass
class MatchContext:
    """One nub being matched: its properties (read once) and lazily derived views."""

    nub: RegistryEntry
    registry: Registry | None = None
    props: dict[str, Any] = field(default_factory=dict)
    _cache: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_entry(cls, nub: RegistryEntry, registry: Registry | None = None) -> MatchContext:
        """Build the context for `nub` (its registry, if None, is the nub's own)."""
        return cls(nub, registry if registry is not None else nub.registry, nub.properties())

    def derived(self, name: str, compute: Callable[[MatchContext], Any]) -> Any:
        """Compute a per-nub value once (PCI config registers, name lists)."""
        if name not in self._cache:
            self._cache[name] = compute(self)
        return self._cache[name]


Test = Callable[[MatchContext], Failure | None]


def hex_or_repr(value: Any, width: int = 4) -> str:
    """Format integers in hex (USB and PCI ids read that way), anything else with repr."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return f"{value:#0{width + 2}x}"
    return repr(value)
