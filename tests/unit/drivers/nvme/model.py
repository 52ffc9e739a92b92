"""A small NVMe controller model written from the spec, for the controller's unit tests.

It plays the device behind a BAR-sized bytearray on a thread: CSTS.RDY follows CC.EN,
CC.SHN completes a shutdown, submission doorbells are consumed and answered with
completions carrying the phase tag; DMA goes through the IOVAs the fake container was
given. Commands on a queue listed in ``deaf`` are never answered (a hung queue).
"""

from __future__ import annotations

import ctypes
import struct
import threading
import time

import numpy as np
from hwkit.drivers.nvme import spec
from hwkit.drivers.nvme.spec import CC, CSTS, Reg

from hwkit.dma import DMAMapper, IOVAAllocator
from hwkit.mmio import Registers

CAP = 0x7FF | (1 << 16) | (1 << 24) | (1 << 37)  # MQES 2047, CQR, TO 500 ms, NVM set


class Container:
    """Records IOVA -> host address, as the IOMMU would translate."""

    def __init__(self) -> None:
        self.maps: dict[int, tuple[int, int]] = {}
        # Held across each device access and each (un)map, so the driver cannot unmap
        # and free a buffer while the device thread is in the middle of a DMA to it
        # (that would touch freed memory: a crash, not a test failure).
        self.lock = threading.Lock()

    def map_dma(self, vaddr: int, iova: int, size: int, flags: int = 3) -> None:
        with self.lock:
            self.maps[iova] = (vaddr, size)

    def unmap_dma(self, iova: int, size: int) -> None:
        with self.lock:
            del self.maps[iova]

    def host(self, iova: int, length: int) -> int:
        for base, (vaddr, size) in self.maps.items():
            if base <= iova and iova + length <= base + size:
                return vaddr + iova - base
        raise AssertionError(f"device DMA to unmapped IOVA 0x{iova:x}+{length}")


class Model:
    """The device: registers, queues, a RAM-backed namespace of 512-byte blocks."""

    def __init__(self, identify_controller: bytes, identify_namespace: bytes) -> None:
        self.bar = bytearray(0x4000)
        self.regs = Registers(self.bar, "model BAR0")
        self.regs.write64(Reg.CAP, CAP)
        self.regs.write32(Reg.VS, 0x00010400)
        self.container = Container()
        self.id_ctrl = identify_controller
        self.id_ns = identify_namespace
        blocks = spec.IdentifyNamespace.parse(identify_namespace).nsze
        self.disk = bytearray(blocks * 512)
        self.deaf: set[int] = set()
        self.commands: list[tuple[int, int]] = []  # (qid, opcode)
        self.enables = 0
        self._queues_reset()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop = True
        self._thread.join()

    # --- DMA --------------------------------------------------------------------------

    def read(self, iova: int, length: int) -> bytes:
        with self.container.lock:
            return ctypes.string_at(self.container.host(iova, length), length)

    def write(self, iova: int, data: bytes) -> None:
        with self.container.lock:
            ctypes.memmove(self.container.host(iova, len(data)), data, len(data))

    def _pages(self, prp1: int, prp2: int, length: int) -> list[tuple[int, int]]:
        first = min(length, 4096 - prp1 % 4096)
        out = [(prp1, first)]
        rest = length - first
        if rest <= 0:
            return out
        if rest <= 4096:
            return [*out, (prp2, rest)]
        count = (rest + 4095) // 4096
        entries = np.frombuffer(self.read(prp2, count * 8), "<u8")
        for i, address in enumerate(entries.tolist()):
            out.append((address, min(4096, rest - i * 4096)))
        return out

    # --- the controller ------------------------------------------------------------

    def _queues_reset(self) -> None:
        self.sqs: dict[int, list[int]] = {}  # qid -> [iova, size, head, cqid]
        self.cqs: dict[int, list[int]] = {}  # qid -> [iova, size, tail, phase]

    def _run(self) -> None:
        while not self._stop:
            self._step()
            time.sleep(0.0002)

    def _step(self) -> None:
        cc = self.regs.read32(Reg.CC)
        csts = self.regs.read32(Reg.CSTS)
        if cc & CC.EN and not csts & CSTS.RDY:
            aqa = self.regs.read32(Reg.AQA)
            self._queues_reset()
            self.cqs[0] = [self.regs.read64(Reg.ACQ), spec.AQA.ACQS.get(aqa) + 1, 0, 1]
            self.sqs[0] = [self.regs.read64(Reg.ASQ), spec.AQA.ASQS.get(aqa) + 1, 0, 0]
            self.enables += 1
            csts |= CSTS.RDY
        elif not cc & CC.EN and csts & CSTS.RDY:
            self._queues_reset()
            self.bar[0x1000:] = bytes(len(self.bar) - 0x1000)  # §7.3.2: doorbells reset
            csts &= ~CSTS.RDY
        if spec.CC_SHN.get(cc) and spec.CSTS_SHST.get(csts) != 2:
            csts = (csts & ~0xC) | CSTS.SHST_COMPLETE
        self.regs.write32(Reg.CSTS, csts)
        if not csts & CSTS.RDY:
            return
        for qid, sq in list(self.sqs.items()):
            tail = self.regs.read32(spec.SQ_TAIL(qid, 0))
            while sq[2] != tail and qid not in self.deaf:
                entry = np.frombuffer(self.read(sq[0] + sq[2] * 64, 64), spec.SubmissionEntry)[0]
                sq[2] = (sq[2] + 1) % sq[1]
                dw0, status = self._execute(qid, entry)
                self._complete(sq[3], qid, sq[2], int(entry["cid"]), dw0, status)

    def _complete(self, cqid: int, sqid: int, sqhd: int, cid: int, dw0: int, status: int) -> None:
        cq = self.cqs[cqid]
        self.write(cq[0] + cq[2] * 16, struct.pack("<IIHHHH", dw0, 0, sqhd, sqid, cid,
                                                   (status << 1) | cq[3]))  # fmt: skip
        cq[2] += 1
        if cq[2] == cq[1]:
            cq[2], cq[3] = 0, cq[3] ^ 1

    def _execute(self, qid: int, e: np.void) -> tuple[int, int]:
        opc = int(e["opc"])
        self.commands.append((qid, opc))
        cdw10, cdw11 = int(e["cdw10"]), int(e["cdw11"])
        if qid == 0:
            return self._admin(opc, e, cdw10, cdw11)
        if opc in (spec.IOOpcode.READ, spec.IOOpcode.WRITE):
            lba = cdw10 | (cdw11 << 32)
            blocks = (int(e["cdw12"]) & 0xFFFF) + 1
            if lba + blocks > len(self.disk) // 512:
                return 0, 0x80  # LBA OUT OF RANGE
            at = lba * 512
            for address, length in self._pages(int(e["prp1"]), int(e["prp2"]), blocks * 512):
                if opc == spec.IOOpcode.READ:
                    self.write(address, bytes(self.disk[at : at + length]))
                else:
                    self.disk[at : at + length] = self.read(address, length)
                at += length
            return 0, 0
        if opc == spec.IOOpcode.FLUSH:
            return 0, 0
        return 0, 0x01  # INVALID COMMAND OPCODE

    def _admin(self, opc: int, e: np.void, cdw10: int, cdw11: int) -> tuple[int, int]:
        size, qid = (cdw10 >> 16) + 1, cdw10 & 0xFFFF
        if opc == spec.AdminOpcode.IDENTIFY:
            cns = cdw10 & 0xFF
            if cns == spec.CNS.NAMESPACE and int(e["nsid"]) != 1:
                return 0, 0x0B  # INVALID NAMESPACE OR FORMAT
            data = {0: self.id_ns, 1: self.id_ctrl, 2: struct.pack("<I", 1)}[cns]
            self.write(int(e["prp1"]), data.ljust(4096, b"\0"))
            return 0, 0
        if opc == spec.AdminOpcode.SET_FEATURES:
            return cdw11, 0
        if opc == spec.AdminOpcode.CREATE_IO_CQ:
            self.cqs[qid] = [int(e["prp1"]), size, 0, 1]
            return 0, 0
        if opc == spec.AdminOpcode.CREATE_IO_SQ:
            if cdw11 >> 16 not in self.cqs:
                return 0, 0x100  # COMPLETION QUEUE INVALID (sct 1)
            self.sqs[qid] = [int(e["prp1"]), size, 0, cdw11 >> 16]
            return 0, 0
        if opc == spec.AdminOpcode.DELETE_IO_SQ:
            self.sqs.pop(qid, None)
            return 0, 0
        if opc == spec.AdminOpcode.DELETE_IO_CQ:
            self.cqs.pop(qid, None)
            return 0, 0
        return 0, 0x01


class Nub:
    """What NVMeController asks of its IOPCIDevice nub, over the model."""

    address = "pci:0000:00:05.0"
    bdf = "0000:00:05.0"

    def __init__(self, model: Model) -> None:
        self.model = model
        self.closed = False

    def open_device(self) -> None:
        pass

    def map_bar(self, index: int, names: dict[int, str] | None = None) -> Registers:
        return Registers(self.model.bar, f"{self.address} BAR{index}", names)

    def set_command(self, **bits: bool) -> int:
        return 0x6

    def dma_mapper(self, address_bits: int = 64) -> DMAMapper:
        return DMAMapper(self.model.container, IOVAAllocator([(0, (1 << 39) - 1)]), address_bits)

    def free(self) -> None:
        self.closed = True

    close_device = free  # what a driver's stop calls
