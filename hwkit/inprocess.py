"""Matching and drivers in this process, without the daemon ("library first").

    session = publish(pci_nubs())        # every PCI function as an IOPCIDevice nub
    edu = session.drivers("EduDriver")[0]

What the daemon does for a whole machine, done here for a script or a test: a registry,
the catalogue from the personality search path, the matching engine, and the nubs
published under the registry's root; drivers start in this process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

from hwkit.matching.catalogue import Catalogue
from hwkit.matching.engine import MatchingEngine
from hwkit.registry import Registry
from hwkit.service import Service


@dataclass
class Session:
    registry: Registry
    engine: MatchingEngine
    nubs: list[Service] = field(default_factory=list)

    def drivers(self, class_name: str | None = None) -> list[Service]:
        """Started drivers (clients of the nubs), optionally of one Python class name."""
        return [
            client
            for nub in self.nubs
            for client in nub.clients()
            if class_name is None or type(client).__name__ == class_name
        ]

    def stop(self) -> None:
        """Stop every driver started here (leaves first), releasing their devices."""
        for nub in self.nubs:
            for client in reversed(nub.clients()):
                client.stop(nub)


def publish(nubs: Iterable[Service], catalogue: Catalogue | None = None) -> Session:
    """Attach `nubs` under a new registry's root and match each; return the session."""
    registry = Registry()
    session = Session(registry, MatchingEngine(registry, catalogue or Catalogue.load()))

    async def run() -> None:
        for nub in nubs:
            nub.attach(registry.root)
            session.nubs.append(nub)
            await session.engine.publish(nub)

    asyncio.run(run())
    return session


def pci_nubs() -> list[Service]:
    """An IOPCIDevice nub for every PCI function sysfs shows."""
    from hwkit.pci import discovery
    from hwkit.pci.nubs import PCIDevice

    return [PCIDevice(fn) for fn in discovery.list_functions()]
