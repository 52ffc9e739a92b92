"""`hwkit ioreg`: the daemon's live registry, like macOS's ioreg.

    hwkit ioreg [--json] [-p PLANE] [-l] [-c CLASS] [-w CLASS ...] [--timeout S]

Each entry is one line, ``+-o name  <class C, id 0x..., state, personality 'P' score S,
pid N>``; ``-l`` adds the properties; ``-c CLASS`` shows only the entries of that class
(or a subclass) with their properties and subtrees. ``--json`` prints the same tree as
JSON (data as ``{"$data": base64}``). The daemon is found through ``$HWKIT_SOCKET`` or
the configured socket.

``-w CLASS`` (repeatable) first waits until a service of each class is published
(I/O Kit's ``waitForMatchingService``), through a matching notification rather than by
polling, and also waits for the daemon's socket to appear: a script can start
``hwkit-daemon`` and go on with ``hwkit ioreg -w MyDriver``. It fails (status 1, naming
what never came) after ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
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
    wait_help = "first wait until a service of CLASS is published (repeatable)"
    p.add_argument("-w", "--wait", metavar="CLASS", action="append", default=[], help=wait_help)
    timeout_help = "seconds --wait waits for the daemon and services (default 60)"
    p.add_argument("--timeout", type=float, default=60.0, help=timeout_help)
    p.set_defaults(func=run)


def wait_for_services(socket: str | None, classes: list[str], timeout: float) -> list[str]:
    """Wait until a service of each class is published; the classes still missing."""
    from hwkit.client import connect
    from hwkit.errors import ClosedResourceError

    deadline = time.monotonic() + timeout
    while True:  # the daemon may still be starting
        try:
            daemon = connect(socket)
            break
        except ClosedResourceError:
            if time.monotonic() >= deadline:
                return ["the daemon (nothing listens on its socket)"]
            time.sleep(0.2)
    with daemon:
        notes = {cls: daemon.add_matching_notification("published", {"IOProviderClass": cls})
                 for cls in classes}  # fmt: skip
        missing = set(classes)
        while True:
            missing -= {cls for cls, note in notes.items() if list(note)}
            remaining = deadline - time.monotonic()
            if not missing or remaining <= 0:
                return sorted(missing)
            daemon.dispatch(min(remaining, 0.25))  # dispatch() takes the whole slice


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

    if args.wait:
        missing = wait_for_services(args.socket, args.wait, args.timeout)
        if missing:
            print(f"hwkit ioreg: after {args.timeout:g} s still no {', '.join(missing)}",
                  file=sys.stderr)  # fmt: skip
            return 1
    with connect(args.socket) as daemon:
        root = daemon.registry(args.plane)
    trees = [root] if args.cls is None else select_class(root, args.cls)
    if args.json:
        print(json.dumps(to_json(trees[0] if args.cls is None else trees), indent=2))
        return 0
    for tree in trees:
        print("\n".join(format_tree(tree, args.long or args.cls is not None)))
    return 0
