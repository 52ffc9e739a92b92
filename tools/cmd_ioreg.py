"""`hwkit ioreg`: the daemon's live registry, like macOS's ioreg.

    hwkit ioreg [--json] [-p PLANE] [-l] [-c CLASS]

Each entry is one line, ``+-o name  <class C, id 0x..., state, personality 'P' score S,
pid N>``; ``-l`` adds the properties; ``-c CLASS`` shows only the entries of that class
(or a subclass) with their properties and subtrees. ``--json`` prints the same tree as
JSON (data as ``{"$data": base64}``). The daemon is found through ``$HWKIT_SOCKET`` or
the configured socket.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from hwkit.properties import to_json


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``ioreg`` sub-command."""
    p = sub.add_parser("ioreg", help="show the daemon's live registry")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("-p", "--plane", default="IOService", help="plane (IOService, IOPower)")
    p.add_argument("-l", "--long", action="store_true", help="show properties")
    p.add_argument("-c", "--class", dest="cls", help="only entries of this class (or a subclass)")
    p.add_argument("--socket", help="daemon socket (default $HWKIT_SOCKET or the config's)")
    p.set_defaults(func=run)


def select_class(node: dict[str, Any], cls: str) -> list[dict[str, Any]]:
    """The subtrees rooted at entries whose class chain holds `cls`, outermost first."""
    if cls in node.get("classes", [node["class"]]):
        return [node]
    return [found for child in node["children"] for found in select_class(child, cls)]


def describe(node: dict[str, Any]) -> str:
    """The ``<class ..., id ...>`` part of an entry's line."""
    parts = [f"class {node['class']}", f"id {node['id']:#x}"]
    if node.get("state"):
        parts.append(str(node["state"]))
    if "personality" in node:
        parts.append(f"personality {node['personality']!r} score {node.get('score', 0)}")
    if "pid" in node:
        parts.append(f"pid {node['pid']}")
    name = node["name"] + (f"@{node['location']}" if "location" in node else "")
    return f"{name}  <{', '.join(parts)}>"


def format_tree(node: dict[str, Any], long: bool, depth: int = 0) -> list[str]:
    """ioreg's text form of a snapshot tree."""
    indent = "  " * depth
    lines = [f"{indent}+-o {describe(node)}"]
    if long:
        lines.append(f"{indent}    {{")
        for key, value in sorted(node["properties"].items()):
            lines.append(f"{indent}      {json.dumps(key)} = {json.dumps(to_json(value))}")
        lines.append(f"{indent}    }}")
    for child in node["children"]:
        lines += format_tree(child, long, depth + 1)
    return lines


def run(args: argparse.Namespace) -> int:
    from hwkit.client import connect

    with connect(args.socket) as daemon:
        root = daemon.registry(args.plane)
    trees = [root] if args.cls is None else select_class(root, args.cls)
    if args.json:
        print(json.dumps(to_json(trees[0] if args.cls is None else trees), indent=2))
        return 0
    for tree in trees:
        print("\n".join(format_tree(tree, args.long or args.cls is not None)))
    return 0
