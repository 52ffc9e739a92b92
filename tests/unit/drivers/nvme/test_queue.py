"""Queue pairs against a device model written from the spec (§4.1, §4.6): the test plays
the controller, reading submissions from the SQ memory and posting completions with
the phase tag, and watches the doorbells in a BAR-sized buffer."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hwkit.drivers.nvme import queue as queue_module
from hwkit.drivers.nvme import spec
from hwkit.drivers.nvme.errors import ControllerResetError
from hwkit.drivers.nvme.queue import QueuePair, Waiter

from hwkit.dma import DMABuffer, DMAMapper, IOVAAllocator
from hwkit.errors import BadArgument, BusyResourceError
from hwkit.mmio import Registers


class Container:
    def map_dma(self, vaddr: int, iova: int, size: int, flags: int = 3) -> None:
        pass

    def unmap_dma(self, iova: int, size: int) -> None:
        pass


class Device:
    """Just enough of a controller: consumes the SQ, completes in order."""

    def __init__(self, queue: QueuePair) -> None:
        self.queue = queue
        self.head = 0
        self.cq_tail = 0
        self.phase = 1
        self.seen: list[np.void] = []

    def run(self, status: int = 0) -> None:
        q = self.queue
        tail = q.regs.read32(q.sq_tail_doorbell)
        sq = np.frombuffer(q.memory.mmap, spec.SubmissionEntry, q.depth)
        cq = np.frombuffer(q.memory.mmap, spec.CompletionEntry, q.depth, q.sq_bytes)
        while self.head != tail:
            entry = sq[self.head].copy()
            self.seen.append(entry)
            self.head = (self.head + 1) % q.depth
            cq[self.cq_tail] = (0, 0, self.head, q.qid, entry["cid"], (status << 1) | self.phase)
            self.cq_tail += 1
            if self.cq_tail == q.depth:
                self.cq_tail, self.phase = 0, self.phase ^ 1


@pytest.fixture
def parts():
    bar = bytearray(0x4000)
    regs = Registers(bar, "pci:test BAR0", spec.register_names(0, 3))
    mapper = DMAMapper(Container(), IOVAAllocator([(0, (1 << 40) - 1)]))
    queue = QueuePair(1, 4, regs, 0, mapper, None, "test queue 1")
    yield queue, Device(queue), mapper
    queue.close(mapper)


def test_memory_layout_and_doorbells(parts) -> None:
    queue, _, _ = parts
    assert (queue.sq_tail_doorbell, queue.cq_head_doorbell) == (0x1008, 0x100C)
    assert queue.sq_iova % 4096 == 0 and queue.cq_iova == queue.sq_iova + 4096
    assert queue.memory.size == 4096 * (2 + queue.depth)


def test_submit_rings_and_completion_runs_the_callback(parts) -> None:
    queue, device, _ = parts
    results = []
    cid = queue.submit(spec.flush(1), results.append, "FLUSH")
    assert queue.regs.read32(0x1008) == 1
    device.run()
    assert device.seen[0]["opc"] == 0 and device.seen[0]["cid"] == cid
    assert queue.process_completions() == 1
    assert results[0].cid == cid and results[0].ok
    assert queue.regs.read32(0x100C) == 1  # CQ head doorbell updated
    assert queue.process_completions() == 0


def test_phase_flips_after_a_pass_and_ids_are_reused(parts) -> None:
    queue, device, _ = parts
    done = []
    for _ in range(10):  # depth 4: wraps both queues twice
        queue.submit(spec.flush(1), done.append)
        device.run()
        queue.process_completions()
    assert len(done) == 10
    assert queue.phase == 1 ^ (10 // 4 % 2)
    assert queue.cq_head == 10 % 4


def test_a_full_queue_refuses(parts) -> None:
    queue, device, _ = parts
    for _ in range(3):  # depth - 1
        queue.submit(spec.flush(1), lambda r: None)
    with pytest.raises(BusyResourceError, match="test queue 1 is full"):
        queue.submit(spec.flush(1), lambda r: None)
    device.run()
    queue.process_completions()
    queue.submit(spec.flush(1), lambda r: None)


def test_unrung_submissions_wait_for_ring(parts) -> None:
    queue, device, _ = parts
    queue.submit(spec.flush(1), lambda r: None, ring=False)
    device.run()
    assert device.seen == []
    queue.ring()
    device.run()
    assert len(device.seen) == 1


def test_prp_list_lives_in_the_commands_page(parts) -> None:
    queue, device, mapper = parts
    data = DMABuffer(16 * 4096)
    mapping = mapper.prepare(data)
    cid = queue.submit(spec.read_write(spec.IOOpcode.READ, 1, 0, 128, 0, 0), lambda r: None,
                       data=(mapping, 0, 64 * 1024))  # fmt: skip
    device.run()
    entry = device.seen[0]
    assert entry["prp1"] == mapping.iova
    assert entry["prp2"] == queue.mapping.iova + queue.lists_offset + cid * 4096
    listed = queue.memory.array(np.uint64, queue.lists_offset + cid * 4096, 15)
    assert list(listed) == [mapping.iova + 4096 * i for i in range(1, 16)]
    del listed
    mapper.complete(data)
    data.close()


def test_error_status_is_delivered(parts) -> None:
    queue, device, _ = parts
    waiter = Waiter()
    queue.submit(spec.flush(1), waiter)
    device.run(status=0x80)
    assert queue.wait(waiter, time.monotonic() + 1, poll=True)
    assert spec.Status.decode(waiter.result.status).text == "LBA OUT OF RANGE"


def test_polled_wait_times_out_when_nothing_completes(parts) -> None:
    queue, _, _ = parts
    waiter = Waiter()
    queue.submit(spec.flush(1), waiter)
    assert not queue.wait(waiter, time.monotonic() + 0.05, poll=True)
    assert queue.outstanding() == [""]


def test_fail_all_ends_commands_in_flight_and_empties_the_queue(parts) -> None:
    queue, _, _ = parts
    waiter = Waiter()
    queue.submit(spec.flush(1), waiter, "FLUSH")
    queue.fail_all("test")
    assert isinstance(waiter.result, ControllerResetError)
    assert "FLUSH: lost to a controller reset (test)" in str(waiter.result)
    assert (queue.sq_tail, queue.cq_head, queue.phase) == (0, 0, 1)
    assert queue.statistics()["in_flight"] == 0


@pytest.mark.parametrize(
    ("offset", "length", "prp2_page"),
    [(0, 4096, None), (512, 512, None), (0, 8192, 1), (2048, 4096, 1), (4092, 8, 1)],
)
def test_one_and_two_page_transfers_need_no_list(parts, offset, length, prp2_page) -> None:
    queue, device, mapper = parts
    data = DMABuffer(4 * 4096)
    mapping = mapper.prepare(data)
    queue.submit(spec.flush(1), lambda r: None, data=(mapping, offset, length))
    device.run()
    entry = device.seen[0]
    assert entry["prp1"] == mapping.iova + offset
    assert entry["prp2"] == (0 if prp2_page is None else mapping.iova + 4096 * prp2_page)
    mapper.complete(data)
    data.close()


@pytest.mark.parametrize(
    ("offset", "length"), [(-1, 10), (0, 0), (4096 * 4 - 12, 20), (2, 8), (0, 520 * 4096)]
)
def test_transfers_outside_the_mapping_are_refused_and_free_their_id(parts, offset, length):
    queue, _, mapper = parts
    data = DMABuffer(4 * 4096 if length < 4096 * 4 else 1024 * 4096)
    mapping = mapper.prepare(data)
    with pytest.raises(BadArgument, match=r"outside the .*mapping or not dword|need 519 PRP"):
        queue.submit(spec.flush(1), lambda r: None, data=(mapping, offset, length))
    assert len(queue._free) == queue.depth - 1
    mapper.complete(data)
    data.close()


def _reads(count: int, blocks: int) -> np.ndarray:
    entries = np.zeros(count, spec.SubmissionEntry)
    entries["opc"] = spec.IOOpcode.READ
    entries["nsid"] = 1
    entries["cdw10"] = np.arange(count) * blocks
    entries["cdw12"] = blocks - 1
    return entries


@pytest.fixture(params=["few", "numpy"])
def path(request, monkeypatch) -> str:
    """Both ways submit_batch and process_completions go: entry by entry, and NumPy."""
    monkeypatch.setattr(queue_module, "SMALL_BATCH", 100 if request.param == "few" else 1)
    monkeypatch.setattr(queue_module, "SCAN_MIN", 100 if request.param == "few" else 2)
    return request.param


@pytest.mark.parametrize(
    ("offsets", "length"),
    [
        ([0, 4096, 8192], 4096),  # one page each: no PRP2
        ([512, 4608, 12], 4096),  # crossing into a second page: PRP2 is that page
        ([0, 8192, 20480], 8192),  # exactly two pages
        ([0, 16384, 1024], 3 * 4096),  # a list, from an aligned and an unaligned start
        ([4, 65536, 32768], 64 * 1024),
    ],
)
def test_a_batch_gets_the_prps_one_command_at_a_time_would(parts, path, offsets, length) -> None:
    queue, device, mapper = parts
    data = DMABuffer(32 * 4096)
    mapping = mapper.prepare(data)
    results: list = []
    cids = queue.submit_batch(_reads(3, 8), results.append, "READ",
                              (mapping, np.array(offsets), length))  # fmt: skip
    assert queue.regs.read32(queue.sq_tail_doorbell) == 3  # one doorbell write for all
    device.run()
    for entry, cid, offset in zip(device.seen, cids.tolist(), offsets, strict=True):
        expected = queue._prps(cid, mapping, offset, length)
        assert (int(entry["cid"]), int(entry["prp1"]), int(entry["prp2"])) == (cid, *expected)
    assert [int(e["cdw10"]) for e in device.seen] == [0, 8, 16]
    assert queue.process_completions() == 3
    assert sorted(r.cid for r in results) == sorted(cids.tolist())
    mapper.complete(data)
    data.close()


def test_a_batch_wraps_the_ring_and_several_completions_are_reaped_in_one_scan(parts, path):
    queue, device, mapper = parts
    data = DMABuffer(4 * 4096)
    mapping = mapper.prepare(data)
    done: list = []
    queue.submit(spec.flush(1), done.append)  # moves head and tail off slot 0
    queue.submit(spec.flush(1), done.append)
    device.run()
    assert queue.process_completions() == 2
    for _ in range(5):  # 3 commands from slot 2 of 4: wraps the SQ and the CQ
        cids = queue.submit_batch(_reads(3, 1), done.append, "READ",
                                  (mapping, np.array([0, 4096, 8192]), 512))  # fmt: skip
        device.run()
        assert queue.process_completions() == 3
        assert [r.cid for r in done[-3:]] == cids.tolist()
        assert all(r.ok for r in done)
    assert queue.statistics()["in_flight"] == 0
    assert (queue.cq_head, queue.phase) == ((2 + 15) % 4, 1 ^ ((2 + 15) // 4 % 2))
    mapper.complete(data)
    data.close()


def test_a_batch_too_big_for_the_free_entries_queues_nothing(parts, path) -> None:
    queue, device, mapper = parts
    data = DMABuffer(4 * 4096)
    mapping = mapper.prepare(data)
    with pytest.raises(BusyResourceError, match="has 3 free entries, not 4"):
        queue.submit_batch(_reads(4, 1), lambda r: None, "READ",
                           (mapping, np.zeros(4, np.int64), 512))  # fmt: skip
    with pytest.raises(BadArgument, match="outside the 16384-byte mapping"):
        queue.submit_batch(_reads(2, 1), lambda r: None, "READ",
                           (mapping, np.array([0, 16000]), 512))  # fmt: skip
    with pytest.raises(BadArgument, match="not dword aligned"):
        queue.submit_batch(_reads(1, 1), lambda r: None, "READ", (mapping, np.array([2]), 512))
    device.run()
    assert device.seen == [] and queue.sq_tail == 0 and queue.statistics()["in_flight"] == 0
    mapper.complete(data)
    data.close()
