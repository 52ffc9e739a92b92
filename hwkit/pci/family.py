"""The PCI family as a nub provider: every function a nub, kept in step with hot-plug.

    family = PCIFamily()
    await family.start(daemon)      # publishes an IOPCIDevice nub per function, then
                                    # follows uevents: added functions are published,
                                    # removed ones terminated, bind/unbind noted
    await family.stop()

`daemon` is anything with ``async publish(nub)`` (hwkit-daemon's :class:`Daemon`, or the
in-process :class:`hwkit.inprocess.Session`). A removed function's nub is terminated
(its driver stops); if hwkit's driver held it, VFIO's request interrupt has already
made the nub terminate itself (see :mod:`hwkit.pci.nubs`), which is what lets the
kernel finish the removal.

Threading: runs on the caller's asyncio loop.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Protocol

from hwkit.errors import NotFoundError
from hwkit.pci import discovery
from hwkit.pci.nubs import PCIDevice
from hwkit.uevent import Uevent, UeventMonitor

logger = logging.getLogger("hwkit.pci")


class Publisher(Protocol):
    async def publish(self, nub: Any) -> Any: ...


class PCIFamily:
    """Publishes PCI functions as nubs and follows their hot-plug events."""

    def __init__(self, sysfs_root: Path = discovery.SYSFS_ROOT, follow: bool = True) -> None:
        self.sysfs_root = sysfs_root
        self.follow = follow
        self.nubs: dict[str, PCIDevice] = {}
        self._monitor: UeventMonitor | None = None
        self._target: Publisher | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def start(self, target: Publisher) -> None:
        """Publish every function now; with `follow`, keep up with uevents from then on."""
        self._target = target
        if self.follow:  # listen first, so nothing added during enumeration is missed
            self._monitor = UeventMonitor(subsystems={"pci"})
            asyncio.get_running_loop().add_reader(self._monitor.fileno(), self._readable)
        for function in discovery.list_functions(self.sysfs_root):
            await self._add(function)

    def _readable(self) -> None:
        assert self._monitor is not None
        for event in self._monitor.receive():
            task = asyncio.ensure_future(self.handle(event))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _add(self, function: discovery.PCIFunction) -> None:
        if function.bdf in self.nubs or self._target is None:
            return
        nub = self.nubs[function.bdf] = PCIDevice(function)
        await self._target.publish(nub)

    async def handle(self, event: Uevent) -> None:
        """One PCI uevent: add, remove, bind or unbind of a function."""
        bdf = event.env.get("PCI_SLOT_NAME", event.sys_name)
        nub = self.nubs.get(bdf)
        if event.action == "add":
            path = self.sysfs_root / "bus" / "pci" / "devices" / bdf
            try:
                await self._add(discovery.read_function(path, self.sysfs_root))
            except (OSError, NotFoundError) as exc:  # gone again before we looked
                logger.warning("pci:%s added then vanished: %s", bdf, exc)
        elif event.action == "remove" and nub is not None:
            del self.nubs[bdf]
            if not nub.is_inactive:
                await nub.terminate()
        elif event.action in ("bind", "unbind") and nub is not None:
            driver = event.env.get("DRIVER") if event.action == "bind" else None
            if driver is None:
                nub.remove_property("HWKernelDriver")
            else:
                nub.set_property("HWKernelDriver", driver)

    async def stop(self) -> None:
        if self._monitor is not None:
            asyncio.get_running_loop().remove_reader(self._monitor.fileno())
            self._monitor.close()
            self._monitor = None
        for task in list(self._pending):
            task.cancel()
