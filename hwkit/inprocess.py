"""Matching and drivers in this process, without the daemon ("library first").

    with Session() as session:
        session.add_family(PCIFamily())          # every PCI function as an IOPCIDevice nub,
        edu = session.drivers("EduDriver")[0]    # then hot-plug: new functions matched, gone
                                                 # ones terminated (their drivers stopped)

What the daemon does for a whole machine, done here for a script or a test: a registry,
the catalogue from the personality search path, the matching engine, and one work loop
(a thread) on which matching, the nubs and the drivers that do not make their own run.

``python -m hwkit.inprocess [--follow]`` does that for the PCI functions of this machine
and prints what happens, one line per event.

Threading: Session methods may be called from any thread; they run on the session loop.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from hwkit.matching.catalogue import Catalogue
from hwkit.matching.engine import MatchingEngine
from hwkit.registry import Registry, RegistryEntry
from hwkit.service import Service
from hwkit.workloop import WorkLoop


class Session:
    """A registry, catalogue and matching engine on one work loop, in this process."""

    def __init__(self, catalogue: Catalogue | None = None, name: str = "hwkit-session") -> None:
        self.work_loop = WorkLoop(name)
        self.registry = Registry()
        self.registry.work_loop = self.work_loop
        self.catalogue = catalogue or Catalogue.load()
        self.engine = MatchingEngine(self.registry, self.catalogue, loop=self.work_loop.loop)
        self.nubs: list[Service] = []
        self.families: list[Any] = []
        self.listeners: list[Callable[[str, RegistryEntry], Any]] = []
        self.registry.observers.append(self._tell)

    def _tell(self, event: str, entry: RegistryEntry) -> None:
        for listener in self.listeners:
            listener(event, entry)

    async def publish_async(self, nub: Service) -> None:
        """Attach `nub` under the registry root and match it, on the session loop."""
        nub.attach(self.registry.root)
        self.nubs.append(nub)
        self._tell("nub", nub)
        await self.engine.publish(nub)

    def publish(self, nub: Service) -> None:
        """Attach `nub` under the registry root and match it (drivers start now)."""
        self.work_loop.run_sync(self.publish_async, nub)

    def publish_all(self, nubs: Iterable[Service]) -> Session:
        for nub in nubs:
            self.publish(nub)
        return self

    def drivers(self, class_name: str | None = None) -> list[Service]:
        """Started drivers (clients of the nubs), optionally of one Python class name."""
        return [
            client
            for nub in list(self.nubs)
            for client in nub.clients()
            if class_name is None or type(client).__name__ == class_name
        ]

    def terminate(self, nub: Service) -> None:
        """Terminate `nub` (its drivers stop) as a removal would."""
        self.work_loop.run_sync(nub.terminate)

    def add_family(self, family: Any) -> None:
        """Start a nub provider (e.g. :class:`hwkit.pci.family.PCIFamily`) on this session."""

        class Target:
            publish = self.publish_async

        self.work_loop.run_sync(family.start, Target())
        self.families.append(family)

    # --- end ------------------------------------------------------------------------

    def close(self) -> None:
        """Terminate every nub (drivers stop, devices go back), then stop the loop."""

        async def stop_all() -> None:
            for family in reversed(self.families):
                await family.stop()
            for nub in reversed(self.nubs):
                await nub.terminate()
            self.nubs.clear()

        if not self.work_loop.closed:
            self.work_loop.run_sync(stop_all)
            self.work_loop.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pci_nubs() -> list[Service]:
    """An IOPCIDevice nub for every PCI function sysfs shows."""
    from hwkit.pci import discovery
    from hwkit.pci.nubs import PCIDevice

    return [PCIDevice(fn) for fn in discovery.list_functions()]


def _describe(event: str, entry: RegistryEntry) -> str | None:
    address = getattr(entry, "address", None) or entry.name
    if event == "nub":
        return f"published {address} ({entry.class_name})"
    if event == "matched":
        provider = getattr(entry, "provider", None)
        where = getattr(provider, "address", None) or (provider.name if provider else "?")
        return f"started {type(entry).__name__} on {where}"
    if event == "terminated":
        return f"terminated {address} ({type(entry).__name__})"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hwkit.inprocess",
        description="Match this machine's PCI functions and run their drivers in this process.",
    )
    parser.add_argument("--follow", action="store_true", help="follow hot-plug until SIGTERM/^C")
    args = parser.parse_args(argv)
    done = threading.Event()

    def say(event: str, entry: RegistryEntry) -> None:
        if (line := _describe(event, entry)) is not None:
            print(line, flush=True)

    from hwkit.pci.family import PCIFamily

    with Session() as session:
        session.listeners.append(say)
        session.add_family(PCIFamily(follow=args.follow))
        if args.follow:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: done.set())
            print("following hot-plug", flush=True)
            done.wait()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
