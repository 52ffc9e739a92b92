"""`hwkit call`: open a service's user client and call one external method.

    hwkit call [--json] CLASS-OR-PATH METHOD [ARG ...]

CLASS-OR-PATH is a registry path (``IOService:/IOResources/SampleDriver``) or a class
name (the first running driver of that class offering a user client). METHOD is a
method name or selector. The ARGs are the scalar inputs (decimal or 0x hex), then,
for a method taking a structure, one structure argument: ``hex:0011ff``,
``text:hello`` or ``@FILE``. Async methods are waited for and their completion
printed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hwkit.errors import BadArgument, NotFoundError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``call`` sub-command."""
    p = sub.add_parser("call", help="call a driver's external method through its user client")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--type", type=int, default=0, help="user client type (default 0)")
    p.add_argument("--struct-out", type=int, help="room for a variable structure output")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for async")
    p.add_argument("--socket", help="daemon socket (default $HWKIT_SOCKET or the config's)")
    p.add_argument("target", metavar="CLASS-OR-PATH")
    p.add_argument("method", metavar="METHOD")
    p.add_argument("args", nargs="*", metavar="ARG")
    p.set_defaults(func=run)


def parse_struct(text: str) -> bytes:
    """A structure argument: ``hex:...``, ``text:...`` or ``@FILE``.

    Raises:
        BadArgument: none of these forms, or bad hex.
        NotFoundError: the file cannot be read.
    """
    if text.startswith("hex:"):
        try:
            return bytes.fromhex(text[4:])
        except ValueError:
            raise BadArgument(f"structure {text!r}: not hex digits") from None
    if text.startswith("text:"):
        return text[5:].encode()
    if text.startswith("@"):
        try:
            return Path(text[1:]).read_bytes()
        except OSError as exc:
            raise NotFoundError(f"structure file {text[1:]}: {exc.strerror}") from None
    raise BadArgument(f"structure argument {text!r}: write hex:..., text:... or @FILE")


def parse_scalar(text: str) -> int:
    """A scalar argument (decimal or 0x hex, 0..2**64-1).

    Raises:
        BadArgument: not such an integer.
    """
    try:
        value = int(text, 0)
    except ValueError:
        raise BadArgument(f"scalar argument {text!r} is not an integer") from None
    if not 0 <= value < 2**64:
        raise BadArgument(f"scalar argument {text!r} is outside 0..2**64-1")
    return value


def run(args: argparse.Namespace) -> int:
    from hwkit.client import connect

    with connect(args.socket) as daemon:
        if args.target.startswith("/") or ":/" in args.target:
            service = daemon.lookup(path=args.target)
        else:
            found = [s for s in daemon.find({"IOProviderClass": args.target})
                     if "IOUserClientClass" in s.properties]  # fmt: skip
            if not found:
                raise NotFoundError(
                    f"no running {args.target} with a user client (see hwkit ioreg -c "
                    f"{args.target})"
                )
            service = found[0]
        with daemon.open(service, args.type) as conn:
            method = args.method if not args.method.isdigit() else int(args.method)
            info = conn.methods.get(method) if isinstance(method, str) else next(
                (m for m in conn.methods.values() if m.selector == method), None
            )  # fmt: skip
            if info is None:
                raise NotFoundError(f"{conn.class_name} has no method {args.method!r} "
                                    f"(methods: {', '.join(conn.methods)})")  # fmt: skip
            scalars = [parse_scalar(a) for a in args.args[: info.scalar_in]]
            rest = args.args[info.scalar_in :]
            struct = parse_struct(rest[0]) if rest else b""
            if len(rest) > 1:
                raise BadArgument(f"{info.name} takes {info.scalar_in} scalars and one "
                                  f"structure; {len(rest) - 1} arguments too many")  # fmt: skip
            if info.is_async:
                result = conn.call_async(info.name, *scalars, struct=struct,
                                         struct_out=args.struct_out).wait(args.timeout)  # fmt: skip
            else:
                result = conn.call(info.name, *scalars, struct=struct, struct_out=args.struct_out)
    if args.json:
        out = {"method": info.name, "selector": info.selector,
               "scalars": list(result.scalars), "struct": result.struct.hex()}  # fmt: skip
        print(json.dumps(out))
    else:
        for i, value in enumerate(result.scalars):
            print(f"scalar[{i}] = {value} ({value:#x})")
        if result.struct or info.struct_out:
            print(f"struct ({len(result.struct)} bytes):")
            print("\n".join(hex_dump(result.struct)))
    return 0


def hex_dump(data: bytes, width: int = 16) -> list[str]:
    """``xxd``'s layout: offset, bytes in hex by pairs, then the printable ASCII."""
    lines = []
    for offset in range(0, len(data), width):
        chunk = data[offset : offset + width]
        pairs = " ".join(chunk[i : i + 2].hex() for i in range(0, len(chunk), 2))
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"  {offset:08x}: {pairs:<{width // 2 * 5 - 1}}  {text}")
    return lines
