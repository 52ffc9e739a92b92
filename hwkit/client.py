"""The client library: find services, get notified, open user clients, call, map, queue.

Synchronous::

    from hwkit import client

    with client.connect() as daemon:                  # $HWKIT_SOCKET or the default
        service = daemon.find({"IOProviderClass": "SampleDriver"})[0]
        with daemon.open(service) as conn:            # IOServiceOpen
            conn.call("add", 2, 3).scalars           # (5,)
            frame = conn.map_memory(0)               # NumPy view of the driver's buffer
            queue = conn.open_queue(1)               # IODataQueue consumer
            queue.wait_for_data(1.0); queue.drain()

and the same with asyncio (:func:`connect_async`, ``await daemon.find(...)``,
``await conn.call(...)``).

Notifications are I/O Kit's: matching notifications of services that are published,
matched or terminated (and the ``first_published`` / ``first_matched`` types, once per
service), and interest messages of one service (terminated, property changes with the
changed keys). Matching notifications follow I/O Kit's arming rule:
:meth:`DaemonConnection.add_matching_notification` returns an iterator holding the
services that already match; the callback only runs for later arrivals once that
iterator has been drained (as ``IOIteratorNext`` must return 0 before the port fires).
Callbacks run in :meth:`DaemonConnection.dispatch` (sync) or on the loop (async).

Threading: a connection belongs to one thread (sync) or one loop (async).
"""

from __future__ import annotations

import contextlib
import itertools
import select
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple, Self

import numpy as np

from hwkit.dataqueue import DataQueueReader
from hwkit.errors import BadArgument, ClosedResourceError, NotFoundError
from hwkit.ipc import (
    ASYNC,
    PROTOCOL_VERSION,
    RECV_ARGS,
    TRUNCATED,
    Channel,
    Frame,
    Kind,
    LeanCall,
    ProtocolError,
    encode,
    encode_plist,
    frame_from,
    raise_error,
    recv_frame,
    recv_raw,
    send_encoded,
)
from hwkit.service import Message
from hwkit.shmem import map_fd

VARIABLE = 0xFFFFFFFF
_new_tuple = tuple.__new__  # a CallResult without NamedTuple's Python-level __new__
VARIABLE_OUT_DEFAULT = 4096
DEFAULT_TIMEOUT = 10.0


class CallResult(NamedTuple):
    """What an external method returned: its scalar outputs and structure output."""

    scalars: tuple[int, ...]
    struct: bytes


@dataclass(frozen=True)
class ServiceInfo:
    """A registry entry as the daemon described it."""

    id: int
    name: str
    class_name: str
    classes: tuple[str, ...]
    path: str
    properties: dict[str, Any]
    state: str | None = None

    @classmethod
    def from_plist(cls, value: dict[str, Any]) -> ServiceInfo:
        return cls(value["id"], value["name"], value["class"], tuple(value.get("classes", ())),
                   value["path"], value.get("properties", {}), value.get("state"))  # fmt: skip


@dataclass(frozen=True)
class MethodInfo:
    """One external method as the user client declared it."""

    selector: int
    name: str
    scalar_in: int
    scalar_out: int
    struct_in: int
    struct_out: int
    is_async: bool

    @property
    def fast(self) -> bool:
        """A synchronous, scalar-only method: calls take the lean path."""
        return LeanCall.serves(self.is_async, self.struct_in, self.struct_out)


def _service_id(service: ServiceInfo | int) -> int:
    return service.id if isinstance(service, ServiceInfo) else int(service)


def _call_frame(method: MethodInfo, request_id: int, scalars: tuple[int, ...], struct: bytes,
                struct_out: int | None, is_async: bool) -> tuple[bytes, list[int]]:  # fmt: skip
    room = struct_out if struct_out is not None else (
        VARIABLE_OUT_DEFAULT if method.struct_out == VARIABLE else method.struct_out
    )  # fmt: skip
    return encode(Kind.CALL, code=method.selector, request_id=request_id, scalars=scalars,
                  body=struct, capacity=(method.scalar_out, room),
                  flags=ASYNC if is_async else 0)  # fmt: skip


def _queue_reader(frame: Frame) -> DataQueueReader:
    """The consumer of the queue a map reply carries (memory, data and serviced eventfds)."""
    memory, event = frame.take_fd(), frame.take_fd()
    serviced = frame.take_fd() if frame.fds else None
    frame.close_fds()
    return DataQueueReader(memory, event, serviced)


def _result(frame: Frame) -> CallResult:
    frame.close_fds()
    if frame.kind == Kind.ERROR or (frame.kind == Kind.ASYNC_RESULT and frame.code):
        raise_error(frame)
    return CallResult(tuple(frame.scalars), bytes(frame.body))


class _Methods:
    """The user client's dispatch table, looked up by name or selector."""

    def __init__(self, hello: dict[str, Any]) -> None:
        self.class_name = str(hello.get("class", ""))
        self.service_id = int(hello.get("service", 0))
        self.by_selector = {
            m["selector"]: MethodInfo(m["selector"], m["name"], m["scalar_in"], m["scalar_out"],
                                      m["struct_in"], m["struct_out"], m["async"])
            for m in hello.get("methods", [])
        }  # fmt: skip
        self.by_name = {m.name: m for m in self.by_selector.values()}
        #: The scalar-only methods' lean calls, by name and by selector.
        self.lean: dict[str | int, LeanCall] = {}
        for m in self.by_selector.values():
            if m.fast:
                self.lean[m.name] = self.lean[m.selector] = LeanCall(
                    m.selector, m.scalar_in, m.scalar_out
                )

    def get(self, method: str | int) -> MethodInfo:
        found = (
            self.by_name.get(method) if isinstance(method, str) else self.by_selector.get(method)
        )
        if found is None:
            names = ", ".join(f"{m.name} ({m.selector})" for m in self.by_selector.values())
            raise NotFoundError(f"{self.class_name} has no method {method!r} (methods: {names})")
        return found


#: Longest single blocking receive; a deadline is checked at least this often.
_RECV_GRANULE = 0.25


def _set_kernel_timeout(sock: socket.socket, option: int, seconds: float) -> float:
    """Set SO_RCVTIMEO or SO_SNDTIMEO (at least 1 ms: 0 would mean forever)."""
    seconds = max(seconds, 0.001)
    whole = int(seconds)
    sock.setsockopt(socket.SOL_SOCKET, option,
                    struct.pack("@ll", whole, int((seconds - whole) * 1e6)))  # fmt: skip
    return seconds


# ---- synchronous ----------------------------------------------------------------------------
class _Blocking:
    """Request/reply over a blocking socket, keeping unsolicited frames for later."""

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        # Blocking with kernel timeouts (SO_RCVTIMEO / SO_SNDTIMEO) rather than a Python
        # socket timeout, which would poll() before every send and receive: a call
        # costs two syscalls, as a bare socket exchange does.
        sock.settimeout(None)
        _set_kernel_timeout(sock, socket.SO_SNDTIMEO, timeout)
        self._rcvtimeo = _set_kernel_timeout(sock, socket.SO_RCVTIMEO, _RECV_GRANULE)
        self.sock = sock
        self.timeout = timeout
        self.backlog: deque[Frame] = deque()
        self._ids = itertools.count(1)
        self.closed = False

    def next_id(self) -> int:
        return next(self._ids)

    def exchange(self, encoded: tuple[bytes, list[int]], request_id: int,
                 timeout: float | None = None) -> Frame:  # fmt: skip
        if self.closed:
            raise ClosedResourceError("the connection is closed")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            self._send(encoded, deadline)
        except OSError as exc:
            self._raise_refusal()
            raise ClosedResourceError(f"the connection is lost: {exc}") from None
        return self.wait_reply(request_id, deadline)

    def wait_reply(self, request_id: int, deadline: float) -> Frame:
        """Receive until the answer to `request_id`; other frames wait in the backlog."""
        while True:
            found = self.sort_reply(self.receive(deadline), request_id)
            if found is not None:
                return found

    def sort_reply(self, frame: Frame, request_id: int) -> Frame | None:
        """The frame if it answers `request_id`; else it goes to the backlog (None).

        Raises:
            HwkitError: it is an ERROR about this request or about the connection.
        """
        if frame.kind == Kind.ERROR and frame.request_id == 0:
            raise_error(frame)  # about the connection itself (a refusal, a bad frame)
        if frame.request_id == request_id and frame.kind in (
            Kind.REPLY, Kind.ERROR, Kind.RESULT
        ):  # fmt: skip
            if frame.kind == Kind.ERROR:
                frame.close_fds()
                raise_error(frame)
            return frame
        self.backlog.append(frame)
        return None

    def call_lean(self, lean: LeanCall, scalars: tuple[int, ...],
                  timeout: float | None) -> CallResult | None:  # fmt: skip
        """A plain call of a scalar-only method with no Frame objects (see LeanCall).

        None when the general path must run instead (a scalar that is not a plain int
        in u64: it says which). The reply, when it is the plain RESULT of this call, is
        unpacked with one struct; anything else (an error, a notification arriving
        first, descriptors) is decoded the general way.

        Raises:
            As :meth:`Connection.call`.
        """
        for value in scalars:
            if type(value) is not int:  # bools, floats, IntEnums: the general path decides
                return None
        request_id = next(self._ids)
        try:
            data = lean.call.pack(Kind.CALL, 0, lean.scalar_in, 0, lean.selector, request_id,
                                  lean.scalar_out, 0, *scalars)  # fmt: skip
        except struct.error:
            return None  # a scalar outside u64
        if self.closed:
            raise ClosedResourceError("the connection is closed")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            self.sock.send(data)
        except BlockingIOError:  # SO_SNDTIMEO expired
            raise TimeoutError("the peer is not reading its connection") from None
        except OSError as exc:
            self._raise_refusal()
            raise ClosedResourceError(f"the connection is lost: {exc}") from None
        try:
            reply, anc, flags, _ = self.sock.recvmsg(*RECV_ARGS)
        except OSError:  # a receive granule passed, or the connection failed
            return _result(self.wait_reply(request_id, deadline))
        if (len(reply) == lean.result_size and not anc and not flags & TRUNCATED
                and reply[:8] == lean.result_prefix):  # fmt: skip
            values = lean.unpack_result(reply)
            if values[0] == request_id:
                return _new_tuple(CallResult, (values[1:], b""))
        try:
            frame = frame_from(reply, anc, flags)
        except ProtocolError:  # skipped, as receive() does
            return _result(self.wait_reply(request_id, deadline))
        if frame is None:
            self.closed = True
            raise ClosedResourceError("the peer closed the connection")
        return _result(self.sort_reply(frame, request_id) or self.wait_reply(request_id, deadline))

    def _send(self, encoded: tuple[bytes, list[int]], deadline: float) -> None:
        try:
            send_encoded(self.sock, encoded)
        except BlockingIOError:  # SO_SNDTIMEO expired
            raise TimeoutError("the peer is not reading its connection") from None

    def _raise_refusal(self) -> None:
        """If the peer said why it closed on us (an ERROR frame is queued), raise that."""
        try:
            frame = recv_frame(self.sock) if select.select([self.sock], [], [], 0)[0] else None
        except OSError:
            return
        if frame is not None and frame.kind == Kind.ERROR:
            raise_error(frame)

    def receive(self, deadline: float) -> Frame:
        """The next frame, waiting until `deadline` (time.monotonic()).

        Raises:
            TimeoutError, ClosedResourceError.
        """
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from the peer in time")
            if left < self._rcvtimeo:
                self._rcvtimeo = _set_kernel_timeout(self.sock, socket.SO_RCVTIMEO, left)
            try:
                frame = frame_from(*recv_raw(self.sock))
            except BlockingIOError:  # SO_RCVTIMEO expired: check the deadline
                continue
            except ProtocolError:
                continue
            except OSError as exc:
                self.closed = True
                if isinstance(exc, ConnectionResetError):
                    # The peer closed with our frame unread; Linux reports the reset
                    # before the frames it sent first (a refusal, say): read those.
                    self._raise_refusal()
                raise ClosedResourceError(f"the connection is lost: {exc}") from None
            if frame is None:
                self.closed = True
                raise ClosedResourceError("the peer closed the connection")
            return frame

    def request(self, op: str, args: dict[str, Any] | None = None,
                timeout: float | None = None) -> Frame:  # fmt: skip
        request_id = self.next_id()
        encoded = encode_plist(Kind.REQUEST, {"op": op, **(args or {})}, request_id=request_id)
        return self.exchange(encoded, request_id, timeout)

    def pending(self, timeout: float) -> Iterator[Frame]:
        """Frames waiting or arriving within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.backlog:
            yield self.backlog.popleft()
        while not self.closed:
            left = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                return
            try:
                yield self.receive(time.monotonic() + 1.0)
            except ClosedResourceError:
                return
            if time.monotonic() >= deadline:
                return

    def close(self) -> None:
        self.closed = True
        self.sock.close()


def _connect_socket(path: str | None) -> socket.socket:
    from hwkit.daemon import default_socket

    path = path or default_socket()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        hint = "is hwkit-daemon running? set HWKIT_SOCKET to its socket"
        if isinstance(exc, PermissionError):
            hint = "join the daemon's group (see the config's 'group')"
        raise ClosedResourceError(
            f"cannot connect to hwkit-daemon at {path}: {exc}; {hint}"
        ) from exc
    return sock


class MatchingNotification:
    """Services matching a dictionary: the existing ones first, then arrivals.

    Iterate to drain; once drained (armed) new arrivals go to the callback (if any)
    as they are dispatched, else they wait here for the next iteration.
    """

    def __init__(self, nid: int, kind: str, existing: list[ServiceInfo],
                 callback: Callable[[ServiceInfo], Any] | None) -> None:  # fmt: skip
        self.id = nid
        self.type = kind
        self._queue: deque[ServiceInfo] = deque(existing)
        self.callback = callback
        self.armed = False

    def __iter__(self) -> Iterator[ServiceInfo]:
        while self._queue:
            yield self._queue.popleft()
        self.armed = True

    def _deliver(self, service: ServiceInfo) -> None:
        if self.armed and self.callback is not None:
            self.callback(service)
        else:
            self._queue.append(service)


#: ``callback(service_id, message, argument)``, as I/O Kit's IOServiceInterestCallback.
InterestCallback = Callable[[int, int, Any], Any]


def _notify(
    frame: Frame,
    matching: dict[int, MatchingNotification],
    interest: dict[int, InterestCallback],
) -> bool:
    """Hand a NOTIFY frame from the daemon to its notification; True if it was one."""
    frame.close_fds()
    if frame.kind != Kind.NOTIFY:
        return False
    body = frame.plist()
    nid = body.get("notification")
    if body.get("kind") == "interest" and nid in interest:
        keys = body.get("keys")
        interest[nid](body["service"], body["message"], None if keys is None else tuple(keys))
    elif nid in matching:
        matching[nid]._deliver(ServiceInfo.from_plist(body["service"]))
    return True


class _Closable:
    """``with`` closes it."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class DaemonConnection(_Closable):
    """A synchronous connection to hwkit-daemon (see the module docstring)."""

    def __init__(self, sock: socket.socket, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._io = _Blocking(sock, timeout)
        self._matching: dict[int, MatchingNotification] = {}
        self._interest: dict[int, InterestCallback] = {}
        hello = self._io.request("hello", {"version": PROTOCOL_VERSION}).plist()
        self.server_version = hello["version"]

    def _ask(self, op: str, **args: Any) -> dict[str, Any]:
        return self._io.request(op, args).plist()

    def find(self, matching: dict[str, Any]) -> list[ServiceInfo]:
        """Services matching a matching dictionary (``IOServiceGetMatchingServices``).

        Raises:
            BadArgument: the dictionary is invalid (the message names the key).
        """
        return [ServiceInfo.from_plist(s) for s in self._ask("find", matching=matching)["services"]]

    def lookup(self, path: str | None = None, id: int | None = None) -> ServiceInfo:
        """One entry by registry path or id. Raises NotFoundError."""
        args = {"path": path} if path is not None else {"id": id}
        return ServiceInfo.from_plist(self._ask("lookup", **args)["service"])

    def registry(self, plane: str = "IOService") -> dict[str, Any]:
        """The registry tree (with state, personality, score and pid per entry)."""
        return self._ask("registry", plane=plane)["root"]

    def get_properties(self, service: ServiceInfo | int) -> dict[str, Any]:
        """The service's current properties."""
        return self._ask("get_properties", id=_service_id(service))["properties"]

    def set_properties(self, service: ServiceInfo | int, properties: dict[str, Any]) -> None:
        """Ask the driver to take properties. Raises UnsupportedError if it takes none."""
        self._ask("set_properties", id=_service_id(service), properties=properties)

    def add_matching_notification(
        self, kind: str, matching: dict[str, Any],
        callback: Callable[[ServiceInfo], Any] | None = None,
    ) -> MatchingNotification:  # fmt: skip
        """Be told of services matching `matching` (``IOServiceAddMatchingNotification``).

        `kind` is one of ``published``, ``first_published``, ``matched``,
        ``first_matched`` and ``terminated`` (I/O Kit's kIOPublishNotification,
        kIOFirstPublishNotification, ...): a ``first_`` type is delivered once per
        service, the first time, where the others fire again whenever a service
        registers again or is matched again.

        Raises:
            BadArgument: an unknown type or an invalid matching dictionary.
        """
        reply = self._ask("add_matching", type=kind, matching=matching)
        note = MatchingNotification(reply["notification"], kind,
                                    [ServiceInfo.from_plist(s) for s in reply["existing"]],
                                    callback)  # fmt: skip
        self._matching[note.id] = note
        return note

    def add_interest_notification(
        self, service: ServiceInfo | int, callback: InterestCallback
    ) -> int:
        """Call ``callback(service_id, message, argument)`` for the service's interest messages.

        As ``IOServiceAddInterestNotification(kIOGeneralInterest)``: `message` is a
        :class:`~hwkit.service.Message` value (``SERVICE_IS_TERMINATED``...). For
        ``SERVICE_PROPERTY_CHANGE`` the argument is the tuple of property keys that
        changed (appeared, took another value, or went), one message per batch of
        changes; for the other messages it is None.

        Raises:
            NotFoundError: no such service. BadArgument: the entry is not a service.
        """
        nid = self._ask("add_interest", id=_service_id(service))["notification"]
        self._interest[nid] = callback
        return nid

    def remove_notification(self, nid: int) -> None:
        self._matching.pop(nid, None)
        self._interest.pop(nid, None)
        self._ask("remove", notification=nid)

    def dispatch(self, timeout: float = 0.0) -> int:
        """Run callbacks for notifications waiting or arriving within `timeout`; how many."""
        return sum(_notify(frame, self._matching, self._interest)
                   for frame in self._io.pending(timeout))  # fmt: skip

    def open(self, service: ServiceInfo | int, client_type: int = 0) -> Connection:
        """Open a user client of the service's driver (``IOServiceOpen``).

        Raises:
            PermissionDenied: the personality does not allow this user.
            UnsupportedError: the driver has no user client.
            NotFoundError: no such running driver.
        """
        frame = self._io.request("open", {"id": _service_id(service), "type": client_type})
        sock = socket.socket(fileno=frame.take_fd())
        frame.close_fds()
        return Connection(sock, self._io.timeout)

    def close(self) -> None:
        self._io.close()


class Connection(_Closable):
    """A synchronous user-client connection: call, map, queue, close."""

    def __init__(self, sock: socket.socket, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._io = _Blocking(sock, timeout)
        self._methods = _Methods(self._io.request("hello", {"version": PROTOCOL_VERSION}).plist())
        self._async: dict[int, Frame] = {}
        self.terminated = False

    @property
    def methods(self) -> dict[str, MethodInfo]:
        """The driver's external methods by name."""
        return dict(self._methods.by_name)

    @property
    def class_name(self) -> str:
        return self._methods.class_name

    def call(
        self, method: str | int, *scalars: int, struct: bytes = b"",
        struct_out: int | None = None, timeout: float | None = None,
    ) -> CallResult:  # fmt: skip
        """Call an external method (``IOConnectCallMethod``).

        `struct_out` is the room left for a variable structure output (default 4096).

        Raises:
            BadArgument: counts or sizes differ from the declaration (checked by the
                user client before the driver sees the call); the message says which.
            NotFoundError: no such method.
            ClosedResourceError: the driver went away.
        """
        lean = self._methods.lean.get(method)
        if lean is not None and not struct and struct_out is None and (
            len(scalars) == lean.scalar_in
        ):  # fmt: skip
            result = self._io.call_lean(lean, scalars, timeout)
            if result is not None:
                return result
        info = self._methods.get(method)
        request_id = self._io.next_id()
        encoded = _call_frame(info, request_id, scalars, struct, struct_out, False)
        return _result(self._io.exchange(encoded, request_id, timeout))

    def call_async(self, method: str | int, *scalars: int, struct: bytes = b"",
                   struct_out: int | None = None) -> AsyncCall:  # fmt: skip
        """Start an async method; its immediate outputs are in ``.immediate``."""
        info = self._methods.get(method)
        request_id = self._io.next_id()
        encoded = _call_frame(info, request_id, scalars, struct, struct_out, True)
        return AsyncCall(self, request_id, _result(self._io.exchange(encoded, request_id)))

    def _wait_async(self, request_id: int, timeout: float) -> CallResult:
        deadline = time.monotonic() + timeout
        while request_id not in self._async:
            for frame in list(self._io.backlog):
                self._io.backlog.remove(frame)
                self._sort(frame)
            if request_id in self._async:
                break
            self._sort(self._io.receive(deadline))
        return _result(self._async.pop(request_id))

    def _sort(self, frame: Frame) -> None:
        if frame.kind == Kind.ASYNC_RESULT:
            self._async[frame.request_id] = frame
        elif frame.kind == Kind.NOTIFY and (
            frame.plist().get("message") == Message.SERVICE_IS_TERMINATED
        ):
            self.terminated = True

    def wait_terminated(self, timeout: float) -> bool:
        """Wait for the driver's terminated message (or the connection's end)."""
        deadline = time.monotonic() + timeout
        while not self.terminated:
            try:
                self._sort(self._io.receive(deadline))
            except ClosedResourceError:
                self.terminated = True
            except TimeoutError:
                return False
        return True

    def map_memory(self, memory_type: int = 0, dtype: Any = np.uint8) -> np.ndarray:
        """Map the driver's buffer for `memory_type` (``IOConnectMapMemory64``), no copy.

        The array is read-only when the driver shares it read-only.
        """
        frame = self._io.request("map", {"type": memory_type})
        info = frame.plist()
        if info["kind"] != "memory":
            frame.close_fds()
            raise BadArgument(f"memory type {memory_type} is a data queue: use open_queue")
        return map_fd(frame.take_fd(), info["size"], info["read_only"], dtype)

    def open_queue(self, memory_type: int) -> DataQueueReader:
        """The consumer end of the driver's data queue for `memory_type`."""
        frame = self._io.request("map", {"type": memory_type})
        if frame.plist()["kind"] != "queue":
            frame.close_fds()
            raise BadArgument(f"memory type {memory_type} is not a data queue: use map_memory")
        return _queue_reader(frame)

    def close(self) -> None:
        """Close the connection (the user client's ``client_close`` runs)."""
        if not self._io.closed:
            with contextlib.suppress(ClosedResourceError, TimeoutError):
                self._io.request("close", timeout=2.0)
        self._io.close()


class AsyncCall:
    """An async method in flight (``IOConnectCallAsyncMethod``)."""

    def __init__(self, conn: Connection, request_id: int, immediate: CallResult) -> None:
        self._conn = conn
        self.request_id = request_id
        self.immediate = immediate

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> CallResult:
        """The completion; raises the driver's error if it failed, TimeoutError if late."""
        return self._conn._wait_async(self.request_id, timeout)


def connect(path: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> DaemonConnection:
    """Connect to hwkit-daemon (``$HWKIT_SOCKET``, the config's socket, or the default).

    Raises:
        ClosedResourceError: no daemon there (the message says what to check).
        PermissionDenied: the daemon refused this user.
    """
    return DaemonConnection(_connect_socket(path), timeout)


# ---- asyncio --------------------------------------------------------------------------------
class AsyncDaemonConnection:
    """The asyncio flavour of :class:`DaemonConnection`; callbacks run on the loop."""

    def __init__(self, sock: socket.socket) -> None:
        self._channel = Channel(sock, self._notice, name="hwkit-daemon")
        self._matching: dict[int, MatchingNotification] = {}
        self._interest: dict[int, InterestCallback] = {}

    async def _hello(self) -> None:
        await self._ask("hello", version=PROTOCOL_VERSION)

    async def _ask(self, op: str, **args: Any) -> dict[str, Any]:
        return (await self._channel.request(op, args, timeout=DEFAULT_TIMEOUT)).plist()

    def _notice(self, frame: Frame) -> None:
        _notify(frame, self._matching, self._interest)

    async def find(self, matching: dict[str, Any]) -> list[ServiceInfo]:
        reply = await self._ask("find", matching=matching)
        return [ServiceInfo.from_plist(s) for s in reply["services"]]

    async def get_properties(self, service: ServiceInfo | int) -> dict[str, Any]:
        return (await self._ask("get_properties", id=_service_id(service)))["properties"]

    async def set_properties(self, service: ServiceInfo | int, properties: dict[str, Any]) -> None:
        await self._ask("set_properties", id=_service_id(service), properties=properties)

    async def add_matching_notification(
        self, kind: str, matching: dict[str, Any],
        callback: Callable[[ServiceInfo], Any] | None = None,
    ) -> MatchingNotification:  # fmt: skip
        """See :meth:`DaemonConnection.add_matching_notification`; callbacks run on the loop."""
        reply = await self._ask("add_matching", type=kind, matching=matching)
        note = MatchingNotification(reply["notification"], kind,
                                    [ServiceInfo.from_plist(s) for s in reply["existing"]],
                                    callback)  # fmt: skip
        self._matching[note.id] = note
        return note

    async def add_interest_notification(
        self, service: ServiceInfo | int, callback: InterestCallback
    ) -> int:
        """See :meth:`DaemonConnection.add_interest_notification`; callbacks run on the loop."""
        nid = (await self._ask("add_interest", id=_service_id(service)))["notification"]
        self._interest[nid] = callback
        return nid

    async def open(self, service: ServiceInfo | int, client_type: int = 0) -> AsyncConnection:
        frame = await self._channel.request(
            "open", {"id": _service_id(service), "type": client_type}
        )
        conn = AsyncConnection(socket.socket(fileno=frame.take_fd()))
        frame.close_fds()
        await conn._hello()
        return conn

    async def aclose(self) -> None:
        self._channel.close()

    async def __aenter__(self) -> AsyncDaemonConnection:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


class AsyncConnection:
    """The asyncio flavour of :class:`Connection`."""

    def __init__(self, sock: socket.socket) -> None:
        self._channel = Channel(sock, self._notice, name="user client")
        self._methods: _Methods | None = None
        self._async: dict[int, Any] = {}
        self.terminated = False

    async def _hello(self) -> None:
        reply = await self._channel.request("hello", {"version": PROTOCOL_VERSION})
        self._methods = _Methods(reply.plist())

    def _notice(self, frame: Frame) -> None:
        if frame.kind == Kind.ASYNC_RESULT:
            waiter = self._async.pop(frame.request_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(frame)
        elif frame.kind == Kind.NOTIFY:
            self.terminated = self.terminated or (
                frame.plist().get("message") == Message.SERVICE_IS_TERMINATED
            )  # fmt: skip

    @property
    def methods(self) -> dict[str, MethodInfo]:
        assert self._methods is not None
        return dict(self._methods.by_name)

    async def call(self, method: str | int, *scalars: int, struct: bytes = b"",
                   struct_out: int | None = None) -> CallResult:  # fmt: skip
        """See :meth:`Connection.call`."""
        assert self._methods is not None
        info = self._methods.get(method)
        request_id = self._channel.next_id()
        encoded = _call_frame(info, request_id, scalars, struct, struct_out, False)
        return _result(await self._channel.exchange(encoded, request_id, timeout=DEFAULT_TIMEOUT))

    async def call_async(self, method: str | int, *scalars: int, struct: bytes = b"",
                         struct_out: int | None = None) -> CallResult:  # fmt: skip
        """Call an async method and wait for its completion; returns the completion."""
        import asyncio

        assert self._methods is not None
        info = self._methods.get(method)
        request_id = self._channel.next_id()
        waiter = asyncio.get_running_loop().create_future()
        self._async[request_id] = waiter
        encoded = _call_frame(info, request_id, scalars, struct, struct_out, True)
        _result(await self._channel.exchange(encoded, request_id, timeout=DEFAULT_TIMEOUT))
        return _result(await waiter)

    async def map_memory(self, memory_type: int = 0, dtype: Any = np.uint8) -> np.ndarray:
        frame = await self._channel.request("map", {"type": memory_type})
        info = frame.plist()
        if info["kind"] != "memory":
            frame.close_fds()
            raise BadArgument(f"memory type {memory_type} is a data queue: use open_queue")
        return map_fd(frame.take_fd(), info["size"], info["read_only"], dtype)

    async def open_queue(self, memory_type: int) -> DataQueueReader:
        frame = await self._channel.request("map", {"type": memory_type})
        if frame.plist()["kind"] != "queue":
            frame.close_fds()
            raise BadArgument(f"memory type {memory_type} is not a data queue: use map_memory")
        return _queue_reader(frame)

    async def aclose(self) -> None:
        if not self._channel.closed:
            with contextlib.suppress(ClosedResourceError, TimeoutError):
                await self._channel.request("close", timeout=2.0)
        self._channel.close()

    async def __aenter__(self) -> AsyncConnection:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


async def connect_async(path: str | None = None) -> AsyncDaemonConnection:
    """Connect to hwkit-daemon from a running asyncio loop (see :func:`connect`)."""
    conn = AsyncDaemonConnection(_connect_socket(path))
    await conn._hello()
    return conn


__all__ = [
    "AsyncCall", "AsyncConnection", "AsyncDaemonConnection", "CallResult", "Connection",
    "DaemonConnection", "MatchingNotification", "MethodInfo", "ServiceInfo", "connect",
    "connect_async",
]  # fmt: skip
