"""The daemon's client broker: one session per connection to the daemon's socket.

A session checks the peer's credentials (``SO_PEERCRED``, never what the peer says),
then serves requests after the version handshake:

==================  ===============================================================
``find``            services matching a matching dictionary (``IOServiceGetMatchingServices``)
``lookup``          one entry by id or path
``registry``        a snapshot of a plane, with each service's state and score
``get_properties``  an entry's properties
``set_properties``  passed to the driver's ``set_properties`` (in its host), for
                    clients its HWUserClient* rules let in
``add_matching``    a matching notification (see below); the reply holds the services
                    that already match (I/O Kit's arming rule: existing services come
                    back first, later ones as NOTIFY)
``add_interest``    interest messages of one service (``SERVICE_IS_TERMINATED``...,
                    and ``SERVICE_PROPERTY_CHANGE`` with the changed ``keys``)
``remove``          drop a notification
``open``            a user client: the personality's HWUserClient* rules are applied,
                    the driver makes the user client, and the reply carries the
                    client's end of a fresh socket to it (``SCM_RIGHTS``)
==================  ===============================================================

Matching notification types, as I/O Kit's:

- ``published`` (``kIOPublishNotification``): a service registered, each time it does;
  ``first_published`` (``kIOFirstPublishNotification``): only the first time;
- ``matched`` (``kIOMatchedNotification``): a driver was matched and started, each
  time; ``first_matched`` (``kIOFirstMatchNotification``): only the first time;
- ``terminated`` (``kIOTerminatedNotification``): a service went inactive.

A first-time type is once per service instance: a driver restarted after a crash is a
new instance and is announced again.

Property changes reach interested clients as one message per service per loop turn,
listing every key that changed (appeared, took another value, or went): a driver's own
``set_property`` calls in ``--in-process`` mode, and what driver hosts report (their
health-check replies and ``register_service``) otherwise.

Who may open a driver's user clients (personality keys, all optional):

- ``HWUserClientRootOnly`` (boolean): only uid 0;
- ``HWUserClientUIDs`` (array of integers) and ``HWUserClientGroups`` (array of group
  names): the client's uid is listed, or its primary or a supplementary group is.
  Root is not exempt: list uid 0 to let root in.

A refusal is a :class:`~hwkit.errors.PermissionDenied` naming the rule, and is logged.

Threading: the daemon's asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import itertools
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from hwkit.errors import BadArgument, NotFoundError, PermissionDenied, UnsupportedError
from hwkit.host import describe_entry
from hwkit.ipc import (
    PROTOCOL_VERSION,
    Channel,
    Credentials,
    Frame,
    Kind,
    ProtocolError,
    encode_plist,
    seqpacket_pair,
)
from hwkit.matching.rules import compile_matching_table
from hwkit.registry import PLANES, SERVICE_PLANE, RegistryEntry
from hwkit.service import Message, Service, ServiceState
from hwkit.supervisor import HostedDriver
from hwkit.userclient import open_user_client, user_client_class

if TYPE_CHECKING:
    from hwkit.daemon import Daemon

logger = logging.getLogger("hwkit.broker")
NOTIFICATION_TYPES = ("published", "first_published", "matched", "first_matched", "terminated")


def check_user_client_access(driver: RegistryEntry, creds: Credentials) -> None:
    """Apply the personality's HWUserClient* keys (see the module docstring).

    Raises:
        PermissionDenied: the client is not allowed; the message names the rule.
    """
    where = f"{driver.class_name} at {driver.path()}"
    if driver.get_property("HWUserClientRootOnly") is True and creds.uid != 0:
        raise PermissionDenied(
            f"{creds} may not open {where}: it is restricted to root (HWUserClientRootOnly)"
        )
    uids = driver.get_property("HWUserClientUIDs")
    names = driver.get_property("HWUserClientGroups")
    if uids is None and names is None:
        return
    if creds.uid in (uids or []):
        return
    gids = set()
    for name in names or []:
        try:
            gids.add(grp.getgrnam(name).gr_gid)
        except KeyError:
            logger.warning("%s: HWUserClientGroups names unknown group %r", where, name)
    if gids & creds.all_groups():
        return
    raise PermissionDenied(
        f"{creds} may not open {where}: allowed uids {uids or []} and groups {names or []} "
        "(HWUserClientUIDs / HWUserClientGroups); ask the administrator to add you"
    )


class UserClientEntry(RegistryEntry):
    """An open user-client connection, as I/O Kit shows IOUserClient objects in ioreg.

    Attached under its driver while the connection lasts, with who opened it
    (``IOUserClientCreator``) and the type asked for.
    """

    ioclass = "IOUserClient"

    def __init__(self, creds: Credentials, kind: int) -> None:
        super().__init__("IOUserClient", {
            "IOUserClientCreator": f"pid {creds.pid}, uid {creds.uid}, gid {creds.gid}",
            "HWUserClientType": kind,
        })  # fmt: skip
        self._chain = ("IOUserClient", "IOService", "IORegistryEntry")
        self._driver: RegistryEntry | None = None

    def class_chain(self) -> tuple[str, ...]:
        return self._chain

    def opened(self, class_name: str, driver: RegistryEntry) -> None:
        """Show the connection under its driver, named by its user-client class."""
        self._chain = (class_name, *self._chain)
        self._driver = driver
        self.attach_to_parent(driver)

    def gone(self) -> None:
        """The connection ended: leave the registry."""
        if self._driver is not None:
            self.detach_from_parent(self._driver)
            self._driver = None


def _visible(entry: RegistryEntry) -> bool:
    """Whether clients can find the entry: an active service that registered or started.

    As in I/O Kit, a driver still starting (or one stopping) is not returned.
    """
    return (
        isinstance(entry, Service)
        and not entry.is_inactive
        and (entry.is_started or entry.state is ServiceState.REGISTERED)
    )


def _entry_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadArgument(f"service id must be an integer, not {value!r}")
    return value


class Session:
    """One client of the daemon: its credentials, its notifications, its requests."""

    _ids = itertools.count(1)

    def __init__(self, daemon: Daemon, sock: socket.socket, creds: Credentials) -> None:
        self.daemon = daemon
        self.creds = creds
        self.greeted = False
        self.matching: dict[int, tuple[str, Any]] = {}
        self.interest: dict[int, Callable[[], None]] = {}
        self.channel = Channel(
            sock, self._frame, on_close=self._closed,
            name=f"client {creds}",
        )  # fmt: skip

    async def _frame(self, frame: Frame) -> None:
        frame.close_fds()  # clients send no descriptors
        try:
            if frame.kind != Kind.REQUEST:
                raise ProtocolError(f"unexpected frame kind {frame.kind} (send requests)")
            body = frame.plist()
            op = body.get("op")
            if op != "hello" and not self.greeted:
                raise ProtocolError("say hello first")
            handler = getattr(self, f"_op_{op}", None) if isinstance(op, str) else None
            if handler is None:
                raise ProtocolError(f"unknown request {op!r}")
            reply, fds = await handler(body)
            try:
                self.channel.reply(frame.request_id, reply, fds)
            finally:
                for fd in fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)
        except Exception as exc:
            if not isinstance(exc, BadArgument | PermissionDenied | NotFoundError):
                logger.warning("%s: request failed: %s", self.channel.name, exc)
            self.channel.reply_error(frame.request_id, exc)

    def _closed(self) -> None:
        for remove in self.interest.values():
            remove()
        self.interest.clear()
        self.matching.clear()
        self.daemon.sessions.discard(self)

    # ---- requests -----------------------------------------------------------------------
    async def _op_hello(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        version = body.get("version")
        if version != PROTOCOL_VERSION:
            asyncio.get_running_loop().call_soon(self.channel.close)
            raise ProtocolError(
                f"protocol version {version!r} not supported: hwkit-daemon speaks "
                f"{PROTOCOL_VERSION}; use the client library of the same hwkit"
            )
        self.greeted = True
        return {"version": PROTOCOL_VERSION, "server": "hwkit-daemon"}, []

    async def _op_find(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        table = body.get("matching")
        if not isinstance(table, dict):
            raise BadArgument("find needs a matching dictionary")
        found = [e for e in self.daemon.registry.matching(table) if _visible(e)]
        return {"services": [describe_entry(e) for e in found]}, []

    async def _op_lookup(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        return {"service": describe_entry(self._entry(body))}, []

    def _entry(self, body: dict[str, Any]) -> RegistryEntry:
        registry = self.daemon.registry
        if "path" in body:
            path = body["path"]
            if not isinstance(path, str):
                raise BadArgument(f"path must be a string, not {path!r}")
            return registry.from_path(path)
        return registry.entry(_entry_id(body.get("id")))

    async def _op_registry(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        plane = body.get("plane", SERVICE_PLANE)
        if plane not in PLANES:
            raise BadArgument(f"unknown plane {plane!r} (planes: {', '.join(PLANES)})")
        return {"root": self.daemon.snapshot(plane)}, []

    async def _op_get_properties(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        return {"properties": self._entry(body).properties()}, []

    async def _op_set_properties(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        entry = self._entry(body)
        properties = body.get("properties")
        if not isinstance(properties, dict):
            raise BadArgument("set_properties needs a properties dictionary")
        check_user_client_access(entry, self.creds)  # the same rule as opening it
        if isinstance(entry, HostedDriver):
            await entry.set_properties_remote(properties)
        else:
            entry.set_properties(properties)
        return {}, []

    async def _op_add_matching(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        kind = body.get("type")
        if kind not in NOTIFICATION_TYPES:
            raise BadArgument(
                f"notification type {kind!r} (types: {', '.join(NOTIFICATION_TYPES)})"
            )
        table = body.get("matching")
        if not isinstance(table, dict):
            raise BadArgument("add_matching needs a matching dictionary")
        compiled = compile_matching_table(table)
        nid = next(self._ids)
        self.matching[nid] = (kind, compiled)
        existing = []
        if kind != "terminated":
            registry = self.daemon.registry
            existing = [describe_entry(e) for e in registry.entries()
                        if e is not registry.root and self._counts(kind, e)
                        and compiled.matches(e, registry)]  # fmt: skip
        return {"notification": nid, "existing": existing}, []

    @staticmethod
    def _counts(kind: str, entry: RegistryEntry) -> bool:
        """Whether an existing entry is already '(first_)published' / '(first_)matched'.

        An existing service has had its first publish or match, so the first-time
        types list the same services as the others.
        """
        matched = kind.removeprefix("first_") == "matched"
        return _visible(entry) and (not matched or entry.is_started)  # type: ignore[attr-defined]

    async def _op_add_interest(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        entry = self._entry(body)
        if not isinstance(entry, Service):
            raise BadArgument(f"{entry.path()} is not a service")
        nid = next(self._ids)

        def handler(service: Service, message: int, argument: Any) -> None:
            self.notify({"kind": "interest", "notification": nid, "service": service.entry_id,
                         "message": int(message)})  # fmt: skip

        remove_handler = entry.add_interest_handler(handler)
        remove_observer = entry.add_property_observer(self._property_observer(nid))

        def remove() -> None:
            remove_handler()
            remove_observer()

        self.interest[nid] = remove
        return {"notification": nid}, []

    def _property_observer(self, nid: int) -> Callable[[RegistryEntry, str], None]:
        """An observer that batches an entry's changed keys into one message per loop turn.

        Why batch: a host's report sets each changed property in turn, and a client
        wants one ``SERVICE_PROPERTY_CHANGE`` per change of state, not one per key.
        Properties may change on another thread (a driver's own work loop), so the
        message is sent from the daemon's loop.
        """
        loop = asyncio.get_running_loop()
        changed: set[str] = set()
        lock = threading.Lock()  # the observer may run on a driver's work-loop thread

        def flush(entry: RegistryEntry) -> None:
            with lock:
                keys = sorted(changed)
                changed.clear()
            if nid in self.interest and keys:
                self.notify({"kind": "interest", "notification": nid,
                             "service": entry.entry_id,
                             "message": int(Message.SERVICE_PROPERTY_CHANGE),
                             "keys": keys})  # fmt: skip

        def observer(entry: RegistryEntry, key: str) -> None:
            with lock:
                first = not changed
                changed.add(key)
            if first:  # the first key since the last message: send one this turn
                with contextlib.suppress(RuntimeError):  # the daemon's loop has closed
                    loop.call_soon_threadsafe(flush, entry)

        return observer

    async def _op_remove(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        nid = body.get("notification")
        self.matching.pop(nid, None)  # type: ignore[arg-type]
        remove = self.interest.pop(nid, None)  # type: ignore[arg-type]
        if remove is not None:
            remove()
        return {}, []

    async def _op_open(self, body: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
        entry = self._entry(body)
        kind = body.get("type", 0)
        if isinstance(kind, bool) or not isinstance(kind, int) or not 0 <= kind < 2**32:
            raise BadArgument(f"user client type must be 0..2**32-1, not {kind!r}")
        if not isinstance(entry, Service) or not entry.is_started or entry.is_inactive:
            raise NotFoundError(f"{entry.path()} is not a running driver")
        if entry.get_property("IOUserClientClass") is None:
            raise UnsupportedError(
                f"{entry.class_name} at {entry.path()} offers no user client "
                "(its personality has no IOUserClientClass)"
            )
        try:
            check_user_client_access(entry, self.creds)
        except PermissionDenied as exc:
            logger.warning("refused: %s", exc)
            raise
        ours, theirs = seqpacket_pair()
        connection = UserClientEntry(self.creds, kind)
        try:
            if isinstance(entry, HostedDriver):
                name = await entry.open_user_client(ours, self.creds, kind, connection.entry_id)
                ours.close()
            else:
                cls = user_client_class(entry)
                await open_user_client(entry, cls, ours, self.creds, kind,
                                       lambda _server: connection.gone())  # fmt: skip
                name = cls.__name__
        except BaseException:
            ours.close()
            theirs.close()
            raise
        connection.opened(name, entry)
        logger.info("%s opened %s of %s", self.creds, name, entry.path())
        fd = theirs.detach()
        return {"class": name, "service": entry.entry_id}, [fd]

    # ---- notifications --------------------------------------------------------------------
    def notify(self, body: dict[str, Any]) -> None:
        """Send an unsolicited frame (a slow reader is disconnected, never waited for)."""
        if not self.channel.closed:
            with contextlib.suppress(Exception):
                self.channel.send(encode_plist(Kind.NOTIFY, body))

    def registry_event(self, event: str, entry: RegistryEntry) -> None:
        """Deliver a registry event to this session's matching notifications."""
        registry = self.daemon.registry
        for nid, (kind, compiled) in list(self.matching.items()):
            if kind == event and compiled.matches(entry, registry):
                self.notify({"kind": kind, "notification": nid, "service": describe_entry(entry)})


def refuse(sock: socket.socket, creds: Credentials, reason: str) -> None:
    """Tell a client it may not connect, log it, and close."""
    from hwkit.ipc import error_body, send_encoded

    logger.warning("refused connection from %s: %s", creds, reason)
    code, body = error_body(PermissionDenied(f"hwkit-daemon refuses {creds}: {reason}"))
    with contextlib.suppress(OSError):
        send_encoded(sock, encode_plist(Kind.ERROR, body, code=code))
    sock.close()
