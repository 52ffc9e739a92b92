"""The NVMe driver as a Service: what the personality in ``NVMeDriver.plist`` names.

Thin over :class:`~hwkit.drivers.nvme.controller.NVMeController`: ``start`` brings the
controller up on the nub's work loop and publishes what identify said as properties;
``stop`` shuts it down cleanly and gives the function back to its kernel driver.
Scripts that want a controller without matching use ``NVMeController.open``.
"""

from __future__ import annotations

from hwkit.errors import HwkitError
from hwkit.pci.nubs import PCIDevice
from hwkit.service import Service

from .controller import NVMeController
from .namespace import Namespace


class NVMeDriver(Service):
    """Binds to an NVMe function (class 010802) and drives it from user space.

    Personality keys read (all optional): ``NVMeQueueDepth`` (I/O queue entries,
    default 64), ``NVMeIOQueues`` (default 1), ``NVMePolled`` (poll completions
    instead of MSI-X).
    """

    controller: NVMeController

    def start(self, provider: PCIDevice) -> bool:
        depth = int(self.get_property("NVMeQueueDepth") or 64)
        queues = int(self.get_property("NVMeIOQueues") or 1)
        polled = bool(self.get_property("NVMePolled") or False)
        controller = NVMeController(provider, io_queues=queues, queue_depth=depth,
                                    polled=polled, work_loop=self.get_work_loop())  # fmt: skip
        try:
            controller.start()
        except HwkitError as exc:
            self.log.error("bring-up failed: %s", exc)
            controller.close()
            provider.close_device()
            return False
        self.controller = controller
        ident = controller.identity
        self.set_property("HWNVMeModel", ident.model)
        self.set_property("HWNVMeSerial", ident.serial)
        self.set_property("HWNVMeFirmware", ident.firmware)
        self.set_property("HWNVMeVersion", controller.version)
        self.set_property("HWNVMeNamespaces", list(controller.active_namespaces))
        self.set_property("HWInterruptType", "polled" if polled else "MSIX")
        self.register_service()
        return True

    def stop(self, provider: PCIDevice) -> None:
        self.controller.close()
        provider.close_device()

    def namespace(self, nsid: int = 1) -> Namespace:
        """Namespace `nsid` of the controller (see NVMeController.namespace)."""
        return self.controller.namespace(nsid)
