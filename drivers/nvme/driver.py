"""The NVMe driver as a Service: what the personality in ``NVMeDriver.plist`` names.

Thin over :class:`~hwkit.drivers.nvme.controller.NVMeController`: ``start`` brings the
controller up on the nub's work loop, creates the user clients' queue pair and
publishes what identify said as properties; ``stop`` shuts it down cleanly and gives
the function back to its kernel driver. Applications reach it through
:class:`~hwkit.drivers.nvme.userclient.NVMeUserClient`; scripts that want a controller
without matching use ``NVMeController.open``.
"""

from __future__ import annotations

import asyncio

from hwkit.dma import Mapping
from hwkit.errors import HwkitError
from hwkit.pci.nubs import PCIDevice
from hwkit.service import Service

from .controller import IOQueue, NVMeController
from .namespace import Namespace
from .spec import IOOpcode
from .userclient import ClientBuffer, run_commands


class NVMeDriver(Service):
    """Binds to an NVMe function (class 010802) and drives it from user space.

    Personality keys read (all optional): ``NVMeQueueDepth`` (I/O queue entries,
    default 64), ``NVMeIOQueues`` (queues of the synchronous API, default 1; one more
    is made for user clients), ``NVMePolled`` (poll completions instead of MSI-X),
    ``NVMeClientBufferSize`` (bytes of each user client's shared buffer, default 2 MiB).
    """

    controller: NVMeController
    client_queue: IOQueue

    def start(self, provider: PCIDevice) -> bool:
        depth = int(self.get_property("NVMeQueueDepth") or 64)
        queues = int(self.get_property("NVMeIOQueues") or 1)
        polled = bool(self.get_property("NVMePolled") or False)
        controller = NVMeController(provider, io_queues=queues + 1, queue_depth=depth,
                                    polled=polled, work_loop=self.get_work_loop())  # fmt: skip
        try:
            controller.start()
        except HwkitError as exc:
            self.log.error("bring-up failed: %s", exc)
            controller.close()
            provider.close_device()
            return False
        self.controller = controller
        self.client_queue = controller.io_queues[-1]  # user clients' own: see userclient
        self.client_buffers: set[ClientBuffer] = set()
        self._client_slots: asyncio.Semaphore | None = None
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
        self.controller.close()  # ends every command in flight first
        for shared in list(self.client_buffers):
            shared.in_flight = 0
            shared.close()
        provider.close_device()

    def namespace(self, nsid: int = 1) -> Namespace:
        """Namespace `nsid` of the controller (see NVMeController.namespace).

        Raises:
            BadArgument: not an active namespace (the message lists the active ones).
        """
        return self.controller.namespace(nsid)

    async def run_commands(
        self,
        ns: Namespace,
        opc: IOOpcode,
        pieces: list[tuple[int, int, int]],
        mapping: Mapping | None,
    ) -> None:
        """User clients' commands on their queue (on the work loop; see userclient)."""
        if self._client_slots is None:
            self._client_slots = asyncio.Semaphore(self.client_queue.depth - 1)
        await run_commands(ns, self.client_queue, self._client_slots, opc, pieces,
                           mapping, self.controller.command_timeout)  # fmt: skip
