"""Queue pairs: a submission queue, its completion queue, and the commands in flight.

One :class:`QueuePair` owns one DMA buffer laid out as the spec wants it (§4.1): the
SQ (64-byte entries), then the CQ (16-byte entries) on its own page, then one PRP list
page per command identifier, so a command's PRP list lives as long as the command.
A queue of `depth` entries holds at most `depth - 1` commands (full when tail + 1 =
head, §4.1.2), and the command identifier is the slot's index.

Completions are reaped by :meth:`QueuePair.process_completions`: from the MSI-X
handler on the work loop, or by the submitting thread in polled mode. Every waiter
gets its :class:`~hwkit.drivers.nvme.spec.Completion` or the reason it never will.

Two paths, because Python per command is the cost that matters (see bench.py):
:meth:`QueuePair.submit` packs one command; :meth:`QueuePair.submit_batch` copies many
prepared entries into the SQ with NumPy, fills their PRP lists with one operation and
rings once. Reaping looks at entries one by one while they come singly, and scans the
CQ's phase tags with NumPy when several are waiting.

Threading: every method may be called from any thread; ``lock`` guards the queue state
(the submitter and the reaper take it briefly, never while waiting).
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable

import numpy as np

from hwkit.dma import Direction, DMABuffer, DMAMapper, Mapping, nvme_prps, round_up
from hwkit.errors import BadArgument, BusyResourceError
from hwkit.mmio import Registers

from .errors import ControllerResetError
from .spec import (
    CQ_HEAD,
    CQE_SIZE,
    SQ_TAIL,
    SQE_SIZE,
    Command,
    Completion,
    CompletionEntry,
    SubmissionEntry,
)

PAGE = 4096
PRP_ENTRIES = PAGE // 8
#: Below this many commands a batch is submitted, and below this many completions a CQ
#: reaped, entry by entry: NumPy's fixed cost per call (~1 us natively, ~50 under the
#: lab's emulation) outweighs a few Python iterations (measured, bench.py).
SMALL_BATCH = SCAN_MIN = 8
_CID = struct.Struct("<H")  # command identifier: bytes 2-3 of a submission entry
_PRPS = struct.Struct("<QQ")  # PRP1, PRP2: bytes 24-39

Callback = Callable[[Completion | Exception], None]


class Waiter:
    """A synchronous caller's slot: set once, by the reaper or by a reset."""

    __slots__ = ("event", "result")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.result: Completion | Exception | None = None

    def __call__(self, result: Completion | Exception) -> None:
        self.result = result
        self.event.set()


class QueuePair:
    """One I/O (or the admin) submission/completion queue pair and its memory.

    Args:
        qid: queue identifier (0 is the admin queue).
        depth: entries per queue (2 .. CAP.MQES + 1).
        regs: BAR0, for the doorbells.
        dstrd: CAP.DSTRD, the doorbell stride.
        mapper: maps the queue memory for the device.
        vector: the MSI-X vector its CQ raises, or None for a polled CQ.
    """

    def __init__(
        self,
        qid: int,
        depth: int,
        regs: Registers,
        dstrd: int,
        mapper: DMAMapper,
        vector: int | None,
        name: str,
    ) -> None:
        if depth < 2:
            raise BadArgument(f"{name}: a queue needs at least 2 entries, not {depth}")
        self.qid = qid
        self.depth = depth
        self.vector = vector
        self.regs = regs
        self.name = name
        self.sq_tail_doorbell = SQ_TAIL(qid, dstrd)
        self.cq_head_doorbell = CQ_HEAD(qid, dstrd)
        self.sq_bytes = round_up(depth * SQE_SIZE, PAGE)
        self.cq_bytes = round_up(depth * CQE_SIZE, PAGE)
        self.lists_offset = self.sq_bytes + self.cq_bytes
        self.memory = DMABuffer(self.lists_offset + depth * PAGE, name=f"{name} queues")
        self.mapping: Mapping = mapper.prepare(self.memory, Direction.BOTH)
        self.sq_iova = self.mapping.iova
        self.cq_iova = self.mapping.iova + self.sq_bytes
        self._sq = memoryview(self.memory.mmap)[: self.sq_bytes]
        # status halfword of each CQ entry (bytes 14-15): the phase tag is its bit 0
        self._cq = memoryview(self.memory.mmap)[self.sq_bytes : self.lists_offset]
        self._cq_status = self._cq.cast("H")
        self._sq_entries = self.memory.array(SubmissionEntry, 0, depth)
        self._cq_entries = self.memory.array(CompletionEntry, self.sq_bytes, depth)
        # the phase tag each CQ slot shows once written, for a scan starting at slot 0
        self._later_pass = np.arange(depth)
        self._lists = self.memory.array(np.uint64, self.lists_offset, depth * PRP_ENTRIES)
        self._lists = self._lists.reshape(depth, PRP_ENTRIES)
        # each command's list page and its bus address, looked up per command
        self._list_pages = list(self._lists)
        base = self.mapping.iova + self.lists_offset
        self._list_iovas = [base + cid * PAGE for cid in range(depth)]
        self.lock = threading.Lock()
        self.reset_state()
        self.statistics_counters = {"submitted": 0, "completed": 0, "interrupts": 0}

    def reset_state(self) -> None:
        """Empty queues (as after creation): head, tail and phase back to the start.

        Callers hold ``lock`` or own the queue exclusively.
        """
        self.sq_tail = 0
        self.sq_head = 0
        self.cq_head = 0
        self.phase = 1  # §4.6: the controller writes phase 1 on its first pass
        self._cq[:] = bytes(self.cq_bytes)
        self._free = list(range(self.depth - 2, -1, -1))  # cids; pop() takes 0 first
        self._callbacks: list[Callback | None] = [None] * self.depth
        self._what: list[str] = [""] * self.depth

    # --- submission ----------------------------------------------------------------

    def submit(
        self,
        command: Command,
        callback: Callback,
        what: str = "",
        data: tuple[Mapping, int, int] | None = None,
        ring: bool = True,
    ) -> int:
        """Put `command` in the SQ and (unless `ring` is False) ring the tail doorbell.

        `data` is (mapping, offset, length) of the transfer: the PRPs are built here,
        the list (if one is needed) in this command's own list page. `callback` gets
        the completion or the exception that ended the command (a reset).

        Raises:
            BusyResourceError: the queue is full (depth - 1 commands in flight).
            BadArgument: the transfer needs more PRP entries than a list page holds.
        """
        with self.lock:
            if not self._free:
                raise BusyResourceError(f"{self.name} is full ({self.depth - 1} in flight)")
            cid = self._free.pop()
            if data is not None:
                try:
                    command.prp1, command.prp2 = self._prps(cid, *data)
                except BaseException:
                    self._free.append(cid)
                    raise
            self._callbacks[cid] = callback
            self._what[cid] = what
            command.pack_into(self._sq, self.sq_tail * SQE_SIZE, cid)
            self.sq_tail = (self.sq_tail + 1) % self.depth
            self.statistics_counters["submitted"] += 1
            if ring:
                self.regs.write32(self.sq_tail_doorbell, self.sq_tail)
        return cid

    def _prps(self, cid: int, mapping: Mapping, offset: int, length: int) -> tuple[int, int]:
        """PRP1 and PRP2 (§4.3, :func:`hwkit.dma.nvme_prps`); a list in command `cid`'s page.

        Raises:
            BadArgument: the range is outside the mapping, the offset not dword
                aligned, or the transfer longer than a list page covers.
        """
        return nvme_prps(mapping, offset, length, self._list_pages[cid],
                         self._list_iovas[cid], PAGE, self.name)  # fmt: skip

    def ring(self) -> None:
        """Ring the SQ tail doorbell for everything submitted so far (batching)."""
        with self.lock:
            self.regs.write32(self.sq_tail_doorbell, self.sq_tail)

    def submit_batch(
        self,
        entries: np.ndarray,
        callback: Callback,
        what: str,
        data: tuple[Mapping, np.ndarray | None, int],
        ring: bool = True,
    ) -> np.ndarray:
        """Queue ``len(entries)`` commands at once; one doorbell write for all of them.

        `entries` are :data:`~hwkit.drivers.nvme.spec.SubmissionEntry` records complete
        but for cid and PRPs, which are set here. `data` is (mapping, offsets, length):
        command i moves `length` bytes at ``offsets[i]`` of the mapping, or, with offsets
        None, at ``cid * length`` (a buffer with a region per command identifier, as
        SPDK gives each request its own: nothing to track per command). A mapping is one
        range of bus addresses, so each command's PRP list is an arithmetic progression,
        written for all commands by one NumPy operation. `callback` gets each command's
        completion (or the exception that ended it), as for :meth:`submit`.

        Returns the command identifiers, in the order of `entries`.

        Raises:
            BusyResourceError: fewer free entries than commands (nothing was queued).
            BadArgument: a range outside the mapping, an offset that is not dword
                aligned, or a transfer longer than a PRP list page covers.
        """
        count = len(entries)
        mapping, offsets, length = data
        if count < SMALL_BATCH:
            return self._submit_few(entries, callback, what, data, ring)
        with self.lock:
            if len(self._free) < count:
                raise BusyResourceError(f"{self.name} has {len(self._free)} free entries, "
                                        f"not {count}")  # fmt: skip
            taken = self._free[-count:]
            cids = np.array(taken, dtype=np.uint16)
            if offsets is None:
                offsets = cids.astype(np.int64) * length
            address, prp2 = self._batch_prps(cids, mapping, offsets, length)
            del self._free[-count:]
            entries["cid"] = cids
            entries["prp1"] = address
            entries["prp2"] = prp2
            for cid in taken:
                self._callbacks[cid] = callback
                self._what[cid] = what
            tail = self.sq_tail
            first = min(count, self.depth - tail)
            self._sq_entries[tail : tail + first] = entries[:first]
            self._sq_entries[: count - first] = entries[first:]
            self.sq_tail = (tail + count) % self.depth
            self.statistics_counters["submitted"] += count
            if ring:
                self.regs.write32(self.sq_tail_doorbell, self.sq_tail)
        return cids

    def _submit_few(
        self,
        entries: np.ndarray,
        callback: Callback,
        what: str,
        data: tuple[Mapping, np.ndarray | None, int],
        ring: bool,
    ) -> np.ndarray:
        """submit_batch for a few commands: each entry's bytes copied and its cid and
        PRPs packed in place, one doorbell write (NumPy's fixed cost is not worth it)."""
        count = len(entries)
        mapping, offsets, length = data
        raw = entries.tobytes()
        depth = self.depth
        with self.lock:
            if len(self._free) < count:
                raise BusyResourceError(f"{self.name} has {len(self._free)} free entries, "
                                        f"not {count}")  # fmt: skip
            taken: list[int] = []
            prps = []
            try:
                for i in range(count):
                    cid = self._free.pop()
                    taken.append(cid)
                    offset = cid * length if offsets is None else int(offsets[i])
                    prps.append(self._prps(cid, mapping, offset, length))
            except BaseException:
                self._free.extend(reversed(taken))
                raise
            tail = self.sq_tail
            sq = self._sq
            for i, cid in enumerate(taken):
                at = (tail + i) % depth * SQE_SIZE
                sq[at : at + SQE_SIZE] = raw[i * SQE_SIZE : (i + 1) * SQE_SIZE]
                _CID.pack_into(sq, at + 2, cid)
                _PRPS.pack_into(sq, at + 24, *prps[i])
                self._callbacks[cid] = callback
                self._what[cid] = what
            self.sq_tail = (tail + count) % depth
            self.statistics_counters["submitted"] += count
            if ring:
                self.regs.write32(self.sq_tail_doorbell, self.sq_tail)
        return np.array(taken, dtype=np.uint16)

    def _batch_prps(
        self, cids: np.ndarray, mapping: Mapping, offsets: np.ndarray, length: int
    ) -> tuple[np.ndarray, np.ndarray | int]:
        """PRP1 and PRP2 of each command, and its list (in its own list page) if any."""
        if length <= 0 or int(offsets.min()) < 0 or int(offsets.max()) + length > mapping.size:
            raise BadArgument(f"{self.name}: transfers of {length} bytes at offsets "
                              f"{int(offsets.min())}..{int(offsets.max())}: outside the "
                              f"{mapping.size}-byte mapping")  # fmt: skip
        if (offsets % 4).any():
            raise BadArgument(f"{self.name}: offsets not dword aligned (NVMe §4.3)")
        address = offsets.astype(np.uint64) + np.uint64(mapping.iova)
        if length <= PAGE - int((address % PAGE).max()):
            return address, 0  # every command within its first page
        second = (address // PAGE + 1) * PAGE  # where each command's second page starts
        pages = (address + np.uint64(length + PAGE - 1) - second) // PAGE
        most = int(pages.max())
        if most > PRP_ENTRIES:
            raise BadArgument(f"{self.name}: {length} bytes need {most} PRP entries, a list "
                              f"page holds {PRP_ENTRIES}: split the transfer")  # fmt: skip
        lists = self.mapping.iova + self.lists_offset + cids.astype(np.uint64) * PAGE
        prp2 = np.where(pages > 1, lists, np.where(pages == 1, second, 0))
        if most > 1:  # entry k of a list: the (k + 2)th page of the transfer
            step = np.arange(most, dtype=np.uint64) * np.uint64(PAGE)
            self._lists[cids, :most] = second[:, None] + step
        return address, prp2

    # --- completion ----------------------------------------------------------------

    def process_completions(self) -> int:
        """Reap every new CQ entry, update the CQ head doorbell, run the callbacks.

        Returns how many completions were reaped.
        """
        done: list[tuple[Callback, Completion]] = []
        depth = self.depth
        with self.lock:
            head, phase = self.cq_head, self.phase
            status = self._cq_status
            if (status[head * 8 + 7] & 1) != phase:
                return 0
            last = head + SCAN_MIN - 1  # entries are written in order: if it is new, all are
            if depth > SCAN_MIN and (status[last % depth * 8 + 7] & 1) == phase ^ (last >= depth):
                entries = self._scan(head, phase)
            else:  # a few: one by one is cheaper than NumPy's fixed cost
                entries = []
                at, tag = head, phase
                while (status[at * 8 + 7] & 1) == tag:
                    entries.append(Completion.decode(self._cq, at * CQE_SIZE))
                    at += 1
                    if at == depth:
                        at, tag = 0, tag ^ 1
            for entry in entries:
                self.sq_head = entry.sqhd
                callback = self._callbacks[entry.cid] if entry.cid < depth else None
                if callback is None:
                    continue  # a stray completion (e.g. for a command lost to a reset)
                self._callbacks[entry.cid] = None
                self._free.append(entry.cid)
                done.append((callback, entry))
            head += len(entries)
            if head >= depth:
                head, phase = head - depth, phase ^ 1
            if head != self.cq_head or phase != self.phase:
                self.cq_head, self.phase = head, phase
                self.regs.write32(self.cq_head_doorbell, head)
            self.statistics_counters["completed"] += len(done)
        for callback, entry in done:
            callback(entry)
        return len(done)

    def _scan(self, head: int, phase: int) -> list[Completion]:
        """Every new CQ entry from `head` on, found by one NumPy pass over the tags."""
        depth = self.depth
        order = np.roll(self._cq_entries, -head)
        # slots before head belong to the next pass round the ring: the other tag
        expected = phase ^ (np.roll(self._later_pass, -head) < head)
        new = (order["status"] & 1) == expected
        count = depth if new.all() else int(new.argmin())
        rows = order[:count]
        return [
            Completion(dw0, dw1, sqhd, sqid, cid, status >> 1)
            for dw0, dw1, sqhd, sqid, cid, status in rows.tolist()
        ]

    def outstanding(self) -> list[str]:
        """What each command in flight is (for messages)."""
        with self.lock:
            return [self._what[cid] for cid, cb in enumerate(self._callbacks) if cb is not None]

    def fail_all(self, reason: str) -> None:
        """End every command in flight with ControllerResetError (before a reset)."""
        with self.lock:
            lost = [
                (cb, self._what[cid]) for cid, cb in enumerate(self._callbacks) if cb is not None
            ]
            self.reset_state()
        for callback, what in lost:
            callback(ControllerResetError(f"{what}: lost to a controller reset ({reason})"))

    def wait(self, waiter: Waiter, deadline: float, poll: bool) -> bool:
        """Wait for `waiter` until `deadline` (monotonic), reaping if `poll`.

        Returns False on timeout.
        """
        if not poll:
            return waiter.event.wait(max(0.0, deadline - time.monotonic()))
        spins = 0
        while waiter.result is None:
            self.process_completions()
            spins += 1
            if waiter.result is None and spins % 64 == 0:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0)
        return True

    def statistics(self) -> dict[str, int]:
        """Debug counters: commands submitted and completed, interrupts handled."""
        return {**self.statistics_counters, "in_flight": len(self.outstanding())}

    def close(self, mapper: DMAMapper) -> None:
        """Unmap and free the queue memory (the device must no longer use it)."""
        del self._sq_entries, self._cq_entries
        self._cq_status.release()
        self._cq.release()
        self._sq.release()
        del self._lists, self._list_pages
        mapper.complete(self.memory)
        self.memory.close()
