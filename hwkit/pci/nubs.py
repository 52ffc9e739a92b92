"""The PCI family's nub: ``IOPCIDevice``, one per function, and what drivers do with it.

A driver matched to a :class:`PCIDevice` opens the function through VFIO and gets its
BARs, interrupts and DMA from the nub, as an I/O Kit driver does from its provider:

    def start(self, provider: PCIDevice) -> bool:
        bar0 = provider.map_bar(0, names=REGISTER_NAMES)          # Registers
        provider.set_command(memory=True, bus_master=True)
        irq = provider.interrupt_source(self, self.interrupt)     # INTx, MSI or MSI-X
        self.get_work_loop().add_event_source(irq); irq.enable()
        dma = provider.dma_mapper(address_bits=28)                # prepare / complete

Everything opened through the nub is released by :meth:`PCIDevice.close_device`
(called when the driver stops, or the nub terminates): DMA mappings first, then
interrupts, BAR mappings, the VFIO fds, and last the function goes back to the kernel
driver it had (``release``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from hwkit.dma import DMAMapper, IOVAAllocator
from hwkit.errors import BadArgument, ClosedResourceError
from hwkit.mmio import Registers
from hwkit.pci import vfio
from hwkit.pci.config import Command
from hwkit.pci.discovery import SYSFS_ROOT, PCIFunction, nub_properties, read_function
from hwkit.service import Service
from hwkit.workloop import InterruptEventSource

# Config space offsets (PCI Local Bus 3.0 §6.1).
CONFIG_VENDOR_ID = 0x00
CONFIG_COMMAND = 0x04


class PCIDevice(Service):
    """An ``IOPCIDevice`` nub for one PCI function (named by its BDF).

    Threading: open and map from the driver's start/stop; interrupt actions run on the
    work loop the source is added to.
    """

    ioclass: ClassVar[str] = "IOPCIDevice"

    def __init__(self, function: PCIFunction) -> None:
        # Named as I/O Kit names a PCI nub without a firmware name ("pciVVVV,DDDD"),
        # located by its address: IOService:/pci1234,11e8@0000:00:04.0
        name = f"pci{function.vendor_id:04x},{function.device_id:04x}"
        super().__init__(name, nub_properties(function), location=function.bdf)
        if function.iommu_group is not None:
            # Viable for this function's driver: every other member of the group is free
            # (or on vfio-pci); a driver matched here can then open it.
            others = [
                f"{bdf} ({driver})"
                for bdf, driver in vfio.group_blockers(function.iommu_group)
                if bdf != function.bdf
            ]
            self.set_property("HWIOMMUGroupViable", not others)
            if others:
                self.set_property("HWIOMMUGroupBlockers", others)
        self.function = function
        self.bdf = function.bdf
        self.opened: vfio.OpenedDevice | None = None
        self._eventfds: dict[int, list[int]] = {}
        self._registers: list[Registers] = []
        self._mappers: list[DMAMapper] = []
        self._allocator: IOVAAllocator | None = None
        self._request_source: InterruptEventSource | None = None
        self.daemon_id: int | None = None  # set when rebuilt in a driver host
        self.daemon_path: str | None = None
        # In the daemon: the function was bound for a driver host, and its driver before.
        self._bound_for_host = False
        self._host_previous: str | None = None
        # In a driver host: descriptors adopted, request interrupt not yet watched.
        self._watch_requests_later = False

    @classmethod
    def from_description(cls, description: Mapping[str, Any], fds: list[int]) -> PCIDevice:
        """The nub again, in a driver host, from the daemon's description of it.

        The function is read afresh from sysfs (by its ``HWAddress``). `fds` are the
        container, group and device descriptors the daemon opened for it
        (:meth:`driver_host_fds`): :meth:`open_device` uses them, so a host running
        without privileges can drive the function. With no descriptors the host opens
        the function itself (a host running as root, or an older daemon).
        """
        bdf = str(description["properties"]["HWAddress"]).removeprefix("pci:")
        try:
            nub = cls(read_function(SYSFS_ROOT / "bus" / "pci" / "devices" / bdf))
            if fds:
                nub.opened = vfio.adopt_device(bdf, fds)
        except BaseException:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            raise
        nub.daemon_id = int(description["id"])
        nub.daemon_path = str(description["path"])
        if nub.opened is not None:
            nub._watch_requests_later = True
        return nub

    # --- the daemon's side of a driver host -------------------------------------

    def driver_host_fds(self) -> list[int]:
        """Open the function for a driver host: bind to vfio-pci, set up the container.

        Called by the daemon (root) when it starts the driver matched to this nub in a
        driver host; the descriptors go to the host, which may run without privileges.
        The daemon keeps none of them open (the device is reset when the host's copies
        close) but remembers the driver the function had, for
        :meth:`driver_host_exited`.

        Raises:
            HwkitError: the function cannot be bound or opened (the message says why).
        """
        opened = vfio.open_device(self.bdf)
        if not self._bound_for_host:
            self._bound_for_host, self._host_previous = True, opened.previous_driver
        try:
            return opened.handles()
        finally:
            opened.close(restore=False)

    def driver_host_exited(self) -> None:
        """The driver host is gone (and its descriptors with it): give the function back."""
        if not self._bound_for_host:
            return
        previous, self._bound_for_host = self._host_previous, False
        if not (SYSFS_ROOT / "bus" / "pci" / "devices" / self.bdf).exists():
            return  # removed: nothing to give back
        try:
            vfio.release(self.bdf, previous)
        except Exception as exc:
            self.log.error("cannot return the function to %s: %s", previous or "no driver", exc)
        else:
            self.log.info("returned to %s", previous or "no driver")

    @property
    def address(self) -> str:
        return f"pci:{self.bdf}"

    # --- opening ------------------------------------------------------------------

    def open_device(self) -> vfio.VfioDevice:
        """Bind the function to vfio-pci (remembering its driver) and open it once.

        From then on the nub listens to VFIO's request interrupt: when the kernel wants
        the device back (hot-unplug, an unbind from sysfs) the nub terminates itself,
        its driver stops and releases the device, and the removal can complete.
        """
        if self.opened is None:
            self.opened = vfio.open_device(self.bdf)
            self.log.info("opened through VFIO (previous driver: %s)", self.opened.previous_driver)
            self._watch_requests()
        elif self._watch_requests_later:  # adopted from the daemon: watch on first use
            self._watch_requests_later = False
            self._watch_requests()
        return self.opened.device

    def _watch_requests(self) -> None:
        assert self.opened is not None
        try:
            if self.opened.device.irq_info(vfio.PciIrq.REQ).count == 0:
                return
        except BadArgument:  # a kernel without the request interrupt
            return
        fd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        self.opened.device.enable_irqs(vfio.PciIrq.REQ, [fd])
        self._eventfds[vfio.PciIrq.REQ] = [fd]
        self._request_source = InterruptEventSource(self, self._removal_requested, fd)
        self.get_work_loop().add_event_source(self._request_source)
        self._request_source.enable()

    async def _removal_requested(self, source: InterruptEventSource, count: int) -> None:
        if self.is_inactive:
            return
        self.log.warning("the kernel asks for the device back (removal or unbind): terminating")
        await self.terminate()

    @property
    def device(self) -> vfio.VfioDevice:
        if self.opened is None:
            raise ClosedResourceError(f"{self.address} is not open: call open_device() first")
        return self.opened.device

    def is_present(self) -> bool:
        """Does the function still answer config reads? (all-ones vendor ID = gone)."""
        try:
            return self.device.config_read16(CONFIG_VENDOR_ID) != 0xFFFF
        except Exception:
            return False

    # --- config space ---------------------------------------------------------------

    def set_command(self, *, memory: bool | None = None, io: bool | None = None,
                    bus_master: bool | None = None) -> int:  # fmt: skip
        """Set or clear COMMAND bits (setMemoryEnable / setIOEnable / setBusMasterEnable)."""
        value = self.device.config_read16(CONFIG_COMMAND)
        for flag, wanted in ((Command.MEMORY_SPACE, memory), (Command.IO_SPACE, io),
                             (Command.BUS_MASTER, bus_master)):  # fmt: skip
            if wanted is not None:
                value = value | flag if wanted else value & ~flag
        self.device.config_write16(CONFIG_COMMAND, value)
        return value

    # --- BARs ---------------------------------------------------------------------

    def map_bar(self, index: int, names: Mapping[int, str] | None = None) -> Registers:
        """Map memory BAR `index` and return its register accessor."""
        mapping = self.open_device().map_region(index)
        registers = Registers(mapping, f"{self.address} BAR{index}", names, self.is_present)
        self._registers.append(registers)
        return registers

    # --- interrupts ---------------------------------------------------------------

    def interrupt_source(
        self,
        owner: Any,
        action: Callable[..., Any],
        kind: vfio.PciIrq | None = None,
        vector: int = 0,
        vectors: int = 1,
    ) -> InterruptEventSource:
        """An interrupt event source for one vector, routed through an eventfd.

        `kind` defaults to MSI-X if the function has it, else MSI, else INTx (scan order of
        ``getInterruptType``). The first call for a kind enables `vectors` vectors of it.
        INTx sources unmask the line after each action (VFIO automasks it).
        """
        device = self.open_device()
        kind = kind if kind is not None else self.best_irq_kind()
        if kind not in self._eventfds:
            count = device.irq_info(kind).count
            if vectors > count:
                raise BadArgument(f"{self.address} has {count} {kind.name} vectors, not {vectors}")
            fds = [os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK) for _ in range(vectors)]
            device.enable_irqs(kind, fds)
            self._eventfds[kind] = fds
        fds = self._eventfds[kind]
        if not 0 <= vector < len(fds):
            raise BadArgument(f"{self.address}: {kind.name} vector {vector} was not enabled")
        unmask = device.unmask_intx if kind == vfio.PciIrq.INTX else None
        return InterruptEventSource(owner, action, fds[vector], unmask=unmask)

    def best_irq_kind(self) -> vfio.PciIrq:
        """MSI-X if the function has vectors of it, else MSI, else INTx."""
        self.open_device()
        for kind in (vfio.PciIrq.MSIX, vfio.PciIrq.MSI):
            with contextlib.suppress(BadArgument):
                if self.device.irq_info(kind).count > 0:
                    return kind
        return vfio.PciIrq.INTX

    # --- DMA ----------------------------------------------------------------------

    def dma_mapper(self, address_bits: int = 64) -> DMAMapper:
        """A prepare/complete mapper for this function, IOVAs below 2**address_bits."""
        self.open_device()
        assert self.opened is not None
        if self._allocator is None:
            info = self.opened.container.iommu_info()
            self._allocator = IOVAAllocator(info.iova_ranges, info.min_page_size)
        mapper = DMAMapper(self.opened.container, self._allocator, address_bits)
        self._mappers.append(mapper)
        return mapper

    # --- closing ------------------------------------------------------------------

    def free(self) -> None:
        """Nothing opened through the nub outlives it (I/O Kit's ``free``)."""
        self.close_device()
        super().free()

    def close_device(self, restore: bool = True) -> None:
        """Release everything opened through this nub; give the function back."""
        for mapper in self._mappers:
            mapper.close()
        self._mappers.clear()
        if self._request_source is not None:
            self._request_source.disable()
            if self._request_source.work_loop is not None:
                self._request_source.work_loop.remove_event_source(self._request_source)
            self._request_source = None
        if self.opened is not None:
            for kind, fds in self._eventfds.items():
                with contextlib.suppress(Exception):
                    self.opened.device.disable_irqs(vfio.PciIrq(kind))
                for fd in fds:
                    os.close(fd)
        self._eventfds.clear()
        for registers in self._registers:
            registers.close()
        self._registers.clear()
        if self.opened is not None:
            owner = self.opened.owns_binding
            self.opened.close(restore=restore)
            self.opened = None
            self._allocator = None
            given_back = owner and restore
            self.log.info("closed%s", "; function returned to its driver" if given_back else "")
