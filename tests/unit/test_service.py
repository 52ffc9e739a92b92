"""Services: lifecycle sequences, three-phase termination, interest messages, IOResources."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hwkit.errors import BadArgument
from hwkit.registry import Registry
from hwkit.service import Message, Nub, Resources, Service, ServiceState
from hwkit.workloop import WorkLoop

LOG: list[tuple[str, str, str]] = []


class Traced(Service):
    """Records (name, verb, provider name)."""

    def message(self, message_type, provider, argument=None):
        LOG.append((self.name, f"message {Message(message_type).name}", provider.name))

    def will_terminate(self, provider, options):
        LOG.append((self.name, "will_terminate", provider.name))
        return True

    async def did_terminate(self, provider, options):
        await asyncio.sleep(0)
        LOG.append((self.name, "did_terminate", provider.name))
        return True

    def stop(self, provider):
        LOG.append((self.name, "stop", provider.name))

    def free(self):
        LOG.append((self.name, "free", ""))
        super().free()


@pytest.fixture(autouse=True)
def clean():
    LOG.clear()


async def started(name, provider):
    service = Traced(name)
    service.init()
    assert await service.start_candidate(provider)
    return service


async def terminate_bus_under(driver: Service) -> Service:
    """Start `driver` on a bus nub, terminate the bus, return the driver."""
    registry = Registry()
    bus = Traced("bus")
    bus.attach(registry.root)
    driver.init()
    await driver.start_candidate(bus)
    await bus.terminate()
    return driver


def build():
    """root <- bus (nub) <- drv (driver) <- child (nub) <- leaf (driver)."""

    async def main():
        registry = Registry()
        bus = Traced("bus")
        bus.attach(registry.root)
        drv = await started("drv", bus)
        child = Traced("child")
        child.attach(drv)
        leaf = await started("leaf", child)
        return registry, bus, drv, child, leaf

    return asyncio.run(main())


def test_three_phase_termination_order():
    registry, bus, drv, child, leaf = build()
    events = []
    registry.observers.append(lambda event, entry: events.append((event, entry.name)))
    assert asyncio.run(bus.terminate()) is True
    assert LOG == [
        # phase 1: inactive top down; each client hears its provider is terminated
        ("drv", "message SERVICE_IS_TERMINATED", "bus"),
        ("child", "message SERVICE_IS_TERMINATED", "drv"),
        ("leaf", "message SERVICE_IS_TERMINATED", "child"),
        # phase 2: will_terminate root to leaf, did_terminate leaf to root (the registry
        # root is not a service, so the bus nub has no provider to hear about)
        ("drv", "will_terminate", "bus"),
        ("child", "will_terminate", "drv"),
        ("leaf", "will_terminate", "child"),
        ("leaf", "did_terminate", "child"),
        ("child", "did_terminate", "drv"),
        ("drv", "did_terminate", "bus"),
        # phase 3: leaf to root, stop only for started services, then free
        ("leaf", "stop", "child"),
        ("leaf", "free", ""),
        ("child", "free", ""),
        ("drv", "stop", "bus"),
        ("drv", "free", ""),
        ("bus", "free", ""),
    ]
    assert [e for e in events if e[0] == "terminated"] == [
        ("terminated", n) for n in ("bus", "drv", "child", "leaf")
    ]
    assert all(s.state is ServiceState.FREED for s in (bus, drv, child, leaf))
    assert registry.root.children() == [registry.resources]
    assert asyncio.run(bus.terminate()) is False


def test_a_client_with_another_live_provider_survives():
    async def main():
        registry = Registry()
        a, b = Traced("a"), Traced("b")
        a.attach(registry.root)
        b.attach(registry.root)
        shared = await started("shared", a)
        shared.attach(b)
        await a.terminate()
        return a, b, shared

    _a, b, shared = asyncio.run(main())
    assert not shared.is_inactive and shared.is_started
    assert shared.parents() == [b]
    assert ("shared", "stop", "a") not in LOG


def test_request_terminate_can_keep_a_client():
    class Stubborn(Traced):
        def request_terminate(self, provider, options):
            return False

    keeper = asyncio.run(terminate_bus_under(Stubborn("keeper")))
    assert not keeper.is_inactive and keeper.provider is None


def test_failures_during_termination_are_logged_and_termination_goes_on(caplog):
    class Broken(Traced):
        def stop(self, provider):
            raise RuntimeError("stop exploded")

        def will_terminate(self, provider, options):
            raise RuntimeError("will exploded")

    with caplog.at_level(logging.ERROR, "hwkit.service"):
        broken = asyncio.run(terminate_bus_under(Broken("broken")))
    assert broken.state is ServiceState.FREED and broken.provider is None
    assert "stop failed during termination" in caplog.text
    assert "will_terminate failed during termination" in caplog.text


def test_interest_handlers_hear_termination_and_can_be_removed():
    heard = []

    async def handler(service, message_type, argument):
        heard.append((service.name, message_type))

    async def main():
        registry = Registry()
        bus = Traced("bus")
        bus.attach(registry.root)
        other = Traced("other")
        other.attach(registry.root)
        bus.add_interest_handler(handler)
        remove = other.add_interest_handler(handler)
        remove()
        remove()
        await bus.terminate()
        await other.terminate()

    asyncio.run(main())
    assert heard == [("bus", Message.SERVICE_IS_TERMINATED)]


def test_message_clients_survives_a_failing_handler(caplog):
    async def main():
        bus = Traced("bus")
        bus.add_interest_handler(lambda s, t, a: 1 / 0)
        seen = []
        bus.add_interest_handler(lambda s, t, a: seen.append((t, a)))
        await bus.message_clients(Message.SERVICE_IS_SUSPENDED, "why")
        return seen

    assert asyncio.run(main()) == [(Message.SERVICE_IS_SUSPENDED, "why")]
    assert "message handler" in caplog.text


def test_probe_candidate_rejects_non_scores(caplog):
    class Odd(Service):
        def probe(self, provider, score):
            return "yes"

    async def main():
        provider = Service("p")
        odd = Odd()
        odd.init()
        return await odd.probe_candidate(provider, 10), odd

    score, odd = asyncio.run(main())
    assert score is None and odd.provider is None
    assert "not an int score or None" in caplog.text


def test_states_are_logged_one_line_per_transition(caplog):
    async def main():
        registry = Registry()
        nub = Nub("IOPCIDevice", "0000:00:03.0")
        nub.attach(registry.root)
        driver = Service("edu")
        driver.init({"IOProbeScore": 1})
        await driver.start_candidate(nub)
        return driver

    with caplog.at_level(logging.INFO, "hwkit.service"):
        driver = asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if "edu" in r.getMessage()]
    assert lines == [
        "IOService:/edu (IOService): created -> initialized",
        "IOService:/0000:00:03.0/edu (IOService): initialized -> starting",
        "IOService:/0000:00:03.0/edu (IOService): starting -> started",
    ]
    assert driver.get_property("IOProbeScore") == 1


def test_register_service_after_termination_is_refused():
    nub = Nub("IOPCIDevice", "x")
    asyncio.run(nub.terminate())
    with pytest.raises(BadArgument, match="cannot register a terminated service"):
        nub.register_service()


def test_work_loop_is_inherited_from_the_provider():
    registry = Registry()
    with WorkLoop("registry") as shared, WorkLoop("own") as own:
        registry.work_loop = shared
        nub = Nub("IOPCIDevice", "x")
        nub.attach(registry.root)
        driver = Service("d")
        driver.attach(nub)
        assert driver.get_work_loop() is shared
        nub.use_work_loop(own)
        assert driver.get_work_loop() is own


def test_a_driver_without_a_loop_above_gets_its_own_until_freed():
    nub = Nub("IOPCIDevice", "x")
    driver = Service("d")
    driver.attach(nub)
    work_loop = driver.get_work_loop()
    assert driver.get_work_loop() is work_loop
    assert work_loop.run_sync(lambda: 7) == 7
    assert nub._inherited_work_loop() is None  # the driver's loop is not its provider's
    driver.free()
    assert work_loop.closed


def test_resources_publish_and_rematch():
    registry = Registry()
    published = []
    registry.publish_hook = published.append
    assert registry.resources.is_published("IOKit")
    registry.resources.publish_resource("hwkit.firmware", "v1")
    assert registry.resources.get_property("hwkit.firmware") == "v1"
    assert published == [registry.resources]
    assert isinstance(registry.resources, Resources)
    assert registry.matching(
        {"IOProviderClass": "IOResources", "IOResourceMatch": "hwkit.firmware"}
    )
