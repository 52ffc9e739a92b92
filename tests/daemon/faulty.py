"""Drivers that misbehave on purpose, loaded by the daemon's driver hosts in fault tests."""

from __future__ import annotations

from collections.abc import Mapping

from hwkit.errors import BadArgument
from hwkit.service import Service


class RaisingDriver(Service):
    """Raises in start: the engine must try the next candidate."""

    def start(self, provider: Service) -> bool:
        raise RuntimeError("simulated start failure")


class DecliningDriver(Service):
    """Declines in probe."""

    def probe(self, provider: Service, score: int) -> None:
        return None


class ChildNub(Service):
    """A nub a driver publishes for its sub-device (as a family driver would)."""

    ioclass = "HWTestChild"


class ParentDriver(Service):
    """Publishes one child nub in start; the daemon matches it and starts its driver."""

    def start(self, provider: Service) -> bool:
        self.child = ChildNub("child", {"HWTestUnit": 7}, location="7")
        self.child.attach(self)
        self.child.register_service()
        return True


class ChildDriver(Service):
    """Runs on the child nub, in a host of its own."""

    def start(self, provider: Service) -> bool:
        self.set_property("HWSeenUnit", provider.get_property("HWTestUnit"))
        return True


class SettableDriver(Service):
    """Takes any ``HWTest*`` property a client sets, then registers again (as a driver
    does after its state changed): publish notifications fire each time, first-publish
    notifications once, and interested clients hear which keys changed."""

    def start(self, provider: Service) -> bool:
        self.set_property("HWTestGeneration", 0)
        self.register_service()
        return True

    def set_properties(self, properties: Mapping[str, object]) -> None:
        refused = [key for key in properties if not key.startswith("HWTest")]
        if refused:
            raise BadArgument(f"only HWTest* properties may be set, not {refused}")
        for key, value in properties.items():
            self.set_property(key, value)
        self.register_service()
