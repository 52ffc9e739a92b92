"""Data queues: I/O Kit's IODataQueue, a single-producer single-consumer ring in shared memory.

The layout is xnu's ``IODataQueueMemory`` (``IOSharedDataQueue.cpp``), little-endian::

    u32 queueSize, u32 head, u32 tail       # 12-byte header
    queueSize bytes of entries: {u32 size; u8 data[size]} (no padding)
    appendix: u32 version                    # IODataQueueAppendix (the port is an eventfd)

and so are the rules:

- :meth:`DataQueue.enqueue` returns False when the entry does not fit: it never
  overwrites and never blocks; the tail never catches up with the head (one entry's
  worth of space stays free so head == tail always means empty);
- an entry that does not fit before the end wraps to offset 0, and its size is also
  written at the old tail when four bytes are left there, so the consumer knows to
  wrap;
- the consumer is woken (the eventfd is written) **only when the queue goes from empty
  to non-empty**; a consumer therefore drains the queue before it waits again.

A producer that finds the queue full can wait for the consumer instead of retrying:
the consumer writes a second eventfd when a dequeue **empties** the queue (DriverKit's
``IODataQueueDispatchSource`` data-serviced handler), and
:meth:`DataQueue.wait_serviced` waits for it. Why: a producer spinning on a full queue
takes the CPU its consumer needs; on a loaded 2-core machine 4 KiB entries streamed at
0.4x a socket's rate that way.

The producer is the driver (in its host); the consumer is a client that received the
memfd and the eventfd. Head and tail are aligned 32-bit words written with single
stores, which x86-TSO makes safe to publish with plain loads and stores; the consumer
re-checks the queue at least every 100 ms while it waits, which bounds the cost of the
one reordering x86 allows (a later load passing an earlier store) to latency.

Threading: one producer thread and one consumer thread (or process).
"""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import os
import select
import struct
import time
from typing import Any

from hwkit.errors import BadArgument, ClosedResourceError, HwkitError

HEADER_SIZE = 12  # queueSize, head, tail
ENTRY_HEADER_SIZE = 4
APPENDIX_SIZE = 4
APPENDIX_VERSION = 0
_U32 = struct.Struct("<I")
_RECHECK = 0.1


def queue_memory_size(capacity: int) -> int:
    """Bytes of shared memory a queue of `capacity` data bytes needs."""
    return HEADER_SIZE + capacity + APPENDIX_SIZE


class _Ring:
    """The shared layout: header words as a 32-bit view, entries as bytes."""

    def __init__(self, mapping: mmap.mmap, capacity: int) -> None:
        self.mapping = mapping
        # Only the header as 32-bit words: the entry space may be any length.
        self.words = memoryview(mapping)[:HEADER_SIZE].cast("I")  # queueSize, head, tail
        self.buf = memoryview(mapping)
        self.capacity = capacity

    def release(self) -> None:
        self.words.release()
        self.buf.release()
        self.mapping.close()


class DataQueue:
    """The producer side: a driver makes one and enqueues; clients receive it by map.

    Args:
        capacity: bytes of entry space (each entry also takes a 4-byte size).
        name: shown in ``/proc/<pid>/maps``.

    Raises:
        BadArgument: capacity below 8 bytes or above 2**31.
    """

    def __init__(self, capacity: int, name: str = "hwkit-dataqueue") -> None:
        if not 8 <= capacity <= 2**31:
            raise BadArgument(f"data queue {name!r}: capacity {capacity} not in 8..2**31 bytes")
        self.name = name
        self.capacity = capacity
        self.size = queue_memory_size(capacity)
        self.fd: int | None = os.memfd_create(name, os.MFD_CLOEXEC)
        os.ftruncate(self.fd, self.size)
        self._ring = _Ring(mmap.mmap(self.fd, self.size, mmap.MAP_SHARED), capacity)
        self._ring.words[0] = capacity
        _U32.pack_into(self._ring.buf, HEADER_SIZE + capacity, APPENDIX_VERSION)
        self.eventfd: int | None = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        #: Written by the consumer when a dequeue empties the queue.
        self.serviced_eventfd: int | None = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self._stats = {"enqueued": 0, "full": 0, "notifications": 0, "serviced_waits": 0}
        self._waiting: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None

    def enqueue(self, data: bytes | bytearray | memoryview) -> bool:
        """Append one entry; False when the queue is full (nothing is overwritten).

        Raises:
            ClosedResourceError: the queue was closed.
        """
        if self.fd is None:
            raise ClosedResourceError(f"data queue {self.name!r} is closed")
        ring = self._ring
        words, buf, size = ring.words, ring.buf, len(data)
        entry = size + ENTRY_HEADER_SIZE
        tail, head, capacity = words[2], words[1], ring.capacity
        if tail >= head:
            if tail + entry <= capacity:
                at, new_tail = tail, tail + entry
            elif head > entry:  # wrap: the size at the old tail tells the consumer
                if capacity - tail >= ENTRY_HEADER_SIZE:
                    _U32.pack_into(buf, HEADER_SIZE + tail, size)
                at, new_tail = 0, entry
            else:
                self._stats["full"] += 1
                return False
        elif head - tail > entry:
            at, new_tail = tail, tail + entry
        else:
            self._stats["full"] += 1
            return False
        start = HEADER_SIZE + at
        _U32.pack_into(buf, start, size)
        buf[start + ENTRY_HEADER_SIZE : start + entry] = data
        words[2] = new_tail  # publish
        self._stats["enqueued"] += 1
        if tail == words[1]:  # it was empty: wake the consumer
            self._stats["notifications"] += 1
            os.eventfd_write(self.eventfd, 1)  # type: ignore[arg-type]
        return True

    async def wait_serviced(self, timeout: float | None = None) -> bool:
        """Wait until the queue is empty (the consumer has serviced it); False on timeout.

        For a producer that found the queue full: ``while not q.enqueue(data): await
        q.wait_serviced()``. It returns at once if the queue is empty already.

        Raises:
            ClosedResourceError: the queue was closed (before or while waiting).

        Threading: call on the producer's event loop.
        """
        if self.serviced_eventfd is None:
            raise ClosedResourceError(f"data queue {self.name!r} is closed")
        self._stats["serviced_waits"] += 1
        fd, loop = self.serviced_eventfd, asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(fd)  # an old signal: the queue may have filled again since
        while self._ring.words[1] != self._ring.words[2]:  # head != tail: not empty yet
            left = _RECHECK if deadline is None else min(_RECHECK, deadline - loop.time())
            if left <= 0:
                return False
            woke: asyncio.Future[None] = loop.create_future()
            self._waiting = (loop, woke)  # close() sets it
            try:
                await _until_readable(loop, fd, woke, left)
            finally:
                self._waiting = None
            if self.serviced_eventfd is None:
                raise ClosedResourceError(f"data queue {self.name!r} was closed while waiting")
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(fd)
        return True

    def statistics(self) -> dict[str, int]:
        """Entries enqueued, refusals because full, wake-ups sent, waits for the consumer."""
        return dict(self._stats)

    def client_fds(self) -> tuple[int, int, int]:
        """New descriptors (memory, data eventfd, serviced eventfd) to send to a client.

        The caller closes them.

        Raises:
            ClosedResourceError: the queue was closed.
        """
        if self.fd is None or self.eventfd is None or self.serviced_eventfd is None:
            raise ClosedResourceError(f"data queue {self.name!r} is closed")
        return os.dup(self.fd), os.dup(self.eventfd), os.dup(self.serviced_eventfd)

    def close(self) -> None:
        """Release the memory and the eventfds (clients keep their mappings).

        A :meth:`wait_serviced` in progress raises ClosedResourceError. Call it on the
        producer's loop thread.
        """
        if self.fd is None:
            return
        if self._waiting is not None:  # unwatch before closing; the waiter then raises
            loop, woke = self._waiting
            loop.remove_reader(self.serviced_eventfd)  # type: ignore[arg-type]
            _wake(woke)
        self._ring.release()
        os.close(self.fd)
        os.close(self.eventfd)  # type: ignore[arg-type]
        os.close(self.serviced_eventfd)  # type: ignore[arg-type]
        self.fd = self.eventfd = self.serviced_eventfd = None


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _until_readable(loop: asyncio.AbstractEventLoop, fd: int, woke: asyncio.Future[None],
                          timeout: float) -> None:  # fmt: skip
    """Wait up to `timeout` s until `fd` is readable or someone else sets `woke`."""
    loop.add_reader(fd, _wake, woke)
    try:
        await asyncio.wait_for(woke, timeout)
    except TimeoutError:
        pass
    finally:
        loop.remove_reader(fd)


class DataQueueReader:
    """The consumer side (I/O Kit's ``IODataQueueDequeue`` and ``WaitForAvailableData``).

    Made by :meth:`hwkit.client.Connection.open_queue` from the descriptors the driver
    sent (memory, data eventfd, and the serviced eventfd a waiting producer watches);
    takes ownership of them.

    Raises:
        HwkitError: the memory does not hold a valid queue header.
    """

    def __init__(self, memory_fd: int, event_fd: int, serviced_fd: int | None = None) -> None:
        try:
            size = os.fstat(memory_fd).st_size
            mapping = mmap.mmap(memory_fd, size, mmap.MAP_SHARED)
        finally:
            os.close(memory_fd)
        capacity = _U32.unpack_from(mapping, 0)[0]
        if size < queue_memory_size(8) or queue_memory_size(capacity) != size:
            mapping.close()
            os.close(event_fd)
            if serviced_fd is not None:
                os.close(serviced_fd)
            raise HwkitError(f"data queue memory of {size} bytes holds a queueSize of {capacity}")
        self.capacity = capacity
        self._ring = _Ring(mapping, capacity)
        self.eventfd: int | None = event_fd
        #: Written when a dequeue empties the queue (None: the producer does not wait).
        self.serviced_eventfd = serviced_fd

    def data_available(self) -> bool:
        """True when an entry is waiting (``IODataQueueDataAvailable``)."""
        words = self._ring.words
        return words[1] != words[2]

    def _locate(self) -> tuple[int, int] | None:
        ring = self._ring
        head, tail = ring.words[1], ring.words[2]
        if head == tail:
            return None
        capacity = ring.capacity
        if head + ENTRY_HEADER_SIZE > capacity:
            head = 0  # no room for a size at the old tail: the entry is at 0
        size = _U32.unpack_from(ring.buf, HEADER_SIZE + head)[0]
        if head + ENTRY_HEADER_SIZE + size > capacity:
            head = 0
            size = _U32.unpack_from(ring.buf, HEADER_SIZE)[0]
        if size + ENTRY_HEADER_SIZE > capacity:
            raise HwkitError(f"data queue corrupt: entry of {size} bytes at offset {head}")
        return head, size

    def peek(self) -> memoryview | None:
        """The next entry without removing it (a view into shared memory), or None."""
        found = self._locate()
        if found is None:
            return None
        head, size = found
        start = HEADER_SIZE + head + ENTRY_HEADER_SIZE
        return self._ring.buf[start : start + size]

    def dequeue(self, max_size: int | None = None) -> bytes | None:
        """Remove and return the next entry, or None when the queue is empty.

        Raises:
            BadArgument: the entry is larger than `max_size` (I/O Kit's
                ``kIOReturnNoSpace``); it stays in the queue.
            HwkitError: the ring is corrupt (the producer broke the layout).
        """
        found = self._locate()
        if found is None:
            return None
        head, size = found
        if max_size is not None and size > max_size:
            raise BadArgument(f"data queue entry of {size} bytes does not fit {max_size} bytes")
        start = HEADER_SIZE + head + ENTRY_HEADER_SIZE
        data = bytes(self._ring.buf[start : start + size])
        words = self._ring.words
        words[1] = new_head = head + ENTRY_HEADER_SIZE + size  # release the entry
        if new_head == words[2] and self.serviced_eventfd is not None:
            os.eventfd_write(self.serviced_eventfd, 1)  # emptied: a waiting producer goes on
        return data

    def drain(self) -> list[bytes]:
        """Dequeue everything waiting."""
        out = []
        while (item := self.dequeue()) is not None:
            out.append(item)
        return out

    def _clear_event(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self.eventfd)  # type: ignore[arg-type]

    def wait_for_data(self, timeout: float | None = None) -> bool:
        """Block until an entry is available; False on timeout (``WaitForAvailableData``).

        Raises:
            ClosedResourceError: the reader was closed.
        """
        if self.eventfd is None:
            raise ClosedResourceError("data queue reader is closed")
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.data_available():
            left = _RECHECK if deadline is None else min(_RECHECK, deadline - time.monotonic())
            if left <= 0:
                return False
            ready, _, _ = select.select([self.eventfd], [], [], left)
            if ready:
                self._clear_event()
        return True

    async def wait_for_data_async(self) -> None:
        """Wait on the running asyncio loop until an entry is available.

        Raises:
            ClosedResourceError: the reader was closed.
        """
        if self.eventfd is None:
            raise ClosedResourceError("data queue reader is closed")
        loop = asyncio.get_running_loop()
        while not self.data_available():
            await _until_readable(loop, self.eventfd, loop.create_future(), _RECHECK)
            self._clear_event()

    def close(self) -> None:
        """Unmap and close the eventfds."""
        if self.eventfd is None:
            return
        self._ring.release()
        os.close(self.eventfd)
        if self.serviced_eventfd is not None:
            os.close(self.serviced_eventfd)
        self.eventfd = self.serviced_eventfd = None

    def __enter__(self) -> DataQueueReader:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
