"""A small synchronous client for QEMU's QMP monitor (docs/interop/qmp-spec.rst).

The lab uses it to change the guest's hardware while it runs: hot-add and remove
devices (``device_add`` / ``device_del``), inject input events, query the PCI and USB
topology. Commands return their ``return`` value or raise :class:`QMPError` with QEMU's
own class and description; asynchronous events are kept until someone waits for them.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

from hwkit.lab.errors import LabError


class QMPError(LabError):
    """QEMU refused a QMP command; `error_class` is QEMU's (e.g. "GenericError")."""

    def __init__(self, command: str, error: dict[str, Any]):
        self.error_class = error.get("class", "?")
        self.desc = error.get("desc", "")
        super().__init__(f"QMP {command} failed: {self.error_class}: {self.desc}")


class QMP:
    """A connection to one QEMU's QMP socket; thread-safe, one command at a time."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        self._sock.connect(path)
        self._buffer = b""
        self._lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        greeting = self._read()
        if "QMP" not in greeting:
            raise LabError(f"QMP at {path}: unexpected greeting {greeting!r}")
        self.version = greeting["QMP"].get("version", {}).get("qemu", {})
        self.execute("qmp_capabilities")

    def _read(self, timeout: float | None = None) -> dict[str, Any]:
        self._sock.settimeout(timeout if timeout is not None else self.timeout)
        while b"\n" not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise LabError(f"QMP at {self.path}: QEMU closed the monitor")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command: str, **arguments: Any) -> Any:
        """Run `command`; return its result. Events seen meanwhile are kept."""
        message: dict[str, Any] = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        with self._lock:
            self._sock.sendall(json.dumps(message).encode() + b"\n")
            while True:
                reply = self._read()
                if "event" in reply:
                    self.events.append(reply)
                elif "error" in reply:
                    raise QMPError(command, reply["error"])
                elif "return" in reply:
                    return reply["return"]

    def wait_event(
        self, name: str, timeout: float = 10.0, match: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Wait for event `name` whose data holds the items of `match`; consume it."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for event in self.events:
                    data = event.get("data", {})
                    if event["event"] == name and all(
                        data.get(k) == v for k, v in (match or {}).items()
                    ):
                        self.events.remove(event)
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LabError(f"QMP: no {name} event {match or ''} within {timeout} s")
                try:
                    self.events.append(self._read(timeout=left))
                except TimeoutError:
                    continue

    # The commands lab tests use, named as in QEMU.

    def device_add(self, driver: str, **props: Any) -> None:
        self.execute("device_add", driver=driver, **props)

    def device_del(self, id: str, wait: float | None = 10.0) -> None:
        """Remove device `id`; with `wait`, until QEMU reports DEVICE_DELETED."""
        self.execute("device_del", id=id)
        if wait:
            self.wait_event("DEVICE_DELETED", timeout=wait, match={"device": id})

    def send_key(self, *keys: str, hold_time_ms: int = 100) -> None:
        """Press `keys` together ("ctrl", "alt", "a", ...), as QEMU's send-key."""
        self.execute(
            "send-key",
            keys=[{"type": "qcode", "data": k} for k in keys],
            **{"hold-time": hold_time_ms},
        )

    def close(self) -> None:
        self._sock.close()
