"""Driver classes the engine tests name in IOClass; each records its lifecycle calls."""

from __future__ import annotations

import asyncio
from typing import Any

from hwkit.service import Nub, Service

LOG: list[tuple[str, str]] = []
#: Behaviour switches per driver tag: {"tag": {"probe": score | None | "raise", "start": bool}}
PLAN: dict[str, dict[str, Any]] = {}


class Recorder(Service):
    """Logs every verb as (tag, verb); behaves as PLAN[tag] says."""

    def init(self, properties=None) -> bool:
        ok = super().init(properties)
        self.tag = str(self.get_property("Tag", type(self).__name__))
        LOG.append((self.tag, "init"))
        return ok

    def attach(self, provider: Service) -> bool:
        LOG.append((self.tag, "attach"))
        return super().attach(provider)

    def detach(self, provider: Service) -> None:
        LOG.append((self.tag, "detach"))
        super().detach(provider)

    def probe(self, provider: Service, score: int):
        LOG.append((self.tag, "probe"))
        plan = PLAN.get(self.tag, {})
        if plan.get("probe") == "raise":
            raise RuntimeError("probe exploded")
        return plan.get("probe", score) if "probe" in plan else score

    def start(self, provider: Service):
        LOG.append((self.tag, "start"))
        plan = PLAN.get(self.tag, {})
        if plan.get("start") == "raise":
            raise RuntimeError("start exploded")
        return plan.get("start", True)

    def stop(self, provider: Service) -> None:
        LOG.append((self.tag, "stop"))

    def free(self) -> None:
        LOG.append((self.tag, "free"))
        super().free()


class AsyncRecorder(Recorder):
    """The same with async probe and start."""

    async def probe(self, provider: Service, score: int):
        await asyncio.sleep(0)
        return super().probe(provider, score)

    async def start(self, provider: Service):
        await asyncio.sleep(0)
        return super().start(provider)


class Composite(Recorder):
    """Publishes an interface nub from start(), as IOUSBCompositeDriver does."""

    def start(self, provider: Service):
        ok = super().start(provider)
        child = Nub(
            "IOUSBHostInterface",
            "if0",
            {
                **provider.properties(),
                "bInterfaceNumber": 0,
                "bConfigurationValue": 1,
                "bInterfaceClass": 2,
                "bInterfaceSubClass": 2,
            },
        )
        child.attach(self)
        child.register_service()
        return ok


class NeedsArguments(Recorder):
    """A driver written against the rules: its constructor takes arguments."""

    def __init__(self, required: int) -> None:
        super().__init__()
