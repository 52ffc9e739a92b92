"""The data queue: IODataQueue's layout, its full/wrap rules and its wake-up rule."""

from __future__ import annotations

import asyncio
import os
import struct
import time
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit.dataqueue import HEADER_SIZE, DataQueue, DataQueueReader, queue_memory_size
from hwkit.errors import BadArgument, ClosedResourceError


def pair(capacity: int) -> tuple[DataQueue, DataQueueReader]:
    queue = DataQueue(capacity, "test")
    return queue, DataQueueReader(*queue.client_fds())


def words(queue: DataQueue) -> tuple[int, int, int]:
    return struct.unpack_from("<III", queue._ring.buf, 0)


def test_layout_is_iodataqueuememory():
    queue, reader = pair(64)
    assert queue.size == queue_memory_size(64) == 12 + 64 + 4
    assert os.fstat(queue.fd).st_size == queue.size
    assert words(queue) == (64, 0, 0)  # queueSize, head, tail
    assert queue.enqueue(b"abc")
    assert words(queue) == (64, 0, 7)
    assert struct.unpack_from("<I", queue._ring.buf, HEADER_SIZE)[0] == 3
    assert bytes(queue._ring.buf[HEADER_SIZE + 4 : HEADER_SIZE + 7]) == b"abc"
    assert reader.dequeue() == b"abc"
    assert words(queue) == (64, 7, 7)
    reader.close()
    queue.close()


def test_enqueue_fails_when_full_and_never_overwrites():
    queue, reader = pair(32)
    assert queue.enqueue(b"x" * 12)  # 16 bytes
    assert queue.enqueue(b"y" * 8)  # 12 bytes: 28 used
    assert not queue.enqueue(b"z")  # 5 bytes do not fit in the 4 left
    assert queue.statistics()["full"] == 1
    assert reader.drain() == [b"x" * 12, b"y" * 8]


def test_an_entry_that_does_not_fit_wraps_with_its_size_at_the_old_tail():
    queue, reader = pair(32)
    assert queue.enqueue(b"a" * 16)  # 0..20
    assert reader.dequeue() == b"a" * 16  # head 20
    assert queue.enqueue(b"b" * 8)  # 20 + 12 = 32: ends exactly at the end
    assert queue.enqueue(b"c" * 4)  # wraps to 0 (no room for a size at 32)
    assert words(queue)[2] == 8
    assert reader.drain() == [b"b" * 8, b"c" * 4]
    assert queue.enqueue(b"d" * 4)  # tail 8 -> 16
    assert queue.enqueue(b"e" * 10)  # 16 + 14 > 32: wraps, size written at 16
    assert struct.unpack_from("<I", queue._ring.buf, HEADER_SIZE + 16)[0] == 10
    assert reader.drain() == [b"d" * 4, b"e" * 10]


def test_wake_up_only_on_empty_to_non_empty():
    queue, reader = pair(256)
    for _ in range(5):
        assert queue.enqueue(b"tick")
    assert queue.statistics()["notifications"] == 1
    assert reader.wait_for_data(1.0)
    assert len(reader.drain()) == 5
    assert not reader.wait_for_data(0.05)
    assert queue.enqueue(b"again")
    assert queue.statistics()["notifications"] == 2
    assert reader.wait_for_data(1.0)


def serviced(queue: DataQueue) -> int:
    """Signals the consumer sent (the eventfd's counter, read and reset)."""
    try:
        return os.eventfd_read(queue.serviced_eventfd)
    except BlockingIOError:
        return 0


def test_the_consumer_signals_serviced_only_when_a_dequeue_empties_the_queue():
    queue, reader = pair(64)
    for data in (b"a", b"b", b"c"):
        assert queue.enqueue(data)
    assert reader.dequeue() == b"a" and reader.dequeue() == b"b"
    assert serviced(queue) == 0  # not empty yet
    assert reader.dequeue() == b"c"
    assert serviced(queue) == 1  # emptied
    assert reader.dequeue() is None and reader.peek() is None
    assert serviced(queue) == 0  # finding it empty is no news
    reader.close()
    queue.close()


def test_a_producer_waits_for_the_consumer_instead_of_spinning():
    queue, reader = pair(64)
    entry = bytes(20)  # 24 bytes with its size: two fit, the third does not
    produced: list[int] = []

    async def produce() -> None:
        for n in range(6):
            while not queue.enqueue(entry):
                await queue.wait_serviced()
            produced.append(n)

    def consume() -> None:  # another thread, as a client process would
        got = 0
        while got < 6:
            assert reader.wait_for_data(5)
            while reader.dequeue() is not None:
                got += 1

    async def main() -> None:
        consumer = asyncio.get_running_loop().run_in_executor(None, consume)
        await asyncio.wait_for(produce(), 10)
        await asyncio.wait_for(consumer, 10)

    asyncio.run(main())
    assert produced == list(range(6))
    stats = queue.statistics()
    assert stats["full"] >= 2 and stats["serviced_waits"] == stats["full"]
    reader.close()
    queue.close()


def test_wait_serviced_returns_at_once_when_empty_times_out_and_fails_when_closed():
    queue, reader = pair(64)

    async def main() -> None:
        assert await queue.wait_serviced(0.01)  # empty already
        assert queue.enqueue(b"x")
        started = time.monotonic()
        assert not await queue.wait_serviced(0.05)  # nobody drains it
        assert time.monotonic() - started >= 0.05
        waiting = asyncio.ensure_future(queue.wait_serviced())
        await asyncio.sleep(0.01)
        queue.close()
        with pytest.raises(ClosedResourceError, match="closed while waiting"):
            await asyncio.wait_for(waiting, 1)
        with pytest.raises(ClosedResourceError):
            await queue.wait_serviced()

    asyncio.run(main())
    reader.close()


def test_dequeue_refuses_a_too_small_buffer_and_keeps_the_entry():
    queue, reader = pair(64)
    queue.enqueue(b"0123456789")
    with pytest.raises(BadArgument, match="does not fit 4 bytes"):
        reader.dequeue(4)
    assert reader.dequeue(10) == b"0123456789"


def test_bad_capacity_and_closed_queue():
    with pytest.raises(BadArgument, match="capacity 4"):
        DataQueue(4)
    queue = DataQueue(64)
    queue.close()
    with pytest.raises(ClosedResourceError, match="closed"):
        queue.enqueue(b"x")


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(8, 200),
    ops=st.lists(st.one_of(st.binary(max_size=60), st.none()), max_size=80),
)
def test_the_ring_behaves_like_a_bounded_fifo(capacity, ops):
    """Against a model: every accepted entry comes out once, in order, intact."""
    queue, reader = pair(capacity)
    model: deque[bytes] = deque()
    for op in ops:
        if op is None:
            assert reader.dequeue() == (model.popleft() if model else None)
        elif queue.enqueue(op):
            model.append(op)
        elif words(queue)[2] == 0:  # from offset 0, only a full ring or a huge entry
            assert model or len(op) + 4 > capacity
        head, tail = words(queue)[1:]
        assert (head == tail) == (not model)
    assert reader.drain() == list(model)
    reader.close()
    queue.close()
