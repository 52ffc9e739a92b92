"""Namespace commands: read, write and flush of logical blocks (NVM Command Set §3).

A :class:`Namespace` turns block addresses and NumPy arrays into Read / Write / Flush
commands on one of the controller's I/O queues. Transfers go through the queue's DMA
bounce buffer (so any array can be written and the result is a fresh array); one
longer than the controller's maximum transfer is split into several commands.

Errors name the command, the controller, namespace and block, and the device's status:
``READ failed on pci:0000:00:05.0 nsid 1 lba 131072: LBA OUT OF RANGE (sct 0, sc 0x80)``.

Threading: any thread; commands on one queue are serialised by the queue's I/O lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hwkit.errors import BadArgument

from . import spec
from .errors import NVMeStatusError
from .spec import IOOpcode

if TYPE_CHECKING:
    from hwkit.dma import Mapping

    from .controller import IOQueue, NVMeController
    from .queue import Callback


def block_bytes(data: np.ndarray | bytes, block_size: int, where: str) -> np.ndarray:
    """`data` as a flat uint8 array of whole blocks (a view when it is contiguous).

    Raises:
        BadArgument: the size is not a multiple of `block_size` (`where` starts the message).
    """
    raw = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes | bytearray) \
        else np.ascontiguousarray(data).reshape(-1).view(np.uint8)  # fmt: skip
    if raw.size % block_size:
        raise BadArgument(f"{where}: {raw.size} bytes is not a multiple of the "
                          f"{block_size}-byte block")  # fmt: skip
    return raw


class Namespace:
    """One active namespace of a controller."""

    def __init__(
        self, controller: NVMeController, nsid: int, identity: spec.IdentifyNamespace
    ) -> None:
        self.controller = controller
        self.nsid = nsid
        self.identity = identity
        self.block_size = identity.block_size
        self.blocks = identity.nsze
        self.where = f"{controller.address} nsid {nsid}"

    @property
    def size(self) -> int:
        """Capacity in bytes."""
        return self.blocks * self.block_size

    @property
    def blocks_per_command(self) -> int:
        """The most blocks one READ or WRITE moves: the controller's maximum transfer
        (MDTS), and at most 65536 (NLB is 16 bits)."""
        return max(1, min(self.controller.max_transfer // self.block_size, 0x10000))

    def __repr__(self) -> str:
        return f"<Namespace {self.where}: {self.blocks} blocks of {self.block_size} bytes>"

    # --- checks ------------------------------------------------------------------

    def _check(self, name: str, lba: int, count: int) -> None:
        if count <= 0:
            raise BadArgument(f"{name} of {count} blocks on {self.where} lba {lba}: "
                              "count must be at least 1")  # fmt: skip
        if lba < 0 or lba >= 1 << 64:
            raise BadArgument(f"{name} on {self.where}: lba {lba} is not a 64-bit block address")

    def _queue(self, queue: IOQueue | None) -> IOQueue:
        if queue is not None:
            return queue
        if not self.controller.io_queues:
            raise BadArgument(f"{self.where}: the controller has no I/O queue")
        return self.controller.io_queues[0]

    # --- commands --------------------------------------------------------------------

    def _transfer(
        self, opc: IOOpcode, lba: int, count: int, queue: IOQueue, out: np.ndarray | None
    ) -> None:
        """Move `count` blocks in chunks of the bounce buffer (`out`: read destination)."""
        ctrl = self.controller
        name = opc.name
        per_command = self.blocks_per_command
        poll = queue.vector is None or ctrl.work_loop_thread()
        with queue.io_lock:
            done = 0
            while done < count:
                blocks = min(per_command, count - done)
                length = blocks * self.block_size
                start = lba + done
                if opc is IOOpcode.WRITE:
                    assert out is not None
                    queue.bounce.mmap[:length] = out[done * self.block_size :][:length]
                command = spec.read_write(opc, self.nsid, start, blocks, 0, 0)
                what = f"{name} of {blocks} blocks at lba {start}"
                try:
                    ctrl._execute(queue, command, what, (queue.bounce_mapping, 0, length), poll)
                except NVMeStatusError as exc:
                    raise NVMeStatusError(f"{name}", f"{self.where} lba {start}",
                                          exc.status) from None  # fmt: skip
                if opc is IOOpcode.READ:
                    assert out is not None
                    dest = out[done * self.block_size : done * self.block_size + length]
                    dest[:] = np.frombuffer(queue.bounce.mmap, np.uint8, length)
                done += blocks

    def read(self, lba: int, count: int = 1, queue: IOQueue | None = None) -> np.ndarray:
        """Read `count` blocks from `lba`; return them as a new uint8 array.

        Raises:
            BadArgument: count < 1 or a negative lba.
            NVMeStatusError: the device refused (e.g. LBA OUT OF RANGE).
            NVMeTimeout: no completion in time (the controller was reset).
        """
        self._check("READ", lba, count)
        out = np.empty(count * self.block_size, dtype=np.uint8)
        self._transfer(IOOpcode.READ, lba, count, self._queue(queue), out)
        return out

    def write(self, lba: int, data: np.ndarray | bytes, queue: IOQueue | None = None) -> None:
        """Write `data` (a whole number of blocks) at `lba`.

        Raises:
            BadArgument: empty data, not a multiple of the block size, or a negative lba.
            NVMeStatusError: the device refused (e.g. LBA OUT OF RANGE).
            NVMeTimeout: no completion in time (the controller was reset).
        """
        raw = block_bytes(data, self.block_size, f"WRITE on {self.where} lba {lba}")
        count = raw.size // self.block_size
        self._check("WRITE", lba, count)
        self._transfer(IOOpcode.WRITE, lba, count, self._queue(queue), raw)

    def submit(
        self,
        opc: IOOpcode,
        lba: int,
        count: int,
        data: tuple[Mapping, int],
        callback: Callback,
        queue: IOQueue | None = None,
        ring: bool = True,
    ) -> int:
        """Queue a READ or WRITE of `count` blocks to or from caller-owned DMA memory and
        return at once (no bounce copy): the asynchronous path, for queue depths above 1.

        `data` is (mapping, offset) of memory prepared with the controller's ``mapper``.
        `callback` runs with the Completion (check ``.ok``) or the exception that ended
        the command, on the work loop (MSI-X queues) or in the thread that calls the
        queue's ``process_completions`` (polled queues). No timeout is applied here.

        Raises:
            BadArgument: count < 1, a bad lba, or a transfer past the maximum.
            BusyResourceError: the queue is full.
        """
        self._check(opc.name, lba, count)
        length = count * self.block_size
        if length > self.controller.max_transfer:
            raise BadArgument(f"{opc.name} of {count} blocks on {self.where}: more than the "
                              f"{self.controller.max_transfer}-byte maximum transfer")  # fmt: skip
        mapping, offset = data
        command = spec.read_write(opc, self.nsid, lba, count, 0, 0)
        return self._queue(queue).submit(command, callback, f"{opc.name} at lba {lba}",
                                         (mapping, offset, length), ring=ring)  # fmt: skip

    def commands(self, opc: IOOpcode, lbas: np.ndarray, count: int) -> np.ndarray:
        """READ or WRITE submission entries of `count` blocks at each of `lbas`, built
        at once with NumPy, for :meth:`QueuePair.submit_batch` (which sets cid and PRPs).

        Raises:
            BadArgument: count outside 1..65536, or an lba + count past the namespace.
        """
        lbas = np.asarray(lbas, dtype=np.uint64)
        if not 1 <= count <= 0x10000:
            raise BadArgument(f"{opc.name} on {self.where}: {count} blocks is outside "
                              "1..65536 per command")  # fmt: skip
        if lbas.size and int(lbas.max()) + count > self.blocks:
            raise BadArgument(f"{opc.name} on {self.where}: lba {int(lbas.max())} + {count} "
                              f"blocks runs past the end ({self.blocks} blocks)")  # fmt: skip
        entries = np.zeros(lbas.size, spec.SubmissionEntry)
        entries["opc"] = opc
        entries["nsid"] = self.nsid
        entries["cdw10"] = lbas & np.uint64(0xFFFF_FFFF)
        entries["cdw11"] = lbas >> np.uint64(32)
        entries["cdw12"] = count - 1
        return entries

    def submit_flush(self, callback: Callback, queue: IOQueue | None = None, ring: bool = True):
        """Queue a FLUSH and return at once; `callback` as for :meth:`submit`.

        Raises:
            BusyResourceError: the queue is full.
        """
        return self._queue(queue).submit(spec.flush(self.nsid), callback, "FLUSH", ring=ring)

    def flush(self, queue: IOQueue | None = None) -> None:
        """Commit the volatile write cache to media (NVM §3.2.2).

        Raises:
            NVMeStatusError, NVMeTimeout: as for read.
        """
        q = self._queue(queue)
        poll = q.vector is None or self.controller.work_loop_thread()
        with q.io_lock:
            try:
                self.controller._execute(q, spec.flush(self.nsid), "FLUSH", None, poll)
            except NVMeStatusError as exc:
                raise NVMeStatusError("FLUSH", self.where, exc.status) from None
