"""The PCI family provider on a fake sysfs tree, fed uevents as the kernel sends them."""

from __future__ import annotations

import asyncio

from hwkit.pci.family import PCIFamily
from hwkit.uevent import Uevent

from .configs import EDU, NVME
from .fakesys import add_pci_function


class Recorder:
    def __init__(self) -> None:
        self.published: list = []

    async def publish(self, nub) -> None:
        self.published.append(nub)


def event(action: str, bdf: str, **env: str) -> Uevent:
    devpath = f"/devices/pci0000:00/{bdf}"
    return Uevent(action, devpath, {"SUBSYSTEM": "pci", "PCI_SLOT_NAME": bdf, **env})


def test_enumeration_then_hot_plug(tmp_path) -> None:
    sysfs = tmp_path / "sys"
    add_pci_function(sysfs, "0000:00:04.0", EDU)
    family = PCIFamily(sysfs_root=sysfs, follow=False)
    target = Recorder()

    async def run() -> None:
        await family.start(target)
        assert [n.bdf for n in target.published] == ["0000:00:04.0"]
        nub = target.published[0]
        assert nub.class_name == "IOPCIDevice" and nub.get_property("vendor-id") == 0x1234

        add_pci_function(sysfs, "0000:01:00.0", NVME)
        await family.handle(event("add", "0000:01:00.0"))
        await family.handle(event("add", "0000:01:00.0"))  # a repeat is not a new nub
        assert [n.bdf for n in target.published] == ["0000:00:04.0", "0000:01:00.0"]

        await family.handle(event("bind", "0000:01:00.0", DRIVER="nvme"))
        assert target.published[1].get_property("HWKernelDriver") == "nvme"
        await family.handle(event("unbind", "0000:01:00.0"))
        assert not target.published[1].has_property("HWKernelDriver")

        await family.handle(event("remove", "0000:01:00.0"))
        assert target.published[1].is_inactive and "0000:01:00.0" not in family.nubs
        await family.handle(event("remove", "0000:09:00.0"))  # unknown: ignored
        await family.handle(event("add", "0000:09:00.0"))  # vanished before we looked
        await family.stop()

    asyncio.run(run())
