"""Driver for QEMU's ``edu`` teaching device (1234:11e8), over VFIO.

The device (QEMU docs/specs/edu.rst) has one 1 MiB memory BAR with an identification
register, a liveness check, a factorial unit that can raise an interrupt when done,
and a DMA engine moving up to 4 KiB between host memory and a buffer inside the device
at 0x40000. It raises MSI when enabled, INTx otherwise. Its DMA addresses are 28 bits.

Every public method is safe from any thread: it runs on the driver's work loop, where
the interrupt handler also runs, so the registers need no lock.
"""

from __future__ import annotations

import asyncio
import struct
import time
from enum import IntEnum, IntFlag
from typing import Any

from hwkit.dataqueue import DataQueue
from hwkit.dma import Direction, DMABuffer
from hwkit.errors import BadArgument, HwkitError
from hwkit.pci.nubs import PCIDevice
from hwkit.service import Service
from hwkit.userclient import UserClient, external_method


class Reg(IntEnum):
    """BAR0 registers (edu.rst)."""

    IDENTIFICATION = 0x00  # 0xRRrr00ed: major, minor version, then 0xed
    LIVENESS = 0x04  # reads back the bitwise inverse of what was written
    FACTORIAL = 0x08  # write n, read n! once STATUS.COMPUTING clears
    STATUS = 0x20
    IRQ_STATUS = 0x24
    IRQ_RAISE = 0x60
    IRQ_ACK = 0x64
    DMA_SRC = 0x80
    DMA_DST = 0x88
    DMA_COUNT = 0x90
    DMA_CMD = 0x98


class Status(IntFlag):
    COMPUTING = 0x01
    IRQ_ON_FACTORIAL = 0x80


class Irq(IntFlag):
    FACTORIAL = 0x001
    DMA = 0x100


class DmaCmd(IntFlag):
    START = 0x1
    TO_RAM = 0x2  # direction: device buffer -> host memory (else host -> device)
    IRQ = 0x4


ID_MAGIC = 0xED
DEVICE_BUFFER = 0x40000
DEVICE_BUFFER_SIZE = 4096
DMA_ADDRESS_BITS = 28
TIMEOUT = 5.0
#: What each interrupt puts in a client's data queue: IRQ_STATUS, the driver's interrupt
#: count, CLOCK_MONOTONIC in ns.
INTERRUPT_NOTE = struct.Struct("<IIQ")


class EduDriver(Service):
    """Binds to an edu function: factorials and DMA, both completed by interrupt."""

    def start(self, provider: PCIDevice) -> bool:
        self.nub = provider
        self.regs = provider.map_bar(0, names={r.value: r.name for r in Reg})
        # edu.rst: the identification register ends in 0xed
        ident = self.regs.read32(Reg.IDENTIFICATION)
        if ident & 0xFF != ID_MAGIC:
            self.log.error("identification 0x%08x is not edu's", ident)
            provider.close_device()
            return False
        self.version = f"{ident >> 24}.{(ident >> 16) & 0xFF}"
        # liveness: the register answers with the inverse
        self.regs.write32(Reg.LIVENESS, 0x5A5AA5A5)
        if self.regs.read32(Reg.LIVENESS) != 0xA5A55A5A:
            self.log.error("liveness check failed")
            provider.close_device()
            return False
        provider.set_command(memory=True, bus_master=True)
        self.interrupts = 0
        self.queues: set[DataQueue] = set()
        self._waiters: dict[Irq, asyncio.Future[int]] = {}
        self._busy: asyncio.Lock | None = None
        self.irq_kind = provider.best_irq_kind()
        self.irq = provider.interrupt_source(self, self._interrupt, self.irq_kind)
        self.set_property("HWInterruptType", self.irq_kind.name)
        self.get_work_loop().add_event_source(self.irq)
        self.irq.enable()
        self.dma = provider.dma_mapper(DMA_ADDRESS_BITS)
        self.buffer = DMABuffer(DEVICE_BUFFER_SIZE, name=f"edu {provider.bdf}")
        self.dma.prepare(self.buffer, Direction.BOTH)
        self.set_property("HWEduVersion", self.version)
        self.log.info("edu %s ready (interrupts by %s)", self.version, self.irq_kind.name)
        self.register_service()
        return True

    def stop(self, provider: PCIDevice) -> None:
        for queue in list(self.queues):
            queue.close()
        self.queues.clear()
        self.irq.disable()
        self.get_work_loop().remove_event_source(self.irq)
        self.dma.close()
        self.buffer.close()
        provider.close_device()

    # --- interrupt --------------------------------------------------------------------

    def _interrupt(self, source: Any, count: int) -> None:
        status = Irq(self.regs.read32(Reg.IRQ_STATUS))
        self.regs.write32(Reg.IRQ_ACK, status)  # edu.rst: write the bits to clear them
        self.interrupts += 1
        note = INTERRUPT_NOTE.pack(int(status), self.interrupts, time.monotonic_ns())
        for queue in list(self.queues):
            queue.enqueue(note)  # a full queue drops the note: the count says so
        for bit in (Irq.FACTORIAL, Irq.DMA):
            waiter = self._waiters.pop(bit, None) if bit in status else None
            if waiter is not None and not waiter.done():
                waiter.set_result(int(status))

    async def _wait_interrupt(self, bit: Irq, what: str) -> None:
        waiter = self._waiters[bit]
        try:
            await asyncio.wait_for(waiter, TIMEOUT)
        except TimeoutError:
            self._waiters.pop(bit, None)
            raise HwkitError(
                f"{what} on {self.nub.address}: no interrupt within {TIMEOUT} s "
                f"(IRQ_STATUS 0x{self.regs.read32(Reg.IRQ_STATUS):x})"
            ) from None

    def _arm(self, bit: Irq) -> None:
        self._waiters[bit] = asyncio.get_running_loop().create_future()

    async def _serial(self) -> asyncio.Lock:
        if self._busy is None:
            self._busy = asyncio.Lock()
        return self._busy

    # --- operations (run on the work loop) ------------------------------------------

    async def _factorial(self, n: int) -> int:
        async with await self._serial():
            self._arm(Irq.FACTORIAL)
            self.regs.write32(Reg.STATUS, Status.IRQ_ON_FACTORIAL)
            self.regs.write32(Reg.FACTORIAL, n)
            await self._wait_interrupt(Irq.FACTORIAL, f"factorial of {n}")
            return self.regs.read32(Reg.FACTORIAL)

    async def _dma(self, to_ram: bool, device_offset: int, length: int) -> None:
        async with await self._serial():
            host = self.dma.iova(self.buffer)
            device = DEVICE_BUFFER + device_offset
            self.regs.write64(Reg.DMA_SRC, device if to_ram else host)
            self.regs.write64(Reg.DMA_DST, host if to_ram else device)
            self.regs.write64(Reg.DMA_COUNT, length)
            self._arm(Irq.DMA)
            command = DmaCmd.START | DmaCmd.IRQ | (DmaCmd.TO_RAM if to_ram else 0)
            self.regs.write64(Reg.DMA_CMD, command)
            await self._wait_interrupt(Irq.DMA, f"DMA of {length} bytes")

    # --- public API (any thread) ------------------------------------------------------

    def factorial(self, n: int) -> int:
        """n! computed by the device (32-bit result, as the device's register is)."""
        if not 0 <= n < 1 << 32:
            raise BadArgument(f"factorial: n must be a 32-bit unsigned integer, not {n}")
        return self.get_work_loop().run_sync(self._factorial, n)

    def _check_range(self, device_offset: int, length: int) -> None:
        # QEMU 7.2's edu aborts the whole VM on a transfer that ends exactly at the end
        # of its buffer (lab-notes.md): keep transfers strictly inside it.
        if length <= 0 or device_offset < 0 or device_offset + length >= DEVICE_BUFFER_SIZE:
            raise BadArgument(
                f"edu DMA of {length} bytes at device offset {device_offset}: must lie "
                f"strictly inside its {DEVICE_BUFFER_SIZE}-byte buffer (end < 4096)"
            )

    def write(self, data: bytes, device_offset: int = 0) -> None:
        """DMA `data` from host memory into the device's buffer."""
        self._check_range(device_offset, len(data))
        self.buffer.mmap[: len(data)] = data
        self.get_work_loop().run_sync(self._dma, False, device_offset, len(data))

    def read(self, length: int, device_offset: int = 0) -> bytes:
        """DMA `length` bytes from the device's buffer into host memory; return them."""
        self._check_range(device_offset, length)
        self.get_work_loop().run_sync(self._dma, True, device_offset, length)
        return bytes(self.buffer.mmap[:length])


class EduUserClient(UserClient):
    """What an application may do with an edu device through hwkit-daemon.

    ========  ===============  ===============================================================
    selector  name             what
    ========  ===============  ===============================================================
    0         factorial        1 scalar in (n), 1 out (n!, 32 bits as the device computes it)
    1         dma_to_device    2 scalars in (length, device offset): DMA from the shared buffer
    2         dma_from_device  2 scalars in (length, device offset): DMA into the shared buffer
    3         interrupts       1 scalar out: interrupts handled so far
    ========  ===============  ===============================================================

    Memory types: 0 = the driver's DMA buffer (4 KiB, read-write: the client fills it
    before dma_to_device and reads it after dma_from_device, with no copy in between);
    1 = this connection's data queue of interrupt notes (:data:`INTERRUPT_NOTE`).
    """

    provider: EduDriver

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.queue: DataQueue | None = None

    @external_method(0, scalar_in=1, scalar_out=1)
    async def factorial(self, n: int) -> int:
        if not 0 <= n < 1 << 32:
            raise BadArgument(f"factorial: n must be a 32-bit unsigned integer, not {n}")
        return await self.provider._factorial(n)

    @external_method(1, scalar_in=2)
    async def dma_to_device(self, length: int, device_offset: int) -> None:
        self.provider._check_range(device_offset, length)
        await self.provider._dma(False, device_offset, length)

    @external_method(2, scalar_in=2)
    async def dma_from_device(self, length: int, device_offset: int) -> None:
        self.provider._check_range(device_offset, length)
        await self.provider._dma(True, device_offset, length)

    @external_method(3, scalar_out=1)
    def interrupts(self) -> int:
        return self.provider.interrupts

    def client_memory_for_type(self, memory_type: int) -> object:
        if memory_type == 0:
            return self.provider.buffer
        if memory_type == 1:
            if self.queue is None:
                self.queue = DataQueue(64 * INTERRUPT_NOTE.size, "edu-interrupts")
                self.provider.queues.add(self.queue)
            return self.queue
        raise BadArgument(f"edu: no memory type {memory_type} (0: DMA buffer, 1: interrupts)")

    def client_close(self) -> None:
        if self.queue is not None:
            self.provider.queues.discard(self.queue)
            self.queue.close()
            self.queue = None


def main() -> int:
    """Bind edu functions by matching, in this process, and put each through its paces."""
    import os

    from hwkit.inprocess import Session, pci_nubs
    from hwkit.pci.vfio import current_driver

    session = Session()
    session.publish_all(pci_nubs())
    drivers = session.drivers("EduDriver")
    if not drivers:
        session.close()
        print("no edu function matched (is there one? `hwkit probe pci`)")
        return 1
    for edu in drivers:
        nub = edu.provider
        print(f"{nub.address}: EduDriver started (score {edu.get_property('IOProbeScore')}), "
              f"edu {edu.version}, now bound to {current_driver(nub.bdf)}, "
              f"interrupts by {edu.get_property('HWInterruptType')}")  # fmt: skip
        for n in (5, 10, 12):
            print(f"  factorial({n}) = {edu.factorial(n)}")
        data = os.urandom(1000)
        edu.write(data)
        back = edu.read(len(data))
        verdict = "identical" if back == data else "DIFFERENT"
        print(f"  DMA of 1000 random bytes to the device and back: {verdict}")
        print(f"  {edu.interrupts} interrupts handled on the work loop")
    session.close()
    print("drivers stopped; functions returned to their previous drivers")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
