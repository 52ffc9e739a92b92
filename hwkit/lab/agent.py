"""The wire protocol between the lab host and the agent inside the guest.

The channel is a virtio-serial port (``org.hwkit.agent``): in the guest a character
device, on the host a Unix socket QEMU connects to. Messages are JSON objects, one per
line; byte payloads are base64. The host sends:

    {"op": "run", "id": N, "argv": [...], "cwd": "...", "env": {...}}
    {"op": "signal", "id": N, "signal": 9}
    {"op": "shutdown"}

and the guest answers:

    {"op": "ready", "setup": [{"step", "ok", "detail"}...], "uptime": s, "release": "..."}
    {"op": "out", "id": N, "fd": 1 | 2, "data": "<base64>"}
    {"op": "exit", "id": N, "status": S}     # S < 0: killed by signal -S
    {"op": "log", "text": "..."}

A line that is not a JSON object with a string "op" is a protocol error: the receiver
raises :class:`ProtocolError` naming the line, rather than guessing.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from hwkit.lab.errors import LabError

#: The virtio-serial port name the guest agent opens.
PORT_NAME = "org.hwkit.agent"

#: Largest line either side accepts; output is sent in chunks well below this.
MAX_LINE = 1 << 20
CHUNK = 32 * 1024


class ProtocolError(LabError):
    """A malformed message on the agent channel."""


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"agent channel: not JSON: {line[:120]!r}") from exc
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ProtocolError(f"agent channel: not a message object: {line[:120]!r}")
    return message


def pack_bytes(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unpack_bytes(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


class LineReader:
    """Splits a byte stream from a file descriptor into protocol messages."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buffer += data
        messages = []
        while (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if line.strip():
                messages.append(decode(line))
        if len(self._buffer) > MAX_LINE:
            raise ProtocolError(f"agent channel: a line longer than {MAX_LINE} bytes")
        return messages

    def read(self) -> list[dict[str, Any]] | None:
        """Read what is available; None at end of file."""
        data = os.read(self.fd, 65536)
        if not data:
            return None
        return self.feed(data)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
