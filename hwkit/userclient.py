"""User clients: how applications call into a driver (I/O Kit's IOUserClient).

A driver names its user-client class in its personality (``IOUserClientClass``, a
dotted path). Each connection an application opens makes **one instance**, bound to
the driver (its provider) and to the connecting process's credentials, and served on
the driver's work loop, so methods need no locks against the driver's interrupt and
timer actions.

External methods are declared on the class, with I/O Kit's dispatch table checks::

    class SampleUserClient(UserClient):
        @external_method(0, scalar_in=2, scalar_out=1)
        def add(self, a: int, b: int) -> int:
            return a + b

        @external_method(1, struct_in=VARIABLE, struct_out=32)
        def digest(self, data: memoryview) -> bytes: ...

        @external_method(2, scalar_in=1, is_async=True)
        def delay(self, ref: AsyncReference, ms: int) -> None:
            ...  # later: ref.complete(ms)

- Scalars are u64, at most 16 in and 16 out. Structure sizes are exact byte counts
  or :data:`VARIABLE` (I/O Kit's ``kIOUCVariableStructureSize``).
- Before the method runs, the call is checked **exactly** as ``IOUserClient::
  externalMethod`` does: scalar-in count, structure-in size, and the caller's
  scalar-out capacity and structure-out capacity must equal the declaration (variable
  sizes excepted). A mismatch is a :class:`~hwkit.errors.BadArgument` naming the
  method and what was expected, and the method never sees the call.
- The method gets the scalar inputs as positional ints, then the structure input (a
  memoryview) when it declares one. It returns None, an int, bytes, or a tuple of the
  declared scalar outputs followed by the structure output.
- Async methods get an :class:`AsyncReference` first; the call returns its declared
  outputs at once and :meth:`AsyncReference.complete` sends the completion later
  (``sendAsyncResult64``).
- :meth:`UserClient.client_memory_for_type` shares memory (``clientMemoryForType``):
  a :class:`~hwkit.shmem.SharedMemory`, a DMA buffer, or a
  :class:`~hwkit.dataqueue.DataQueue`.
- :meth:`UserClient.client_close` runs when the application closes the connection or
  the driver goes away; :meth:`UserClient.client_died` when the application vanished
  without closing (it defaults to ``client_close``). Exactly one of them runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from hwkit.dataqueue import DataQueue
from hwkit.errors import BadArgument, ClosedResourceError, HwkitError, UnsupportedError
from hwkit.ipc import (
    ASYNC,
    MAX_SCALARS,
    PROTOCOL_VERSION,
    U64_MAX,
    Channel,
    Credentials,
    Frame,
    Kind,
    LeanCall,
    ProtocolError,
    encode,
    encode_plist,
    error_body,
)
from hwkit.shmem import buffer_client_fd

if TYPE_CHECKING:
    from hwkit.service import Service

logger = logging.getLogger("hwkit.userclient")

#: A structure size that is not checked (I/O Kit's kIOUCVariableStructureSize).
VARIABLE = 0xFFFFFFFF
#: Return types that are never awaitable (spares inspect.isawaitable on every call).
_PLAIN = frozenset({type(None), int, bytes, tuple})


@dataclass(frozen=True)
class ExternalMethod:
    """One row of a user client's dispatch table."""

    selector: int
    name: str
    scalar_in: int
    scalar_out: int
    struct_in: int
    struct_out: int
    is_async: bool
    function: Callable[..., Any]

    def describe(self) -> dict[str, Any]:
        """The row as the handshake sends it to clients."""
        return {
            "selector": self.selector, "name": self.name, "scalar_in": self.scalar_in,
            "scalar_out": self.scalar_out, "struct_in": self.struct_in,
            "struct_out": self.struct_out, "async": self.is_async,
        }  # fmt: skip

    def label(self, owner: str) -> str:
        return f"{owner}.{self.name} (selector {self.selector})"

    def check_call(self, owner: str, scalars: int, struct_in: int, capacity: tuple[int, int]):
        """Raise BadArgument unless a call's counts and sizes are exactly the declared ones."""
        problems = []
        if scalars != self.scalar_in:
            problems.append(f"{self.scalar_in} scalar inputs, got {scalars}")
        if self.struct_in != VARIABLE and struct_in != self.struct_in:
            problems.append(f"a {self.struct_in}-byte structure input, got {struct_in} bytes")
        if capacity[0] != self.scalar_out:
            problems.append(f"room for {self.scalar_out} scalar outputs, got {capacity[0]}")
        if self.struct_out != VARIABLE and capacity[1] != self.struct_out:
            problems.append(f"a {self.struct_out}-byte structure output, got {capacity[1]} bytes")
        if problems:
            raise BadArgument(f"{self.label(owner)} expects " + "; ".join(problems))


def external_method(
    selector: int,
    *,
    scalar_in: int = 0,
    scalar_out: int = 0,
    struct_in: int = 0,
    struct_out: int = 0,
    is_async: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a user-client method (see the module docstring).

    Raises:
        BadArgument: a scalar count above 16, a negative size or selector.
    """
    for what, count in (("scalar_in", scalar_in), ("scalar_out", scalar_out)):
        if not 0 <= count <= MAX_SCALARS:
            raise BadArgument(f"selector {selector}: {what}={count} must be 0..{MAX_SCALARS}")
    for what, size in (("struct_in", struct_in), ("struct_out", struct_out)):
        if not 0 <= size <= VARIABLE:
            raise BadArgument(f"selector {selector}: {what}={size} must be a size or VARIABLE")
    if not 0 <= selector < 2**32:
        raise BadArgument(f"selector {selector} must be 0..2**32-1")

    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__hwkit_method__ = (selector, scalar_in, scalar_out, struct_in, struct_out, is_async)  # type: ignore[attr-defined]
        return fn

    return mark


class AsyncReference:
    """Where an async method's completion goes (I/O Kit's ``io_async_ref64_t``).

    Threading: call :meth:`complete` / :meth:`fail` on the driver's work loop.
    """

    def __init__(self, channel: Channel, request_id: int, method: ExternalMethod) -> None:
        self._channel = channel
        self.request_id = request_id
        self.method = method
        self.done = False

    def complete(self, *scalars: int, struct: bytes = b"") -> bool:
        """Send the completion; False if the client is gone or it was already sent.

        Raises:
            BadArgument: more than 16 scalars or a value outside u64.
        """
        if self.done or self._channel.closed:
            return False
        self.done = True
        encoded = encode(Kind.ASYNC_RESULT, request_id=self.request_id, scalars=scalars,
                         body=struct)  # fmt: skip
        with contextlib.suppress(ClosedResourceError):
            self._channel.send(encoded)
            return True
        return False

    def fail(self, exc: BaseException) -> bool:
        """Complete with an error (the client raises it from its wait)."""
        if self.done or self._channel.closed:
            return False
        self.done = True
        code, body = error_body(exc)
        encoded = encode_plist(Kind.ASYNC_RESULT, body, code=code, request_id=self.request_id)
        with contextlib.suppress(ClosedResourceError):
            self._channel.send(encoded)
            return True
        return False


class UserClient:
    """Base class of user clients: subclass it and declare methods with :func:`external_method`.

    Attributes:
        provider: the driver this connection talks to.
        credentials: the connecting process (pid, uid, gid, groups) as the kernel saw it.
        client_type: the ``type`` argument of the open (I/O Kit's ``IOServiceOpen``).

    Threading: every hook and method runs on the driver's work loop.
    """

    methods: ClassVar[dict[int, ExternalMethod]] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        table = dict(cls.methods)
        for name, fn in vars(cls).items():
            spec = getattr(fn, "__hwkit_method__", None)
            if spec is None:
                continue
            selector, *counts, is_async = spec
            if selector in table and table[selector].name != name:
                raise BadArgument(
                    f"{cls.__name__}: selector {selector} is declared by both "
                    f"{table[selector].name} and {name}"
                )
            table[selector] = ExternalMethod(selector, name, *counts, is_async, fn)
        cls.methods = table

    def __init__(self, provider: Service, credentials: Credentials, client_type: int) -> None:
        self.provider = provider
        self.credentials = credentials
        self.client_type = client_type
        #: The driver's logger: lines carry its registry path.
        self.log = provider.log

    def init_with_task(self, credentials: Credentials, client_type: int) -> bool:
        """Accept or refuse the connection (``initWithTask``); False refuses it.

        The daemon has already applied the personality's HWUserClient* rules; this is
        for checks of the driver's own. The default accepts.
        """
        return True

    def client_memory_for_type(self, memory_type: int) -> Any:
        """Return the buffer or data queue to share for `memory_type`.

        Raises:
            UnsupportedError: by default (the driver shares no memory).
        """
        raise UnsupportedError(
            f"{type(self).__name__} shares no memory (memory type {memory_type})"
        )

    def client_close(self) -> None:
        """The connection is closing (the application closed it, or the driver is going)."""

    def client_died(self) -> None:
        """The application went away without closing (crash, kill, exit). Defaults to close."""
        self.client_close()


class UserClientServer:
    """Serves one user-client connection on the current asyncio loop.

    Made by the driver host (or the daemon in ``--in-process`` mode) when the daemon
    has accepted an open; `on_gone` runs once the connection is over.
    """

    def __init__(
        self,
        sock: socket.socket,
        client: UserClient,
        on_gone: Callable[[UserClientServer], Any] | None = None,
    ) -> None:
        self.client = client
        self.owner = f"{type(client).__name__}"
        self._on_gone = on_gone
        self._closing = False
        self._greeted = False
        self._methods = client.methods
        #: Scalar-only methods by the first 8 bytes of their plain call; filled once
        #: the client has said hello (calls before that take the general path).
        self._lean: dict[bytes, Callable[[bytes], bool]] = {}
        #: The daemon's id for this connection (its IOUserClient registry entry).
        self.connection_id = 0
        self.channel = Channel(
            sock, self._frame, on_close=self._closed, fast=self._fast_call,
            name=f"{self.owner} for {client.credentials}",
        )  # fmt: skip

    def _fast_call(self, data: bytes) -> bool:
        """Serve a plain call of a scalar-only method without a Frame (see LeanCall).

        Only a packet that is exactly such a call, with the declared counts and
        capacities, is served here; anything else (structures, async methods, any
        mismatch, other frames, calls before the handshake) returns False and takes the
        general path, which makes the same checks and says what was wrong. So the
        result is the same either way, only cheaper here.
        """
        serve = self._lean.get(data[:8])
        return serve is not None and serve(data)

    def _lean_server(self, lean: LeanCall, method: ExternalMethod) -> Callable[[bytes], bool]:
        """The fast path of one method: its constants bound once, none looked up per call."""
        client, function, send = self.client, method.function, self.channel.send_bytes
        size, capacities, unpack = lean.call_size, lean.capacities, lean.unpack_call
        pack, out, result_kind = lean.result.pack, lean.scalar_out, Kind.RESULT

        def serve(data: bytes) -> bool:
            if len(data) != size or data[16:24] != capacities:
                return False
            values = unpack(data)  # request id, scalars
            try:
                result = function(client, *values[1:])
                if out == 0 and result is None:
                    reply = pack(result_kind, 0, 0, 0, 0, values[0])
                elif out == 1 and type(result) is int and 0 <= result <= U64_MAX:
                    reply = pack(result_kind, 0, 1, 0, 0, values[0], result)
                elif type(result) not in _PLAIN and inspect.isawaitable(result):
                    self.channel._spawn(self._finish_async(values[0], method, result, 0))
                    return True
                else:  # tuples, and anything the general checks must judge
                    self._send_result(values[0], method, result, 0)
                    return True
            except Exception as exc:
                self.channel.reply_error(values[0], exc)
                return True
            send(reply)
            return True

        return serve

    # ---- frames -----------------------------------------------------------------------
    def _frame(self, frame: Frame) -> Any:
        try:
            if frame.kind == Kind.CALL and self._greeted:
                return self._call(frame)
            if frame.kind == Kind.REQUEST:
                return self._request(frame)
            raise ProtocolError(
                "say hello first" if not self._greeted else f"unexpected frame kind {frame.kind}"
            )
        except Exception as exc:
            frame.close_fds()
            self.channel.reply_error(frame.request_id, exc)
            return None

    def _call(self, frame: Frame) -> Any:
        method = self.client.methods.get(frame.code)
        if method is None:
            raise UnsupportedError(f"{self.owner} has no external method {frame.code}")
        frame.close_fds()
        method.check_call(self.owner, len(frame.scalars), len(frame.body), frame.capacity)
        args: list[Any] = list(frame.scalars)
        if method.struct_in:
            args.append(frame.body)
        if method.is_async:
            if not frame.flags & ASYNC:
                raise BadArgument(f"{method.label(self.owner)} is async: call it with call_async")
            args.insert(0, AsyncReference(self.channel, frame.request_id, method))
        result = method.function(self.client, *args)
        room = frame.capacity[1]
        if type(result) not in _PLAIN and inspect.isawaitable(result):
            return self._finish_async(frame.request_id, method, result, room)
        self._send_result(frame.request_id, method, result, room)
        return None

    async def _finish_async(
        self, request_id: int, method: ExternalMethod, result: Any, room: int
    ) -> None:
        try:
            value = await result
            self._send_result(request_id, method, value, room)
        except Exception as exc:
            self.channel.reply_error(request_id, exc)

    def _send_result(self, request_id: int, method: ExternalMethod, value: Any, room: int) -> None:
        scalars, struct = self._outputs(method, value, room)
        self.channel.send(encode(Kind.RESULT, request_id=request_id, scalars=scalars, body=struct))

    def _outputs(self, method: ExternalMethod, value: Any, room: int) -> tuple[list[int], bytes]:
        if not method.struct_out:  # the common shapes, checked without building lists
            if value is None and not method.scalar_out:
                return [], b""
            if type(value) is int and method.scalar_out == 1:
                return [value], b""
        items = list(value) if isinstance(value, tuple) else [] if value is None else [value]
        struct = b""
        if method.struct_out:
            if not items or not isinstance(items[-1], bytes | bytearray | memoryview):
                raise HwkitError(f"driver bug: {method.label(self.owner)} returned no structure")
            struct = bytes(items.pop())
            if len(struct) > room:
                raise BadArgument(
                    f"{method.label(self.owner)} produced {len(struct)} bytes; "
                    f"the caller left room for {room}"
                )
        if len(items) != method.scalar_out or not all(isinstance(v, int) for v in items):
            raise HwkitError(
                f"driver bug: {method.label(self.owner)} returned {value!r}; "
                f"it declares {method.scalar_out} scalar outputs"
            )
        if method.struct_out not in (0, VARIABLE) and len(struct) != method.struct_out:
            raise HwkitError(
                f"driver bug: {method.label(self.owner)} returned {len(struct)} bytes, "
                f"declared {method.struct_out}"
            )
        return items, struct

    def _request(self, frame: Frame) -> None:
        body = frame.plist()
        op = body.get("op")
        if op == "hello":
            version = body.get("version")
            if version != PROTOCOL_VERSION:
                self.channel.reply_error(frame.request_id, ProtocolError(
                    f"protocol version {version!r} not supported: this driver host speaks "
                    f"{PROTOCOL_VERSION}; use the hwkit of the daemon's installation"
                ))  # fmt: skip
                self.channel.close()
                return
            self._greeted = True
            for m in self._methods.values():
                if LeanCall.serves(m.is_async, m.struct_in, m.struct_out):
                    lean = LeanCall(m.selector, m.scalar_in, m.scalar_out)
                    self._lean[lean.prefix] = self._lean_server(lean, m)
            methods = [m.describe() for m in sorted(self.client.methods.values(),
                                                    key=lambda m: m.selector)]  # fmt: skip
            self.channel.reply(frame.request_id, {
                "version": PROTOCOL_VERSION, "class": self.owner, "methods": methods,
                "service": self.client.provider.entry_id,
            })  # fmt: skip
        elif not self._greeted:
            raise ProtocolError("say hello first")
        elif op == "map":
            self._map(frame.request_id, body.get("type"))
        elif op == "close":
            self.channel.reply(frame.request_id, {})
            self.shutdown(died=False)
        else:
            raise ProtocolError(f"unknown request {op!r}")

    def _map(self, request_id: int, memory_type: Any) -> None:
        if isinstance(memory_type, bool) or not isinstance(memory_type, int):
            raise BadArgument(f"memory type must be an integer, not {memory_type!r}")
        buffer = self.client.client_memory_for_type(memory_type)
        if isinstance(buffer, DataQueue):
            fds = list(buffer.client_fds())
            reply = {"kind": "queue", "size": buffer.size, "read_only": False}
        else:
            fd, size, read_only = buffer_client_fd(buffer)
            fds, reply = [fd], {"kind": "memory", "size": size, "read_only": read_only}
        try:
            self.channel.reply(request_id, reply, fds)
        finally:
            for fd in fds:
                os.close(fd)

    # ---- ending -------------------------------------------------------------------------
    def _closed(self) -> None:
        self.shutdown(died=True)

    def shutdown(self, died: bool, notify: int | None = None) -> None:
        """End the connection once: run client_close (or client_died), close the socket.

        `notify`, when given, is an interest message sent to the application first
        (the driver is terminating).
        """
        if self._closing:
            return
        self._closing = True
        if notify is not None and not self.channel.closed:
            with contextlib.suppress(ClosedResourceError):
                self.channel.send(encode_plist(Kind.NOTIFY, {
                    "kind": "interest", "service": self.client.provider.entry_id,
                    "message": notify,
                }))  # fmt: skip
        try:
            (self.client.client_died if died else self.client.client_close)()
        except Exception:
            logger.exception("%s: %s raised", self.owner, "client_died" if died else "client_close")
        self.channel.close()
        if self._on_gone is not None:
            self._on_gone(self)


async def open_user_client(
    driver: Service,
    client_class: type[UserClient],
    sock: socket.socket,
    credentials: Credentials,
    client_type: int,
    on_gone: Callable[[UserClientServer], Any] | None = None,
) -> UserClientServer:
    """Make the user client for one connection and start serving it.

    Raises:
        PermissionDenied: ``init_with_task`` refused the connection.
    """
    from hwkit.errors import PermissionDenied

    client = client_class(driver, credentials, client_type)
    accepted = client.init_with_task(credentials, client_type)
    if inspect.isawaitable(accepted):
        accepted = await accepted
    if not accepted:
        sock.close()
        raise PermissionDenied(
            f"{client_class.__name__} of {driver.path()} refused {credentials} (init_with_task)"
        )
    await asyncio.sleep(0)
    return UserClientServer(sock, client, on_gone)


def user_client_class(driver: Service) -> type[UserClient]:
    """Import the driver's ``IOUserClientClass``.

    Raises:
        UnsupportedError: the driver names none.
        NotFoundError: it cannot be imported.
        BadArgument: it is not a UserClient subclass.
    """
    from hwkit.errors import NotFoundError

    dotted = driver.get_property("IOUserClientClass")
    where = f"{driver.class_name} at {driver.path()}"
    if not isinstance(dotted, str):
        raise UnsupportedError(
            f"{where} offers no user client (its personality has no IOUserClientClass)"
        )
    module_name, _, name = dotted.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise NotFoundError(
            f"{where}: IOUserClientClass {dotted!r} cannot be loaded: {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, UserClient)):
        raise BadArgument(f"{where}: IOUserClientClass {dotted!r} is not a hwkit.UserClient")
    return cls
