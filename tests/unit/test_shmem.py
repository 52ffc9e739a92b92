"""Shared memory for user clients: page rounding, sealing, and the client's mapping."""

from __future__ import annotations

import asyncio
import fcntl
import mmap
import os

import numpy as np
import pytest

from hwkit.dataqueue import DataQueue, DataQueueReader
from hwkit.dma import DMABuffer
from hwkit.errors import BadArgument, ClosedResourceError
from hwkit.shmem import F_SEAL_FUTURE_WRITE, SharedMemory, buffer_client_fd, map_fd

F_GET_SEALS = getattr(fcntl, "F_GET_SEALS", 1034)


def test_writable_memory_is_shared_both_ways():
    memory = SharedMemory(100, "test")
    assert memory.size == mmap.PAGESIZE
    fd, size, read_only = buffer_client_fd(memory)
    view = map_fd(fd, size, read_only, np.uint32)
    view[1] = 0x12345678
    assert memory.array(np.uint32)[1] == 0x12345678
    memory.array()[0] = 9
    assert view.view(np.uint8)[0] == 9


def test_read_only_memory_is_sealed_and_mapped_read_only():
    memory = SharedMemory(4096, "test", read_only=True)
    fd, size, read_only = buffer_client_fd(memory)
    assert read_only
    assert fcntl.fcntl(memory.fd, F_GET_SEALS) & F_SEAL_FUTURE_WRITE
    with pytest.raises(PermissionError):
        mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    view = map_fd(fd, size, read_only)
    assert not view.flags.writeable
    memory.array()[:4] = 7  # the driver still writes through its own mapping
    assert (view[:4] == 7).all()


def test_a_dma_buffer_can_be_shared():
    buffer = DMABuffer(8192, "test-dma")
    fd, size, read_only = buffer_client_fd(buffer)
    assert (size, read_only) == (8192, False)
    view = map_fd(fd, size, read_only)
    view[100] = 0xAB
    assert buffer.mmap[100] == 0xAB


def test_other_objects_and_closed_memory_are_refused():
    with pytest.raises(BadArgument, match="return a SharedMemory, DMABuffer or DataQueue"):
        buffer_client_fd(object())
    memory = SharedMemory(4096, "test")
    memory.close()
    with pytest.raises(ClosedResourceError, match="is closed"):
        memory.client_fd()
    with pytest.raises(BadArgument, match="size must be positive"):
        SharedMemory(0)


def test_an_asyncio_consumer_wakes_on_the_first_entry():
    queue = DataQueue(256)
    reader = DataQueueReader(*queue.client_fds())

    async def consume() -> bytes | None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.02, queue.enqueue, b"hello")
        await asyncio.wait_for(reader.wait_for_data_async(), 5)
        return reader.dequeue()

    assert asyncio.run(consume()) == b"hello"
    reader.close()
    with pytest.raises(ClosedResourceError):
        reader.wait_for_data(0)
    os.close(os.dup(queue.fd))  # the producer's side is still open
    queue.close()
