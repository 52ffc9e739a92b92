"""Kernel uevents: how families hear of devices that come, go, bind and unbind.

The kernel broadcasts a message on the ``NETLINK_KOBJECT_UEVENT`` socket family for
every device change (group 1: the kernel's own events, which need no udevd). A message
is ``ACTION@DEVPATH`` followed by ``KEY=VALUE`` strings, each NUL-terminated
(lib/kobject_uevent.c). udevd re-broadcasts enriched copies on group 2 with a binary
header ("libudev"); hwkit reads the kernel's, so it works where udevd does not run (the
lab guest, containers).

    with UeventMonitor(subsystems={"pci"}) as monitor:       # fileno() for a work loop
        for event in monitor.receive():                     # non-blocking
            print(event.action, event.devpath, event.env.get("PCI_SLOT_NAME"))
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from hwkit.errors import BadArgument, ClosedResourceError, PermissionDenied

NETLINK_KOBJECT_UEVENT = 15
KERNEL_GROUP = 1
ACTIONS = frozenset({"add", "remove", "change", "move", "online", "offline", "bind", "unbind"})


@dataclass(frozen=True)
class Uevent:
    action: str
    devpath: str  # below /sys, e.g. /devices/pci0000:00/0000:00:06.0/0000:01:00.0
    env: dict[str, str] = field(default_factory=dict)

    @property
    def subsystem(self) -> str | None:
        return self.env.get("SUBSYSTEM")

    @property
    def sys_name(self) -> str:
        return self.devpath.rsplit("/", 1)[-1]


def parse(message: bytes) -> Uevent | None:
    """One netlink message as a Uevent; None for udevd's "libudev" copies.

    Raises:
        BadArgument: the message is not a kernel uevent (the error quotes its start).
    """
    if message.startswith(b"libudev\0"):
        return None
    parts = message.split(b"\0")
    head = parts[0].decode("utf-8", "replace")
    action, at, devpath = head.partition("@")
    if not at or action not in ACTIONS or not devpath.startswith("/"):
        raise BadArgument(f"not a kernel uevent: {message[:80]!r}")
    env = {}
    for part in parts[1:]:
        key, eq, value = part.decode("utf-8", "replace").partition("=")
        if eq:
            env[key] = value
    if env.get("ACTION", action) != action or env.get("DEVPATH", devpath) != devpath:
        raise BadArgument(f"uevent header and body disagree: {message[:80]!r}")
    return Uevent(action, devpath, env)


class UeventMonitor:
    """A non-blocking listener for kernel uevents, optionally of some subsystems only.

    Raises (constructor):
        PermissionDenied: the kernel refused the netlink socket.
    """

    def __init__(self, subsystems: Iterable[str] | None = None) -> None:
        self.subsystems = frozenset(subsystems) if subsystems is not None else None
        try:
            self.sock: socket.socket | None = socket.socket(
                socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                NETLINK_KOBJECT_UEVENT,
            )  # fmt: skip
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self.sock.bind((os.getpid(), KERNEL_GROUP))
        except PermissionError as exc:
            raise PermissionDenied(f"cannot listen to kernel uevents: {exc}") from exc
        except OSError as exc:
            # another socket of this process took the pid as its address: let the kernel pick
            if self.sock is not None and exc.errno == 98:
                self.sock.bind((0, KERNEL_GROUP))
            else:
                raise

    def fileno(self) -> int:
        if self.sock is None:
            raise ClosedResourceError("uevent monitor is closed")
        return self.sock.fileno()

    def receive(self) -> list[Uevent]:
        """Every event waiting now (possibly none); never blocks."""
        if self.sock is None:
            raise ClosedResourceError("uevent monitor is closed")
        events = []
        while True:
            try:
                data, (sender, _groups) = self.sock.recvfrom(1 << 16)
            except BlockingIOError:
                return events
            if sender != 0:  # only the kernel (port 0) may speak here
                continue
            try:
                event = parse(data)
            except BadArgument:
                continue
            if event is not None and (
                self.subsystems is None or event.subsystem in self.subsystems
            ):
                events.append(event)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self) -> UeventMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
