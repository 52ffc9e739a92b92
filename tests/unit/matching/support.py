"""Small builders shared by the matching tests."""

from __future__ import annotations

import plistlib
from pathlib import Path
from typing import Any

from hwkit.matching.catalogue import Catalogue
from hwkit.matching.context import Failure, MatchContext
from hwkit.matching.personality import Personality, Rejection, parse_personalities

from hwkit.registry import Registry
from hwkit.service import Nub


def personality(table: dict[str, Any], name: str = "P", io_class: str | None = None) -> Personality:
    """One valid personality (fails the test with the loader's message otherwise)."""
    body = {"IOClass": "x.Driver", **table}
    if io_class is not None:
        body["IOClass"] = io_class
    found, problems = parse_personalities({"IOKitPersonalities": {name: body}}, "test.plist")
    assert not problems, [str(p) for p in problems]
    return found[0]


def problems(table: dict[str, Any], name: str = "P") -> list[Rejection]:
    """The loader's complaints about one personality (IOClass supplied unless given)."""
    body = {"IOClass": "x.Driver", **table}
    found, rejected = parse_personalities({"IOKitPersonalities": {name: body}}, "test.plist")
    assert not found
    return rejected


def nub(cls: str, props: dict[str, Any], name: str = "nub", parent: Nub | None = None) -> Nub:
    """A nub attached in a fresh registry (or under `parent`)."""
    entry = Nub(cls, name, props)
    if parent is not None:
        entry.attach(parent)
    else:
        entry.attach(Registry().root)
    return entry


def failure(p: Personality, entry: Nub) -> Failure | None:
    """The personality's first failed key on the nub."""
    return p.compiled.first_failure(MatchContext.for_entry(entry))


def catalogue_of(*personalities: Personality) -> Catalogue:
    """A catalogue holding exactly these personalities, in this order."""
    catalogue = Catalogue([])
    catalogue.add(personalities)
    return catalogue


def write_plist(path: Path, personalities: dict[str, dict[str, Any]], **top: Any) -> Path:
    """Write a personality file."""
    path.write_bytes(plistlib.dumps({**top, "IOKitPersonalities": personalities}))
    return path
