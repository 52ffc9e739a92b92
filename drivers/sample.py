"""A software driver that needs no hardware: the whole daemon-to-application path to try.

It matches ``IOResources`` (so it starts as soon as hwkit-daemon does) and offers a
user client with every kind of external method and both kinds of shared memory:

==========  =========  ====================================================================
selector    name       what
==========  =========  ====================================================================
0           add        2 scalars in, 1 out: their sum modulo 2**64
1           digest     a variable structure in; its length and its SHA-256 (32 bytes) out
2           swap       a 16-byte structure in (two u64), the same words swapped out
3           fill       1 scalar in: write that byte over the status buffer's payload
4           delay      async, 1 scalar in: completes after that many milliseconds
5           produce    async, count and size in: enqueue that many entries into the
                       caller's data queue (waiting for the client to drain it whenever
                       it is full), then complete
6           stats      2 scalars out: timer ticks so far, open user clients
==========  =========  ====================================================================

Memory types: 0 = the status buffer (read-only to clients: a u64 tick count at offset 0,
then the payload ``fill`` writes), 1 = this connection's data queue, fed a 16-byte
entry (tick number, ``CLOCK_MONOTONIC`` ns) by the driver's timer, 2 = a scratch buffer
clients may write.

Try it::

    hwkit-daemon --socket /tmp/hwkit.sock &
    HWKIT_SOCKET=/tmp/hwkit.sock hwkit ioreg -l
    HWKIT_SOCKET=/tmp/hwkit.sock hwkit call SampleDriver add 2 3
"""

from __future__ import annotations

import asyncio
import hashlib
import struct
import time
from collections.abc import Mapping
from typing import Any

from hwkit.dataqueue import DataQueue
from hwkit.errors import BadArgument, ClosedResourceError
from hwkit.ipc import spawn
from hwkit.service import Service
from hwkit.shmem import SharedMemory
from hwkit.userclient import VARIABLE, AsyncReference, UserClient, external_method
from hwkit.workloop import TimerEventSource

STATUS, QUEUE, SCRATCH = 0, 1, 2
PAYLOAD = 64  # status buffer: tick count at 0, payload from here
QUEUE_CAPACITY = 1 << 20  # 256 entries of 4 KiB: room to stream without ping-pong
TICK = struct.Struct("<QQ")


class SampleDriver(Service):
    """Keeps a tick counter on a timer and feeds it to every client's data queue."""

    def start(self, provider: Service) -> bool:
        self.status = SharedMemory(4096, "sample-status", read_only=True)
        self.scratch = SharedMemory(4096, "sample-scratch")
        self.words = self.status.array("<u8")
        self.queues: set[DataQueue] = set()
        self.open_clients = 0
        self.ticks = 0
        self.interval_ms = int(self.get_property("TickIntervalMS", 50))
        self.timer = TimerEventSource(self, self._tick)
        self.get_work_loop().add_event_source(self.timer)
        self.timer.set_timeout_ms(self.interval_ms)
        self.register_service()
        return True

    def _tick(self, source: TimerEventSource) -> None:
        self.ticks += 1
        self.words[0] = self.ticks
        entry = TICK.pack(self.ticks, time.monotonic_ns())
        for queue in self.queues:
            queue.enqueue(entry)  # a full queue drops the tick (IODataQueue never overwrites)
        source.set_timeout_ms(self.interval_ms)

    def set_properties(self, properties: Mapping[str, object]) -> None:
        """Clients may set ``TickIntervalMS`` (1..10000).

        Raises:
            BadArgument: another key, or a value out of range.
        """
        for key, value in properties.items():
            if key != "TickIntervalMS" or not isinstance(value, int) or not 1 <= value <= 10000:
                raise BadArgument(f"{self.path()}: only TickIntervalMS (1..10000) may be set, "
                                  f"not {key}={value!r}")  # fmt: skip
        self.interval_ms = int(properties["TickIntervalMS"])  # type: ignore[call-overload]
        self.set_property("TickIntervalMS", self.interval_ms)

    def stop(self, provider: Service) -> None:
        self.get_work_loop().remove_event_source(self.timer)
        del self.words
        self.status.close()
        self.scratch.close()


class SampleUserClient(UserClient):
    """One application's connection to the sample driver."""

    provider: SampleDriver

    def init_with_task(self, credentials: Any, client_type: int) -> bool:
        self.queue: DataQueue | None = None
        self.provider.open_clients += 1
        return True

    @external_method(0, scalar_in=2, scalar_out=1)
    def add(self, a: int, b: int) -> int:
        return (a + b) % 2**64

    @external_method(1, struct_in=VARIABLE, scalar_out=1, struct_out=32)
    def digest(self, data: memoryview) -> tuple[int, bytes]:
        return len(data), hashlib.sha256(data).digest()

    @external_method(2, struct_in=16, struct_out=16)
    def swap(self, data: memoryview) -> bytes:
        first, second = struct.unpack("<QQ", data)
        return struct.pack("<QQ", second, first)

    @external_method(3, scalar_in=1)
    def fill(self, value: int) -> None:
        self.provider.status.array()[PAYLOAD:] = value & 0xFF

    @external_method(4, scalar_in=1, is_async=True)
    def delay(self, ref: AsyncReference, ms: int) -> None:
        asyncio.get_running_loop().call_later(ms / 1000, ref.complete, ms)

    @external_method(5, scalar_in=2, is_async=True)
    def produce(self, ref: AsyncReference, count: int, size: int) -> None:
        if self.queue is None:
            raise BadArgument("produce: map the data queue (memory type 1) first")
        if size > QUEUE_CAPACITY // 2:
            raise BadArgument(f"produce: size {size} exceeds {QUEUE_CAPACITY // 2}")
        spawn(self._produce(ref, self.queue, count, bytes(size)), "sample produce")

    async def _produce(self, ref: AsyncReference, queue: DataQueue, count: int, data: bytes):
        refused = 0
        try:
            for _ in range(count):
                while not queue.enqueue(data):
                    refused += 1
                    await queue.wait_serviced()  # the consumer is behind: until it caught up
        except ClosedResourceError:
            return  # the client closed its connection meanwhile
        ref.complete(count, refused)

    @external_method(6, scalar_out=2)
    def stats(self) -> tuple[int, int]:
        return self.provider.ticks, self.provider.open_clients

    def client_memory_for_type(self, memory_type: int) -> Any:
        if memory_type == STATUS:
            return self.provider.status
        if memory_type == SCRATCH:
            return self.provider.scratch
        if memory_type == QUEUE:
            if self.queue is None:
                self.queue = DataQueue(QUEUE_CAPACITY, "sample-queue")
                self.provider.queues.add(self.queue)
            return self.queue
        raise BadArgument(f"sample driver: no memory type {memory_type} (0, 1 or 2)")

    def client_close(self) -> None:
        self.provider.open_clients -= 1
        if self.queue is not None:
            self.provider.queues.discard(self.queue)
            self.queue.close()
            self.queue = None
