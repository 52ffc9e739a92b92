"""Drivers that misbehave on purpose, loaded by the daemon's driver hosts in fault tests."""

from __future__ import annotations

from hwkit.service import Service


class RaisingDriver(Service):
    """Raises in start: the engine must try the next candidate."""

    def start(self, provider: Service) -> bool:
        raise RuntimeError("simulated start failure")


class DecliningDriver(Service):
    """Declines in probe."""

    def probe(self, provider: Service, score: int) -> None:
        return None
