"""The wire protocol between clients, the daemon and driver hosts.

Every connection is an ``AF_UNIX`` ``SOCK_SEQPACKET`` socket (message boundaries kept,
peer credentials available, file descriptors passed with ``SCM_RIGHTS``). A frame is
one packet: a 16-byte header, then a body::

    u8 kind, u8 flags, u8 scalar count, u8 reserved (0), u32 code, u64 request id

- ``REQUEST`` / ``REPLY`` / ``ERROR`` / ``NOTIFY``: the body is a binary plist (a
  dictionary; requests carry ``"op"``). Bodies are plist so registry properties (data
  included) travel with their types, as I/O Kit serialises CF types.
- ``CALL`` (an external method; ``code`` = selector): ``u32 scalar-out capacity, u32
  struct-out capacity``, the scalar inputs as u64, then the structure input.
  ``RESULT`` / ``ASYNC_RESULT``: the scalar outputs as u64, then the structure output
  (``code`` of an async result is 0 or the error number). These frames carry no plist,
  so a call costs two small packets.
- A body that is too big to go inline (a structure over :data:`STRUCT_INLINE_MAX`
  bytes, as I/O Kit passes structures over 4096 bytes by descriptor; any body over
  :data:`BODY_INLINE_MAX`) travels as a memfd and the ``FD_BODY`` flag is set.

The first exchange on every connection is ``REQUEST {"op": "hello", "version": N}``;
a peer speaking another :data:`PROTOCOL_VERSION` gets an ``ERROR`` and is closed.

Errors cross the wire as ``{"type": class name, "message": text}`` and come back as
the same :mod:`hwkit.errors` class.

Threading: :class:`Channel` belongs to one asyncio loop; the send and receive
functions are plain and may be used from any one thread per socket.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import itertools
import logging
import mmap
import os
import plistlib
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hwkit import errors
from hwkit.errors import BadArgument, ClosedResourceError, HwkitError

logger = logging.getLogger("hwkit.ipc")

PROTOCOL_VERSION = 1

#: Largest packet accepted; bigger ones are refused as oversized.
MAX_FRAME = 65536
#: Structures above this size travel as a memfd (I/O Kit's 4096-byte threshold).
STRUCT_INLINE_MAX = 4096
#: Plist bodies above this size travel as a memfd.
BODY_INLINE_MAX = 60000
#: Largest body accepted through a memfd (a registry snapshot, a 16 MiB structure).
MAX_FD_BODY = 16 << 20
#: Most descriptors one frame may carry.
MAX_FDS = 4
#: The most scalars a method takes or returns (I/O Kit's limit).
MAX_SCALARS = 16
U64_MAX = 2**64 - 1

HEADER = struct.Struct("<BBBBIQ")
CAPACITY = struct.Struct("<II")
# Packers by scalar count (and with the CALL capacities): one struct call per frame,
# which keeps a method call's encoding and decoding to about a microsecond each.
FRAME_HEADS = _FRAME_HEAD = [struct.Struct(f"<BBBBIQ{n}Q") for n in range(MAX_SCALARS + 1)]
CALL_HEADS = _CALL_HEAD = [struct.Struct(f"<BBBBIQII{n}Q") for n in range(MAX_SCALARS + 1)]
_SCALARS = [struct.Struct(f"<{n}Q") for n in range(MAX_SCALARS + 1)]


class Kind:
    """Frame kinds."""

    REQUEST = 1
    REPLY = 2
    ERROR = 3
    CALL = 4
    RESULT = 5
    ASYNC_RESULT = 6
    NOTIFY = 7


PLIST_KINDS = frozenset({Kind.REQUEST, Kind.REPLY, Kind.ERROR, Kind.NOTIFY})
_ANSWERS = frozenset({Kind.REPLY, Kind.ERROR, Kind.RESULT})  # what resolves a request
FD_BODY = 0x01  # the body is in the first descriptor (a memfd)
ASYNC = 0x02  # CALL: the method completes later with an ASYNC_RESULT

#: Error classes by wire number (the ``code`` of an ERROR frame).
ERROR_TYPES: dict[int, type[HwkitError]] = {
    1: BadArgument,
    2: errors.PermissionDenied,
    3: errors.NotFoundError,
    4: errors.UnsupportedError,
    5: ClosedResourceError,
    6: errors.DeviceGoneError,
    7: errors.BusyResourceError,
    8: HwkitError,
}
ERROR_CODES = {cls: code for code, cls in ERROR_TYPES.items()}


class ProtocolError(BadArgument):
    """A peer sent a frame that does not follow the protocol."""


@dataclass
class Frame:
    """One decoded frame. ``fds`` are owned by the frame's receiver: close them."""

    kind: int
    code: int = 0
    request_id: int = 0
    flags: int = 0
    scalars: tuple[int, ...] = ()
    body: bytes | memoryview = b""
    fds: list[int] = field(default_factory=list)
    capacity: tuple[int, int] = (0, 0)

    def plist(self) -> dict[str, Any]:
        """The plist body as a dictionary.

        Raises:
            ProtocolError: the body is not a binary plist dictionary.
        """
        try:
            value = plistlib.loads(bytes(self.body))
        except Exception as exc:  # plistlib raises many types on garbage
            raise ProtocolError(f"frame body is not a plist ({type(exc).__name__})") from None
        if not isinstance(value, dict):
            raise ProtocolError("frame body is not a plist dictionary")
        return value

    def close_fds(self) -> None:
        """Close every descriptor the frame still holds."""
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds.clear()

    def take_fd(self) -> int:
        """Remove and return the first descriptor.

        Raises:
            ProtocolError: the frame carried none.
        """
        if not self.fds:
            raise ProtocolError("the frame should carry a file descriptor and has none")
        return self.fds.pop(0)


class LeanCall:
    """The exact bytes of a plain call to one scalar-only method, and of its plain result.

    Why: a synchronous method with scalars only (``add(a, b)``) is the call whose
    latency matters, and both ends can recognise its frames by a fixed prefix and a
    fixed size, so neither builds a :class:`Frame` for it. A call frame is exactly
    ``prefix, request id, capacities, scalars``; a result frame exactly
    ``result_prefix, request id, scalars``. Anything else (another size, flags,
    capacities that differ from the declaration) is left to the general path, which
    makes the same checks and says what was wrong.
    """

    __slots__ = ("call", "call_size", "capacities", "prefix", "result", "result_prefix",
                 "result_size", "scalar_in", "scalar_out", "selector", "unpack_call",
                 "unpack_result")  # fmt: skip

    @staticmethod
    def serves(is_async: bool, struct_in: int, struct_out: int) -> bool:
        """Whether a method so declared has lean calls: synchronous, scalars only."""
        return not (is_async or struct_in or struct_out)

    def __init__(self, selector: int, scalar_in: int, scalar_out: int) -> None:
        self.selector = selector
        self.scalar_in = scalar_in
        self.scalar_out = scalar_out
        #: kind, flags, scalar count, reserved, selector: the call's first 8 bytes.
        self.prefix = HEADER.pack(Kind.CALL, 0, scalar_in, 0, selector, 0)[:8]
        #: The caller's scalar-out and structure-out capacities, as declared.
        self.capacities = CAPACITY.pack(scalar_out, 0)
        self.call_size = HEADER.size + CAPACITY.size + 8 * scalar_in
        #: Packs (kind, flags, count, 0, selector, request id, capacities, *scalars).
        self.call = CALL_HEADS[scalar_in]
        #: Unpacks a call frame to (request id, *scalars).
        self.unpack_call = struct.Struct(f"<8xQ8x{scalar_in}Q").unpack
        self.result_prefix = HEADER.pack(Kind.RESULT, 0, scalar_out, 0, 0, 0)[:8]
        self.result_size = HEADER.size + 8 * scalar_out
        #: Packs (kind, flags, count, 0, 0, request id, *scalars).
        self.result = FRAME_HEADS[scalar_out]
        #: Unpacks a result frame to (request id, *scalars).
        self.unpack_result = struct.Struct(f"<8xQ{scalar_out}Q").unpack


# ---- encoding ---------------------------------------------------------------------------
def _memfd_with(data: bytes | memoryview, name: str) -> int:
    fd = os.memfd_create(name, os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        done = 0
        while done < len(view):
            done += os.write(fd, view[done:])
    except BaseException:
        os.close(fd)
        raise
    return fd


def pack_scalars(values: Sequence[int], where: str) -> bytes:
    """Scalars as little-endian u64.

    Raises:
        BadArgument: more than 16, or a value is not an integer in 0..2**64-1.
    """
    _check_scalars(values, where)
    return _SCALARS[len(values)].pack(*values)


def _check_scalars(values: Sequence[int], where: str) -> None:
    if len(values) > MAX_SCALARS:
        raise BadArgument(f"{where}: {len(values)} scalars, at most {MAX_SCALARS} allowed")
    for value in values:
        if type(value) is not int or not 0 <= value <= U64_MAX:
            if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= U64_MAX:
                continue  # an int subclass (IntEnum, say)
            raise BadArgument(f"{where}: scalar {value!r} is not an integer in 0..2**64-1")


def encode(
    kind: int,
    *,
    code: int = 0,
    request_id: int = 0,
    flags: int = 0,
    scalars: Sequence[int] = (),
    body: bytes | memoryview = b"",
    capacity: tuple[int, int] | None = None,
) -> tuple[bytes, list[int]]:
    """Build one frame; returns its bytes and any memfd made for a large body.

    The caller closes the returned descriptors after sending them.

    Raises:
        BadArgument: more than 16 scalars, or one outside u64.
    """
    limit = BODY_INLINE_MAX if kind in PLIST_KINDS else STRUCT_INLINE_MAX
    fds: list[int] = []
    if len(body) > limit:
        fds.append(_memfd_with(body, "hwkit-ipc-body"))
        body, flags = b"", flags | FD_BODY
    if scalars:
        _check_scalars(scalars, "frame")
    count = len(scalars)
    if capacity is not None:
        head = _CALL_HEAD[count].pack(kind, flags, count, 0, code, request_id, *capacity, *scalars)
    else:
        head = _FRAME_HEAD[count].pack(kind, flags, count, 0, code, request_id, *scalars)
    return (head + bytes(body) if body else head), fds


def encode_plist(kind: int, value: dict[str, Any], **kw: Any) -> tuple[bytes, list[int]]:
    """Build a plist frame (REQUEST, REPLY, ERROR, NOTIFY)."""
    return encode(kind, body=plistlib.dumps(value, fmt=plistlib.FMT_BINARY), **kw)


def error_body(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The ERROR code and body for an exception (unexpected ones become HwkitError)."""
    cls = next((c for c in type(exc).__mro__ if c in ERROR_CODES), HwkitError)
    message = str(exc) if isinstance(exc, HwkitError) else f"{type(exc).__name__}: {exc}"
    return ERROR_CODES[cls], {"type": type(exc).__name__, "message": message}


def raise_error(frame: Frame) -> None:
    """Raise the hwkit error an ERROR frame (or failed async result) carries."""
    cls = ERROR_TYPES.get(frame.code, HwkitError)
    try:
        message = str(frame.plist().get("message", "unknown error"))
    except ProtocolError:
        message = bytes(frame.body).decode("utf-8", "replace") or "unknown error"
    raise cls(message)


# ---- decoding ---------------------------------------------------------------------------
def decode(data: bytes, fds: list[int], *, truncated: bool = False) -> Frame:
    """Parse a received packet. On error the descriptors are closed.

    Raises:
        ProtocolError: oversized, short, unknown kind, bad scalar count, or an
            FD_BODY frame without a readable memfd.
    """
    try:
        if truncated:
            raise ProtocolError(f"frame larger than {MAX_FRAME} bytes refused")
        if len(data) < HEADER.size:
            raise ProtocolError(f"frame of {len(data)} bytes is shorter than the header")
        kind, flags, count, reserved, code, request_id = HEADER.unpack_from(data)
        if not Kind.REQUEST <= kind <= Kind.NOTIFY or reserved:
            raise ProtocolError(f"unknown frame kind {kind} (reserved byte {reserved})")
        offset = HEADER.size
        capacity = (0, 0)
        if kind == Kind.CALL:
            if len(data) < offset + CAPACITY.size:
                raise ProtocolError("call frame is missing its output capacities")
            capacity = CAPACITY.unpack_from(data, offset)
            offset += CAPACITY.size
        if count > MAX_SCALARS or len(data) < offset + 8 * count:
            raise ProtocolError(f"frame claims {count} scalars and cannot hold them")
        scalars = _SCALARS[count].unpack_from(data, offset) if count else ()
        end = offset + 8 * count
        body: bytes | memoryview = memoryview(data)[end:] if len(data) > end else b""
        frame = Frame(kind, code, request_id, flags, scalars, body, fds, capacity)
        if flags & FD_BODY:
            frame.body = _read_fd_body(frame)
        return frame
    except BaseException:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        raise


def _read_fd_body(frame: Frame) -> memoryview:
    if len(frame.body):
        raise ProtocolError("a frame with its body in a memfd has inline bytes too")
    fd = frame.take_fd()
    try:
        size = os.fstat(fd).st_size
        if size > MAX_FD_BODY:
            raise ProtocolError(f"memfd body of {size} bytes exceeds {MAX_FD_BODY}")
        if size == 0:
            return memoryview(b"")
        # Read-only mapping: the structure reaches the driver without a copy.
        return memoryview(mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ))
    except OSError as exc:
        raise ProtocolError(f"cannot map the frame's memfd body: {exc}") from None
    finally:
        os.close(fd)


_ANC = socket.CMSG_SPACE(MAX_FDS * 4)
# Plain ints: the socket module's flags are IntFlag members, whose ``&`` costs
# microseconds on a path that runs twice per external method call.
_MSG_CMSG_CLOEXEC = int(socket.MSG_CMSG_CLOEXEC)
_MSG_TRUNC = int(socket.MSG_TRUNC)
_MSG_CTRUNC = int(socket.MSG_CTRUNC)
#: Message flags that make a packet need the general decoding (the kernel also hands
#: MSG_CMSG_CLOEXEC back in the flags, so "no flags" is not the test).
TRUNCATED = _MSG_TRUNC | _MSG_CTRUNC
#: ``sock.recvmsg(*RECV_ARGS)`` receives one packet as :func:`recv_raw` does, for hot
#: paths that save the function call.
RECV_ARGS = (MAX_FRAME + 1, _ANC, _MSG_CMSG_CLOEXEC)


def recv_frame(sock: socket.socket, flags: int = 0) -> Frame | None:
    """Receive one frame; None at end of file. `flags` adds ``MSG_*`` flags.

    Raises:
        ProtocolError: the packet is malformed (its descriptors are closed).
        BlockingIOError: nothing to read on a non-blocking socket (or MSG_DONTWAIT).
        OSError: the connection failed.
    """
    data, anc, msg_flags, _ = sock.recvmsg(MAX_FRAME + 1, _ANC, _MSG_CMSG_CLOEXEC | flags)
    return frame_from(data, anc, msg_flags)


def recv_raw(sock: socket.socket, flags: int = 0) -> tuple[bytes, list[Any], int]:
    """Receive one packet undecoded: (data, ancillary data, message flags).

    For hot paths that decode the common frame themselves and hand anything else
    (descriptors, truncation) to :func:`frame_from`.
    """
    data, anc, msg_flags, _ = sock.recvmsg(MAX_FRAME + 1, _ANC, _MSG_CMSG_CLOEXEC | flags)
    return data, anc, msg_flags


def frame_from(data: bytes, anc: list[Any], msg_flags: int) -> Frame | None:
    """Decode what :func:`recv_raw` received; None at end of file.

    Raises:
        ProtocolError: the packet is malformed (its descriptors are closed).
    """
    fds: list[int] = []
    for level, kind, payload in anc:  # usually none
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds_array = array.array("i")
            fds_array.frombytes(payload[: len(payload) - len(payload) % 4])
            fds.extend(fds_array)
    if not data and not fds:
        return None
    if msg_flags & _MSG_CTRUNC:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        raise ProtocolError(f"frame carried more than {MAX_FDS} descriptors")
    # The buffer holds one byte more than a frame may: a full buffer is oversized too.
    truncated = bool(msg_flags & _MSG_TRUNC) or len(data) > MAX_FRAME
    return decode(data, fds, truncated=truncated)


def send_frame(sock: socket.socket, data: bytes, fds: Sequence[int] = (), flags: int = 0) -> None:
    """Send one frame and its descriptors (the caller still owns them).

    Raises:
        BlockingIOError: the peer's buffer is full (non-blocking socket or MSG_DONTWAIT).
        OSError: the connection failed.
    """
    if fds:
        scm = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
        sock.sendmsg([data], scm, flags)
    else:
        sock.send(data, flags)


def send_encoded(
    sock: socket.socket, encoded: tuple[bytes, list[int]], fds: Sequence[int] = (), flags: int = 0
) -> None:
    """Send an :func:`encode` result plus extra descriptors; close the encoder's memfds."""
    data, own = encoded
    if not own:
        send_frame(sock, data, fds, flags)
        return
    try:
        send_frame(sock, data, [*own, *fds], flags)
    finally:
        for fd in own:
            os.close(fd)


# ---- credentials ------------------------------------------------------------------------
SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)


@dataclass(frozen=True)
class Credentials:
    """Who is at the other end of a socket (``SO_PEERCRED`` and ``SO_PEERGROUPS``)."""

    pid: int
    uid: int
    gid: int
    groups: tuple[int, ...] = ()

    @classmethod
    def of(cls, sock: socket.socket) -> Credentials:
        """Read the peer's credentials from the kernel (never from what it says)."""
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", raw)
        try:
            raw_groups = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, 4 * 256)
            groups = tuple(array.array("I", raw_groups[: len(raw_groups) // 4 * 4]))
        except OSError:
            groups = ()
        return cls(pid, uid, gid, groups)

    def all_groups(self) -> set[int]:
        """The primary and supplementary group ids."""
        return {self.gid, *self.groups}

    def to_plist(self) -> dict[str, Any]:
        return {"pid": self.pid, "uid": self.uid, "gid": self.gid, "groups": list(self.groups)}

    @classmethod
    def from_plist(cls, value: dict[str, Any]) -> Credentials:
        return cls(value["pid"], value["uid"], value["gid"], tuple(value.get("groups", ())))

    def __str__(self) -> str:
        return f"pid {self.pid} uid {self.uid} gid {self.gid}"


def seqpacket_pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair of SOCK_SEQPACKET sockets (close-on-exec)."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)


# ---- background tasks ---------------------------------------------------------------------
_background: set[asyncio.Task[Any]] = set()


def spawn(coro: Any, what: str = "background task") -> asyncio.Task[Any]:
    """Run a coroutine on the running loop, keeping a reference and logging its failure."""
    task = asyncio.ensure_future(coro)
    _background.add(task)

    def done(task: asyncio.Task[Any]) -> None:
        _background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s failed", what, exc_info=task.exception())

    task.add_done_callback(done)
    return task


# ---- an asyncio channel -------------------------------------------------------------------
Handler = Callable[[Frame], Any]


class Channel:
    """Requests with replies, plus unsolicited frames, over one socket on an asyncio loop.

    Why: the daemon, the driver hosts and the asyncio client all need the same
    request/reply matching. Incoming frames that answer a pending request resolve its
    future; everything else goes to `handler` (which may be async). A malformed frame
    goes to `on_bad_frame` (default: log it and answer with an ERROR of request id 0);
    end of file calls `on_close` once. `fast`, when given, first sees every packet
    that came without descriptors or truncation and returns True if it handled it
    (a user client's calls skip the general decoding that way).

    Threading: use from the loop's thread only.
    """

    def __init__(
        self,
        sock: socket.socket,
        handler: Handler,
        *,
        on_close: Callable[[], Any] | None = None,
        on_bad_frame: Callable[[ProtocolError], Any] | None = None,
        fast: Callable[[bytes], bool] | None = None,
        name: str = "channel",
    ) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.name = name
        self._handler = handler
        self._on_close = on_close
        self._on_bad = on_bad_frame
        self._fast = fast
        self._pending: dict[int, asyncio.Future[Frame]] = {}
        self._ids = itertools.count(1)
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = False
        self._loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        receive = self.sock.recvmsg
        for _ in range(64):  # bounded so one busy peer cannot starve the loop
            try:
                data, anc, msg_flags, _ = receive(*RECV_ARGS)
                plain = not anc and not msg_flags & TRUNCATED
                if plain and self._fast is not None and self._fast(data):
                    # A call was served and its caller now waits for the reply: no next
                    # packet is likely, and a receive that finds none costs ~2 us (the
                    # BlockingIOError). The loop's level-triggered poll calls us again
                    # if one is there (an asyncio client pipelining calls).
                    return
                frame = frame_from(data, anc, msg_flags)
            except (BlockingIOError, InterruptedError):
                return
            except ProtocolError as exc:
                if self._on_bad is not None:
                    self._spawn(self._on_bad(exc))
                else:  # the peer learns what was wrong; the connection stays usable
                    logger.warning("%s: bad frame: %s", self.name, exc)
                    self.reply_error(0, exc)
                continue
            except OSError as exc:
                logger.debug("%s: receive failed: %s", self.name, exc)
                frame = None
            if frame is None:
                self.close()
                return
            waiter = self._pending.pop(frame.request_id, None) if frame.kind in _ANSWERS else None
            if waiter is not None:
                if not waiter.done():
                    waiter.set_result(frame)
                else:
                    frame.close_fds()
                continue
            self._spawn(self._handler(frame))

    def _spawn(self, result: Any) -> None:
        if asyncio.iscoroutine(result):
            task = self._loop.create_task(result)
            self._tasks.add(task)
            task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s: handler failed", self.name, exc_info=task.exception())

    def next_id(self) -> int:
        return next(self._ids)

    def send(self, encoded: tuple[bytes, list[int]], fds: Sequence[int] = ()) -> None:
        """Send a frame without blocking; a peer that stopped reading is disconnected.

        Why not block: the daemon must never stall on one client that does not read
        (its socket buffer holds ~200 KiB of frames before this happens).

        Raises:
            ClosedResourceError: the channel is closed, the peer went away or its
                receive buffer is full.
        """
        if self.closed:
            for fd in encoded[1]:
                os.close(fd)
            raise ClosedResourceError(f"{self.name}: connection is closed")
        try:
            send_encoded(self.sock, encoded, fds)
        except OSError as exc:
            reason = "peer is not reading" if isinstance(exc, BlockingIOError) else str(exc)
            self.close()
            raise ClosedResourceError(f"{self.name}: connection lost ({reason})") from None

    def send_bytes(self, data: bytes) -> bool:
        """Send a frame without descriptors, the lean way; False if the peer is gone.

        A peer that went away or stopped reading is disconnected, as with :meth:`send`.
        """
        try:
            self.sock.send(data)
        except OSError as exc:
            if not self.closed:
                logger.info("%s: connection lost (%s)", self.name, exc)
                self.close()
            return False
        return True

    async def request(
        self, op: str, args: dict[str, Any] | None = None, *, fds: Sequence[int] = (),
        timeout: float | None = None,
    ) -> Frame:  # fmt: skip
        """Send ``REQUEST {"op": op, **args}`` and wait for its REPLY frame.

        Raises:
            ClosedResourceError: the connection closed before the reply.
            TimeoutError: no reply within `timeout` seconds.
            HwkitError: the peer answered with an error (its class is kept).
        """
        request_id = self.next_id()
        frame = await self.exchange(
            encode_plist(Kind.REQUEST, {"op": op, **(args or {})}, request_id=request_id),
            request_id, fds=fds, timeout=timeout,
        )  # fmt: skip
        return frame

    async def exchange(
        self, encoded: tuple[bytes, list[int]], request_id: int, *, fds: Sequence[int] = (),
        timeout: float | None = None,
    ) -> Frame:  # fmt: skip
        """Send a frame and wait for the REPLY, RESULT or ERROR with its id."""
        waiter = self._loop.create_future()
        self._pending[request_id] = waiter
        try:
            self.send(encoded, fds)
            frame = await asyncio.wait_for(waiter, timeout)
        finally:
            self._pending.pop(request_id, None)
        if frame.kind == Kind.ERROR:
            frame.close_fds()
            raise_error(frame)
        return frame

    def reply(self, request_id: int, value: dict[str, Any], fds: Sequence[int] = ()) -> None:
        """Answer a request with a plist."""
        self.send(encode_plist(Kind.REPLY, value, request_id=request_id), fds)

    def reply_error(self, request_id: int, exc: BaseException) -> None:
        """Answer a request with an error (ignored if the peer is gone)."""
        code, body = error_body(exc)
        with contextlib.suppress(ClosedResourceError):
            self.send(encode_plist(Kind.ERROR, body, code=code, request_id=request_id))

    def close(self) -> None:
        """Stop reading, fail pending requests, close the socket; calls on_close once."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
        for waiter in self._pending.values():
            if not waiter.done():
                waiter.set_exception(ClosedResourceError(f"{self.name}: connection closed"))
        self._pending.clear()
        if self._on_close is not None:
            self._spawn(self._on_close())
