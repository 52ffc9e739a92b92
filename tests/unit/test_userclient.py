"""User clients served over a socket pair: the dispatch checks, async methods, shared
memory, data queues and the hooks, without a daemon (the daemon's path is in
tests/e2e)."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwkit.client import Connection
from hwkit.dataqueue import DataQueue
from hwkit.errors import BadArgument, NotFoundError, UnsupportedError
from hwkit.ipc import (
    HEADER,
    MAX_FRAME,
    PROTOCOL_VERSION,
    Credentials,
    Kind,
    encode,
    encode_plist,
    recv_frame,
    seqpacket_pair,
)
from hwkit.service import Service
from hwkit.shmem import SharedMemory
from hwkit.userclient import VARIABLE, AsyncReference, UserClient, UserClientServer, external_method

TIMEOUT = 5.0


class Driver(Service):
    """A provider with the two kinds of shared memory."""

    def __init__(self) -> None:
        super().__init__()
        self.status = SharedMemory(4096, "test-status", read_only=True)
        self.scratch = SharedMemory(8192, "test-scratch")
        self.events: list[str] = []


class Client(UserClient):
    provider: Driver

    @external_method(0, scalar_in=2, scalar_out=1)
    def add(self, a: int, b: int) -> int:
        return (a + b) % 2**64

    @external_method(1, struct_in=VARIABLE, scalar_out=1, struct_out=VARIABLE)
    def echo(self, data: memoryview) -> tuple[int, bytes]:
        return len(data), bytes(data)

    @external_method(2, struct_in=8, struct_out=8)
    def swap(self, data: memoryview) -> bytes:
        return bytes(data[4:]) + bytes(data[:4])

    @external_method(3, scalar_in=1, is_async=True)
    def later(self, ref: AsyncReference, value: int) -> None:
        asyncio.get_running_loop().call_later(0.01, ref.complete, value + 1)

    @external_method(4, is_async=True)
    def broken_later(self, ref: AsyncReference) -> None:
        asyncio.get_running_loop().call_later(0.01, ref.fail, BadArgument("no good"))

    @external_method(5, scalar_out=1)
    def wrong_output(self) -> tuple[int, int]:
        return 1, 2

    @external_method(6, scalar_in=1)
    def write(self, value: int) -> None:
        self.provider.status.array()[:] = value & 0xFF

    @external_method(7, scalar_in=2, scalar_out=2)
    def divide(self, a: int, b: int) -> tuple[int, int]:
        if b == 0:
            raise BadArgument(f"divide: {a} by zero")
        return divmod(a, b)

    @external_method(8, scalar_out=1)
    async def awaited(self) -> int:
        await asyncio.sleep(0)
        return 7

    def client_memory_for_type(self, memory_type: int) -> Any:
        if memory_type == 0:
            return self.provider.status
        if memory_type == 1:
            return self.provider.scratch
        if memory_type == 2:
            self.queue = DataQueue(1024, "test-queue")
            return self.queue
        return super().client_memory_for_type(memory_type)

    def client_close(self) -> None:
        self.provider.events.append("close")

    def client_died(self) -> None:
        self.provider.events.append("died")


class Loop:
    """An asyncio loop on a thread, serving user clients as a driver host does."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.driver = Driver()
        self.servers: list[UserClientServer] = []

    def serve(self) -> socket.socket:
        """A new connection; returns the application's end."""
        ours, theirs = seqpacket_pair()
        creds = Credentials(os.getpid(), os.getuid(), os.getgid())

        async def start() -> None:
            self.servers.append(UserClientServer(theirs, Client(self.driver, creds, 0)))

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(TIMEOUT)
        return ours

    def run(self, fn: Any) -> Any:
        async def call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(TIMEOUT)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)


@pytest.fixture(scope="module")
def host() -> Iterator[Loop]:
    loop = Loop()
    yield loop
    loop.close()


@pytest.fixture
def conn(host: Loop) -> Iterator[Connection]:
    connection = Connection(host.serve(), timeout=TIMEOUT)
    yield connection
    connection.close()


def test_the_handshake_lists_the_dispatch_table(conn):
    assert conn.class_name == "Client"
    assert conn.methods["add"].scalar_in == 2
    assert conn.methods["echo"].struct_in == VARIABLE
    assert conn.methods["later"].is_async


def test_scalar_and_struct_methods(conn):
    assert conn.call("add", 2, 3).scalars == (5,)
    assert conn.call(0, 2**64 - 1, 2).scalars == (1,)
    assert conn.call("echo", struct=b"hello", struct_out=16) == ((5,), b"hello")
    assert conn.call("swap", struct=b"abcdefgh").struct == b"efghabcd"


def test_big_structures_travel_as_a_memfd(conn):
    data = os.urandom(100_000)
    result = conn.call("echo", struct=data, struct_out=len(data))
    assert result.scalars == (len(data),) and result.struct == data


@pytest.mark.parametrize(
    ("method", "scalars", "struct", "expected"),
    [
        ("add", (1,), b"", "2 scalar inputs, got 1"),
        ("add", (1, 2, 3), b"", "2 scalar inputs, got 3"),
        ("swap", (), b"abc", "8-byte structure input, got 3 bytes"),
        ("swap", (), b"x" * 9, "8-byte structure input, got 9 bytes"),
    ],
)
def test_wrong_counts_are_refused_before_the_driver_sees_them(conn, method, scalars, struct,
                                                              expected):  # fmt: skip
    # Bypass the client library's own checks: send the raw frame.
    info = conn.methods[method]
    request_id = conn._io.next_id()
    capacity = (info.scalar_out, info.struct_out if info.struct_out != VARIABLE else 64)
    encoded = encode(Kind.CALL, code=info.selector, request_id=request_id, scalars=scalars,
                     body=struct, capacity=capacity)  # fmt: skip
    with pytest.raises(BadArgument, match=expected) as caught:
        conn._io.exchange(encoded, request_id)
    assert f"Client.{method} (selector {info.selector})" in str(caught.value)
    assert conn.call("add", 1, 1).scalars == (2,)  # still served


def test_wrong_output_capacity_is_refused(conn):
    request_id = conn._io.next_id()
    encoded = encode(Kind.CALL, code=0, request_id=request_id, scalars=(1, 2), capacity=(2, 0))
    with pytest.raises(BadArgument, match="room for 1 scalar outputs, got 2"):
        conn._io.exchange(encoded, request_id)


def test_unknown_selector_and_name(conn):
    request_id = conn._io.next_id()
    encoded = encode(Kind.CALL, code=99, request_id=request_id, capacity=(0, 0))
    with pytest.raises(UnsupportedError, match="no external method 99"):
        conn._io.exchange(encoded, request_id)
    with pytest.raises(NotFoundError, match="no method 'nope'"):
        conn.call("nope")


def test_a_driver_returning_the_wrong_outputs_is_an_error_not_a_crash(conn):
    with pytest.raises(Exception, match="driver bug"):
        conn.call("wrong_output")
    assert conn.call("add", 1, 2).scalars == (3,)


def test_scalar_calls_take_the_lean_path_with_the_general_results(conn):
    """Tuples, errors, awaitables and wrong counts through the lean path of both ends."""
    assert conn._methods.lean.keys() >= {"add", "write", "divide", 7, "awaited"}
    assert conn.call("divide", 17, 5).scalars == (3, 2)
    with pytest.raises(BadArgument, match="divide: 17 by zero"):
        conn.call("divide", 17, 0)
    assert conn.call("awaited").scalars == (7,)
    assert conn.call("write", 3).scalars == ()
    with pytest.raises(BadArgument, match="expects 2 scalar inputs, got 1"):
        conn.call("divide", 17)
    with pytest.raises(BadArgument, match="is not an integer"):
        conn.call("add", 1, 2**64)
    assert conn.call(0, 2**64 - 1, 1).scalars == (0,)  # by selector too


def test_a_lean_call_before_the_handshake_is_refused(host):
    sock = host.serve()
    try:
        call, _ = encode(Kind.CALL, code=0, request_id=5, scalars=(1, 2), capacity=(1, 0))
        sock.send(call)
        sock.settimeout(TIMEOUT)
        reply = recv_frame(sock)
        assert reply is not None and (reply.kind, reply.request_id) == (Kind.ERROR, 5)
        assert "say hello first" in reply.plist()["message"]
    finally:
        sock.close()


def test_async_methods_complete_later(conn):
    pending = conn.call_async("later", 41)
    assert pending.immediate.scalars == ()
    assert pending.wait(TIMEOUT).scalars == (42,)
    with pytest.raises(BadArgument, match="no good"):
        conn.call_async("broken_later").wait(TIMEOUT)


def test_an_async_method_called_synchronously_is_refused(conn):
    request_id = conn._io.next_id()
    encoded = encode(Kind.CALL, code=3, request_id=request_id, scalars=(1,), capacity=(0, 0))
    with pytest.raises(BadArgument, match="is async"):
        conn._io.exchange(encoded, request_id)


def test_shared_memory_is_mapped_without_copies(host, conn):
    status = conn.map_memory(0)
    assert not status.flags.writeable
    conn.call("write", 7)
    assert (status == 7).all()
    conn.call("write", 9)
    assert (status == 9).all()  # the same pages, not a copy
    scratch = conn.map_memory(1, np.uint32)
    assert scratch.flags.writeable and scratch.size == 2048
    scratch[0] = 0xDEADBEEF
    assert host.driver.scratch.array(np.uint32)[0] == 0xDEADBEEF


def test_a_read_only_buffer_is_sealed_against_writable_mappings(conn):
    import mmap

    frame = conn._io.request("map", {"type": 0})
    fd = frame.take_fd()
    try:
        with pytest.raises(PermissionError):
            mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)


def test_unmappable_memory_types_are_errors(conn):
    with pytest.raises(UnsupportedError, match="shares no memory"):
        conn.map_memory(5)


def test_a_data_queue_reaches_the_client(host, conn):
    reader = conn.open_queue(2)
    queue = next(s for s in host.servers if s.client is not None and hasattr(s.client, "queue"))
    entries = [bytes([i]) * (i + 1) for i in range(20)]
    host.run(lambda: [queue.client.queue.enqueue(e) for e in entries])
    assert reader.wait_for_data(TIMEOUT)
    assert reader.drain() == entries
    reader.close()


def test_close_runs_client_close_and_death_runs_client_died(host):
    sock = host.serve()
    Connection(sock, timeout=TIMEOUT).close()
    died = host.serve()
    Connection(died, timeout=TIMEOUT)
    died.close()  # no close request: the application vanished
    deadline = TIMEOUT
    while host.driver.events[-2:] != ["close", "died"] and deadline > 0:
        threading.Event().wait(0.01)
        deadline -= 0.01
    assert host.driver.events[-2:] == ["close", "died"]


def test_the_wrong_protocol_version_is_refused_and_closed(host):
    sock = host.serve()
    sock.settimeout(TIMEOUT)
    data, _fds = encode_plist(Kind.REQUEST, {"op": "hello", "version": PROTOCOL_VERSION + 1},
                             request_id=1)  # fmt: skip
    sock.send(data)
    reply = recv_frame(sock)
    assert reply is not None and reply.kind == Kind.ERROR
    assert "protocol version" in reply.plist()["message"]
    assert recv_frame(sock) is None  # closed


def test_declarations_are_checked():
    with pytest.raises(BadArgument, match="scalar_in=17"):
        external_method(0, scalar_in=17)
    with pytest.raises(BadArgument, match="declared by both"):

        class Twice(UserClient):
            @external_method(0)
            def one(self) -> None: ...

            @external_method(0)
            def two(self) -> None: ...


# ---- malformed frames (property-based) ------------------------------------------------------
def _garbage() -> st.SearchStrategy[bytes]:
    header = st.builds(
        lambda kind, flags, count, reserved, code, rid, tail: (
            HEADER.pack(kind, flags, count, reserved, code, rid) + tail
        ),
        st.integers(0, 255), st.integers(0, 255), st.integers(0, 255), st.sampled_from([0, 0, 1]),
        st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1), st.binary(max_size=300),
    )  # fmt: skip
    calls = st.builds(
        lambda sel, count, cap, scalars, body: (
            HEADER.pack(Kind.CALL, 0, count, 0, sel, 7) + struct.pack("<II", *cap)
            + b"".join(struct.pack("<Q", s) for s in scalars) + body
        ),
        st.integers(0, 8), st.integers(0, 20), st.tuples(st.integers(0, 20), st.integers(0, 5000)),
        st.lists(st.integers(0, 2**64 - 1), max_size=20), st.binary(max_size=200),
    )  # fmt: skip
    oversized = st.integers(MAX_FRAME - 10, MAX_FRAME + 100).map(lambda n: b"\x04" + bytes(n))
    return st.one_of(st.binary(max_size=40), header, calls, oversized)


@pytest.fixture(scope="module")
def greeted(host: Loop) -> Iterator[Connection]:
    connection = Connection(host.serve(), timeout=TIMEOUT)
    yield connection
    connection.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frames=st.lists(_garbage(), min_size=1, max_size=4))
def test_malformed_frames_get_an_error_or_a_clean_close(host, greeted, frames):
    raw = host.serve()
    raw.settimeout(TIMEOUT)
    for data in frames:
        try:
            raw.send(data)
        except OSError:
            break  # refused at the socket (oversized) or closed by the server
        reply = recv_frame(raw)
        if reply is None:
            break  # a clean close
        assert reply.kind in (Kind.ERROR, Kind.REPLY, Kind.RESULT, Kind.ASYNC_RESULT)
        reply.close_fds()
    raw.close()
    # The host is alive and still serves another client.
    assert greeted.call("add", 20, 22).scalars == (42,)
