"""The driver host: the process one driver runs in (DriverKit's model).

The daemon starts ``python -m hwkit.host --control-fd N`` for every driver it starts,
with one end of a ``SOCK_SEQPACKET`` pair as fd N. Over it the daemon sends:

- ``start``: the nub as the daemon's registry holds it (name, location, class chain,
  properties), the personality, the passive score, and the device's file descriptors
  (``SCM_RIGHTS``). The host rebuilds the nub (:class:`HostNub`), makes the driver
  (``IOClass``), and runs ``init``, ``attach``/``probe``/``detach``, ``attach``/``start``
  on its own work loop (an asyncio loop in the main thread). The reply says whether it
  started, and if not why, plus the driver's class chain and properties.
- ``ping``: the health check; the reply carries the driver's properties when they
  changed since the last report.
- ``open``: a user-client connection, with the client's socket and credentials.
- ``set_properties``: a client's request, passed to the driver's ``set_properties``.
- ``stop``: terminate the nub (``stop``, ``detach``, ``free``), close user clients
  with a terminated notification, and exit 0.

The host tells the daemon, unsolicited, when the driver publishes a child nub or
itself (``register_service``) and when a user client goes away.

If the daemon goes away the host stops its driver and exits (and the kernel kills it
if the daemon dies first, ``PR_SET_PDEATHSIG``).

Limitation: a child nub published here is matched by the daemon and its driver runs
in a host of its own; that driver sees the child's properties but cannot call Python
methods on it across the process boundary.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import Mapping
from typing import Any

from hwkit.errors import BadArgument, HwkitError, NotFoundError
from hwkit.ipc import Channel, Credentials, Frame, Kind, ProtocolError, encode_plist
from hwkit.matching.personality import Personality, parse_personalities
from hwkit.registry import Registry, RegistryEntry
from hwkit.service import Message, Service
from hwkit.userclient import UserClientServer, open_user_client, user_client_class
from hwkit.workloop import WorkLoop
from hwkit.workloop import run as run_main

logger = logging.getLogger("hwkit.host")
PR_SET_PDEATHSIG = 1


class HostNub(Service):
    """The driver's provider, rebuilt from the daemon's description of its nub.

    Attributes:
        fds: the device descriptors the daemon opened and passed (the host owns them).
    """

    def __init__(self, description: Mapping[str, Any], fds: list[int]) -> None:
        self._chain = tuple(description["classes"])
        super().__init__(
            description["name"], description["properties"], location=description.get("location")
        )
        self.daemon_id = int(description["id"])
        self.daemon_path = str(description["path"])
        self.fds = fds

    def class_chain(self) -> tuple[str, ...]:
        """The nub's class chain in the daemon (its Python class is not here)."""
        return self._chain

    def free(self) -> None:
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []
        super().free()


def rebuild_nub(description: Mapping[str, Any], fds: list[int]) -> Service:
    """The family's own nub class where there is one, so the driver gets its I/O methods
    (an IOPCIDevice's BARs, interrupts and DMA); a :class:`HostNub` otherwise."""
    if "IOPCIDevice" in description["classes"]:
        from hwkit.pci.nubs import PCIDevice

        return PCIDevice.from_description(description, fds)
    return HostNub(description, fds)


def describe_entry(entry: RegistryEntry) -> dict[str, Any]:
    """An entry as hosts and clients see it: id, name, classes, path, properties."""
    node: dict[str, Any] = {
        "id": entry.entry_id, "name": entry.name, "class": entry.class_name,
        "classes": list(entry.class_chain()), "path": entry.path(),
        "properties": entry.properties(),
    }  # fmt: skip
    if entry.location is not None:
        node["location"] = entry.location
    state = getattr(entry, "state", None)
    if state is not None:
        node["state"] = entry.get_property("HWState", state.value)
    return node


class Host:
    """One driver's process: the control channel, the nub, the driver, its user clients."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.registry = Registry()
        self.nub: HostNub | None = None
        self.driver: Service | None = None
        self.servers: set[UserClientServer] = set()
        self._reported: dict[str, Any] = {}
        self._children: dict[int, Service] = {}
        self._done: asyncio.Future[int] | None = None
        self.channel: Channel | None = None

    async def run(self) -> int:
        """Serve the daemon until told to stop or until it goes away; the exit status."""
        loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        self.registry.work_loop = WorkLoop.current("host")
        self.registry.publish_hook = self._published
        self.registry.observers.append(self._observe)
        self.channel = Channel(self.sock, self._frame, on_close=self._daemon_gone, name="daemon")
        return await self._done

    # ---- requests ---------------------------------------------------------------------
    async def _frame(self, frame: Frame) -> None:
        assert self.channel is not None
        try:
            if frame.kind != Kind.REQUEST:
                raise ProtocolError(f"unexpected frame kind {frame.kind}")
            body = frame.plist()
            handler = getattr(self, f"_op_{body.get('op')}", None)
            if handler is None:
                raise ProtocolError(f"unknown request {body.get('op')!r}")
            self.channel.reply(frame.request_id, await handler(body, frame))
        except Exception as exc:
            frame.close_fds()
            if not isinstance(exc, HwkitError):
                logger.exception("request failed")
            self.channel.reply_error(frame.request_id, exc)

    async def _op_start(self, body: dict[str, Any], frame: Frame) -> dict[str, Any]:
        if self.driver is not None:
            raise BadArgument("this host already runs a driver")
        self.nub = rebuild_nub(body["nub"], list(frame.fds))
        frame.fds.clear()
        self.nub.attach(self.registry.root)
        personality = _personality(body["personality"], body["file"], body["name"])
        driver = personality.resolve_class()()
        failure: list[str] = []
        _record_failure(driver, "start", failure)
        if not driver.init(personality.driver_properties()):
            return {"started": False, "reason": "init() refused the personality"}
        for key in ("IOProbeScore", "IOMatchCategory", "IONameMatched"):
            if key in body.get("properties", {}):
                driver.set_property(key, body["properties"][key])
        score = await driver.probe_candidate(self.nub, int(body.get("score", 0)))
        if score is None:
            driver.free()
            return {"started": False, "reason": "probe() declined the device"}
        driver.set_property("IOProbeScore", score)
        self.driver = driver
        if not await driver.start_candidate(self.nub):
            self.driver = None
            reason = failure[0] if failure else "start() returned False"
            return {"started": False, "reason": reason}
        logger.info("%s started on %s", personality.io_class, self.nub.daemon_path)
        self._reported = driver.properties()
        return {"started": True, "classes": list(driver.class_chain()),
                "properties": self._reported, "pid": os.getpid()}  # fmt: skip

    async def _op_ping(self, body: dict[str, Any], frame: Frame) -> dict[str, Any]:
        if self.driver is None:
            return {}
        current = self.driver.properties()
        if current == self._reported:
            return {}
        self._reported = current
        return {"properties": current}

    async def _op_open(self, body: dict[str, Any], frame: Frame) -> dict[str, Any]:
        sock = socket.socket(fileno=frame.take_fd())
        if self.driver is None:
            sock.close()
            raise NotFoundError("the driver is not running in this host")
        try:
            cls = user_client_class(self.driver)
            creds = Credentials.from_plist(body["credentials"])
            server = await open_user_client(
                self.driver, cls, sock, creds, int(body.get("type", 0)), self._client_gone
            )
        except BaseException:
            sock.close()
            raise
        server.connection_id = int(body.get("connection", 0))
        self.servers.add(server)
        return {"class": cls.__name__}

    async def _op_set_properties(self, body: dict[str, Any], frame: Frame) -> dict[str, Any]:
        if self.driver is None:
            raise NotFoundError("the driver is not running in this host")
        self.driver.set_properties(body["properties"])
        return {}

    async def _op_stop(self, body: dict[str, Any], frame: Frame) -> dict[str, Any]:
        try:
            await self.shutdown()
        finally:  # exit even if the driver's stop failed: the daemon asked us to go
            asyncio.get_running_loop().call_soon(self._finish, 0)
        return {}

    # ---- ending ---------------------------------------------------------------------------
    async def shutdown(self) -> None:
        """Close user clients (telling them the driver terminated), then terminate the nub."""
        for server in list(self.servers):
            server.shutdown(died=False, notify=Message.SERVICE_IS_TERMINATED)
        if self.nub is not None and not self.nub.is_inactive:
            await self.nub.terminate()

    def _finish(self, status: int) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(status)

    async def _daemon_gone(self) -> None:
        logger.warning("the daemon closed the control connection: stopping the driver")
        await self.shutdown()
        self._finish(1)

    def _client_gone(self, server: UserClientServer) -> None:
        self.servers.discard(server)
        self._tell({"kind": "client_gone", "pid": server.client.credentials.pid,
                    "connection": server.connection_id})  # fmt: skip

    # ---- what the driver publishes ----------------------------------------------------------
    def _tell(self, message: dict[str, Any]) -> None:
        if self.channel is not None and not self.channel.closed:
            with contextlib.suppress(HwkitError):
                self.channel.send(encode_plist(Kind.NOTIFY, message))

    def _published(self, entry: Service) -> None:
        if entry is self.nub:
            return
        if entry is self.driver:
            self._tell({"kind": "registered", "properties": entry.properties()})
            return
        parent = entry.provider
        self._children[entry.entry_id] = entry
        self._tell({
            "kind": "publish", "nub": describe_entry(entry),
            "parent": parent.entry_id if parent is not None else 0,
        })  # fmt: skip

    def _observe(self, event: str, entry: RegistryEntry) -> None:
        if event == "terminated" and self._children.pop(entry.entry_id, None) is not None:
            self._tell({"kind": "terminate", "id": entry.entry_id})


def _personality(table: dict[str, Any], file: str, name: str) -> Personality:
    personalities, problems = parse_personalities({"IOKitPersonalities": {name: table}}, file)
    if problems:
        raise BadArgument("; ".join(str(p) for p in problems))
    return personalities[0]


def _record_failure(driver: Service, verb: str, out: list[str]) -> None:
    """Wrap the instance's `verb` so the reason of a failure can be sent to the daemon."""
    original = getattr(driver, verb)

    async def wrapped(*args: Any) -> Any:
        try:
            result = original(*args)
            if asyncio.iscoroutine(result):
                result = await result
        except Exception as exc:
            out.append(f"{verb}() raised {type(exc).__name__}: {exc}")
            raise
        if not result:
            out.append(f"{verb}() returned {result!r}")
        return result

    setattr(driver, verb, wrapped)


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def configure_logging(tag: str, level: int = logging.INFO) -> None:
    """Log to stderr in journald's form: ``<priority>tag: logger: message``, no timestamp."""

    priorities = {"CRITICAL": 2, "ERROR": 3, "WARNING": 4, "INFO": 6, "DEBUG": 7}

    class JournalFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            text = super().format(record)
            priority = priorities.get(record.levelname, 6)
            return "\n".join(f"<{priority}>{tag}: {line}" for line in text.splitlines())

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hwkit.host")
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--name", default="driver", help="shown in log lines")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(argv)
    _die_with_parent()
    configure_logging(f"hwkit-host[{os.getpid()}] {args.name}",
                      logging.DEBUG if args.debug else logging.INFO)  # fmt: skip
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon decides when hosts stop
    sock = socket.socket(fileno=args.control_fd)
    return run_main(Host(sock).run())


if __name__ == "__main__":
    sys.exit(main())
