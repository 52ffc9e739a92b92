"""Nubs files: devices described as JSON, so matching can run without the hardware.

A nubs file is a JSON list; each item describes one nub::

    {"name": "0000:00:03.0", "class": "IOPCIDevice",
     "properties": {"vendor-id": 4660, "device-id": 4584, ...},
     "parent": null}

``class`` is an I/O Kit class name (``IOUSBHostDevice``, ``IOUSBHostInterface`` or
their aliases ``IOUSBDevice`` / ``IOUSBInterface``, ``IOPCIDevice``,
``IOSerialStreamSync``, ``IOResources``); ``parent`` is the index of another item
(cycles are refused) or null (attached under the registry root). Integer properties
are JSON numbers; data is ``{"$data": "<base64>"}``. An ``IOResources`` item does not make a second
IOResources nub: its properties are published on the registry's own one.

``hwkit probe`` writes these files from live devices; ``hwkit match --nubs`` reads them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hwkit.errors import BadArgument, NotFoundError
from hwkit.properties import from_json, to_json
from hwkit.registry import Registry, canonical_class
from hwkit.service import Nub, Service

ITEM_KEYS = {"name", "class", "properties", "parent"}


def _item(raw: Any, count: int, where: str) -> tuple[str, str, dict, int | None]:
    if not isinstance(raw, dict):
        raise BadArgument(f"{where}: expected an object, got {type(raw).__name__}")
    unknown = set(raw) - ITEM_KEYS
    if unknown:
        raise BadArgument(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(ITEM_KEYS)})")
    name, cls = raw.get("name"), raw.get("class")
    if not isinstance(name, str) or not name:
        raise BadArgument(f"{where}: 'name' must be a non-empty string")
    if not isinstance(cls, str) or not cls:
        raise BadArgument(f"{where}: 'class' must be a non-empty string")
    props = raw.get("properties", {})
    if not isinstance(props, dict):
        raise BadArgument(f"{where}: 'properties' must be an object")
    parent = raw.get("parent")
    if parent is not None and (
        not isinstance(parent, int) or isinstance(parent, bool) or not 0 <= parent < count
    ):
        raise BadArgument(
            f"{where}: 'parent' must be null or the index of a nub (0..{count - 1}), not {parent!r}"
        )
    checked = from_json(props, f"{where}: properties")
    assert isinstance(checked, dict)
    return name, cls, checked, parent


def build_nubs(
    items: Any, source: str = "nubs", registry: Registry | None = None
) -> tuple[Registry, list[Service]]:
    """Turn parsed nubs JSON into nubs attached in a registry (a new one by default).

    Returns the registry and the nubs in file order.

    Raises:
        BadArgument: the data is not a list of valid items; the message names the
            source, the item index and the field.
    """
    if not isinstance(items, list):
        raise BadArgument(f"{source}: expected a JSON list of nubs, got {type(items).__name__}")
    registry = registry or Registry()
    nubs: list[Service] = []
    parents: list[int | None] = []
    for index, raw in enumerate(items):
        where = f"{source}: nub {index}"
        name, cls, props, parent = _item(raw, len(items), where)
        parents.append(parent)
        if canonical_class(cls) == "IOResources":
            for key, value in props.items():
                registry.resources.set_property(key, value)
            nubs.append(registry.resources)
            continue
        try:
            nubs.append(Nub(cls, name, props))
        except (NotFoundError, BadArgument) as exc:
            raise BadArgument(f"{where} ({name!r}): {exc}") from None
    for index, (nub, parent) in enumerate(zip(nubs, parents, strict=True)):
        if nub is registry.resources:
            continue
        try:
            nub.attach(nubs[parent] if parent is not None else registry.root)
        except BadArgument as exc:
            raise BadArgument(f"{source}: nub {index} ({nub.name!r}): 'parent': {exc}") from None
    return registry, nubs


def load_nubs(path: str | Path, registry: Registry | None = None) -> tuple[Registry, list[Service]]:
    """Read a nubs file (see the module docstring).

    Raises:
        NotFoundError: the file cannot be read.
        BadArgument: it is not valid JSON or not a valid nubs list.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise NotFoundError(f"{path}: cannot read nubs file: {exc.strerror or exc}") from None
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadArgument(f"{path}: not valid JSON: {exc}") from None
    return build_nubs(items, str(path), registry)


def nubs_to_json(nubs: list[Service]) -> list[dict[str, Any]]:
    """Describe nubs in the nubs-file format (parents must come first in `nubs`)."""
    index = {nub.entry_id: i for i, nub in enumerate(nubs)}
    out = []
    for nub in nubs:
        parent = nub.parent()
        out.append({
            "name": nub.name,
            "class": nub.class_name,
            "properties": to_json(nub.properties()),
            "parent": index.get(parent.entry_id) if parent is not None else None,
        })  # fmt: skip
    return out
