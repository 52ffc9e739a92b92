"""The engine: probe may change scores or decline, start until success per category."""

from __future__ import annotations

import asyncio

import pytest
from hwkit.matching.catalogue import Catalogue
from hwkit.matching.engine import MatchingEngine

from hwkit.registry import Registry
from hwkit.service import Nub
from tests.unit.matching import drivers
from tests.unit.matching.support import catalogue_of, personality, write_plist

REC = "tests.unit.matching.drivers.Recorder"
USB = {
    "idVendor": 0x0403,
    "idProduct": 0x6001,
    "bcdDevice": 0x0600,
    "bDeviceClass": 0,
    "bDeviceSubClass": 0,
    "bDeviceProtocol": 0,
}


@pytest.fixture(autouse=True)
def clean_log():
    drivers.LOG.clear()
    drivers.PLAN.clear()


def usb_personality(tag, keys=("idVendor", "idProduct"), io_class=REC, **extra):
    table = {"IOProviderClass": "IOUSBHostDevice", "Tag": tag, **{k: USB[k] for k in keys}, **extra}
    return personality(table, name=tag, io_class=io_class)


def run(personalities, props=USB, cls="IOUSBHostDevice"):
    """Publish one nub through a fresh engine; return the result and the nub."""

    async def main():
        registry = Registry()
        engine = MatchingEngine(registry, catalogue_of(*personalities))
        nub = Nub(cls, "dev", props)
        nub.attach(registry.root)
        return await engine.publish(nub), nub

    return asyncio.run(main())


def verbs(tag):
    return [verb for who, verb in drivers.LOG if who == tag]


def test_lifecycle_order_for_winner_and_loser():
    result, nub = run(
        [
            usb_personality("Low", ("idVendor", "idProduct")),
            usb_personality("High", ("idVendor", "idProduct", "bcdDevice")),
        ]
    )
    assert drivers.LOG == [
        ("High", "init"),
        ("High", "attach"),
        ("High", "probe"),
        ("High", "detach"),
        ("Low", "init"),
        ("Low", "attach"),
        ("Low", "probe"),
        ("Low", "detach"),
        ("High", "attach"),
        ("High", "start"),
        ("Low", "free"),
    ]
    winner = result.winners["IODefaultMatchCategory"]
    assert winner.personality.name == "High" and winner.started
    driver = nub.clients()[0]
    assert driver.get_property("IOProbeScore") == 100000
    assert driver.get_property("IOMatchCategory") == "IODefaultMatchCategory"
    assert driver.is_started and driver.provider is nub
    loser = next(c for c in result.candidates if c.personality.name == "Low")
    assert not loser.matched and "taken by a better candidate" in loser.reason


@pytest.mark.parametrize(
    ("low_probe", "winner", "low_score"),
    [
        (None, "High", None),  # Low keeps its score and loses
        (100001, "Low", 100001),  # probe raises Low above High
        (100000, "High", 100000),  # a tie keeps catalogue order: High is listed first
    ],
)
def test_probe_can_change_the_score(low_probe, winner, low_score):
    if low_probe is not None:
        drivers.PLAN["Low"] = {"probe": low_probe}
    result, _ = run(
        [usb_personality("High", ("idVendor", "idProduct", "bcdDevice")), usb_personality("Low")]
    )
    assert result.winners["IODefaultMatchCategory"].personality.name == winner
    low = next(c for c in result.candidates if c.personality.name == "Low")
    assert low.probe_score == (low_score if low_score is not None else 90000)
    assert low.probe == ("changed score" if low_probe not in (None, 90000) else "accepted")


@pytest.mark.parametrize("decline", [None, "raise"])
def test_probe_declining_frees_the_candidate(decline):
    drivers.PLAN["High"] = {"probe": decline}
    result, _ = run(
        [usb_personality("High", ("idVendor", "idProduct", "bcdDevice")), usb_personality("Low")]
    )
    assert verbs("High") == ["init", "attach", "probe", "detach", "free"]
    assert result.winners["IODefaultMatchCategory"].personality.name == "Low"
    high = next(c for c in result.candidates if c.personality.name == "High")
    assert high.probe == "declined" and high.reason == "probe() declined the device"


@pytest.mark.parametrize("failure", [False, "raise"])
def test_failed_start_gets_no_stop_and_the_next_candidate_starts(failure):
    drivers.PLAN["High"] = {"start": failure}
    result, nub = run(
        [usb_personality("High", ("idVendor", "idProduct", "bcdDevice")), usb_personality("Low")]
    )
    assert verbs("High") == [
        "init",
        "attach",
        "probe",
        "detach",
        "attach",
        "start",
        "detach",
        "free",
    ]
    assert verbs("Low") == ["init", "attach", "probe", "detach", "attach", "start"]
    assert [c.tag for c in nub.clients()] == ["Low"]
    high = next(c for c in result.candidates if c.personality.name == "High")
    assert high.started is False and "no stop() was called" in high.reason


def test_no_candidate_starts():
    drivers.PLAN.update({"A": {"start": False}, "B": {"probe": None}})
    result, nub = run([usb_personality("A"), usb_personality("B")])
    assert result.winners == {} and nub.clients() == []
    assert verbs("A")[-1] == "free" and verbs("B")[-1] == "free"


def test_one_winner_per_category():
    result, nub = run(
        [
            usb_personality("Main"),
            usb_personality("Observer", IOMatchCategory="Watchers"),
            usb_personality(
                "Second", ("idVendor", "idProduct", "bcdDevice"), IOMatchCategory="Watchers"
            ),
        ]
    )
    assert {k: c.personality.name for k, c in result.winners.items()} == {
        "IODefaultMatchCategory": "Main",
        "Watchers": "Second",
    }
    assert sorted(c.tag for c in nub.clients()) == ["Main", "Second"]
    assert verbs("Observer")[-1] == "free"


def test_async_driver_methods():
    _result, nub = run(
        [usb_personality("Async", io_class="tests.unit.matching.drivers.AsyncRecorder")]
    )
    assert verbs("Async") == ["init", "attach", "probe", "detach", "attach", "start"]
    assert nub.clients()[0].is_started


def test_unimportable_class_fails_over_to_the_next():
    result, _ = run(
        [
            usb_personality(
                "Broken",
                ("idVendor", "idProduct", "bcdDevice"),
                io_class="hwkit_missing_pkg.Driver",
            ),
            usb_personality("Works"),
        ]
    )
    broken = next(c for c in result.candidates if c.personality.name == "Broken")
    assert "cannot import 'hwkit_missing_pkg'" in broken.reason
    assert result.winners["IODefaultMatchCategory"].personality.name == "Works"


def test_register_service_schedules_matching_and_children_match_too():
    composite = usb_personality(
        "Composite",
        ("bDeviceClass", "bDeviceSubClass"),
        io_class="tests.unit.matching.drivers.Composite",
    )
    acm = personality(
        {
            "IOProviderClass": "IOUSBInterface",
            "bInterfaceClass": 2,
            "bInterfaceSubClass": 2,
            "Tag": "ACM",
        },
        name="ACM",
        io_class=REC,
    )

    async def main():
        registry = Registry()
        engine = MatchingEngine(registry, catalogue_of(composite, acm))
        device = Nub("IOUSBHostDevice", "dev", USB)
        device.attach(registry.root)
        device.register_service()
        await engine.wait_quiet()
        return registry, engine

    registry, engine = asyncio.run(main())
    assert registry.from_path("IOService:/dev/Composite/if0/Recorder").tag == "ACM"
    assert len(engine.results) == 2


def test_each_plug_gets_a_new_instance_and_republishing_does_not_double_bind():
    p = usb_personality("Drv")

    async def main():
        registry = Registry()
        engine = MatchingEngine(registry, catalogue_of(p))
        first, second = Nub("IOUSBHostDevice", "a", USB), Nub("IOUSBHostDevice", "b", USB)
        for nub in (first, second):
            nub.attach(registry.root)
            await engine.publish(nub)
        again = await engine.publish(first)
        return first, second, again

    first, second, again = asyncio.run(main())
    assert first.clients()[0] is not second.clients()[0]
    assert len(first.clients()) == 1
    assert again.candidates == [] and again.winners == {}
    assert again.occupied == {"IODefaultMatchCategory": "Recorder"}


def resource_personality(tag, resource):
    """A hardware-less driver in its own category, waiting for `resource`."""
    table = {"IOProviderClass": "IOResources", "IOResourceMatch": resource, "Tag": tag,
             "IOMatchCategory": tag}  # fmt: skip
    return personality(table, name=tag, io_class=REC)


def test_resource_drivers_start_when_the_resource_is_published():
    waits = resource_personality("Waits", "firmware")
    now = resource_personality("Now", "IOKit")
    on_device = usb_personality("OnDevice", IOResourceMatch="firmware")

    async def main():
        registry = Registry()
        engine = MatchingEngine(registry, catalogue_of(waits, now, on_device))
        device = Nub("IOUSBHostDevice", "dev", USB)
        device.attach(registry.root)
        registry.resources.register_service()
        device.register_service()
        await engine.wait_quiet()
        before = sorted(c.tag for c in registry.resources.clients() + device.clients())
        registry.resources.publish_resource("firmware")
        await engine.wait_quiet()
        after = sorted(c.tag for c in registry.resources.clients() + device.clients())
        return before, after

    before, after = asyncio.run(main())
    assert before == ["Now"]
    assert after == ["Now", "OnDevice", "Waits"]


def test_schedule_from_another_thread():
    p = usb_personality("Drv")

    async def main():
        registry = Registry()
        engine = MatchingEngine(registry, catalogue_of(p), loop=asyncio.get_running_loop())
        nub = Nub("IOUSBHostDevice", "a", USB)
        nub.attach(registry.root)
        await asyncio.to_thread(nub.register_service)
        for _ in range(100):
            await asyncio.sleep(0.001)
            await engine.wait_quiet()
            if nub.clients():
                break
        return nub

    assert asyncio.run(main()).clients()[0].tag == "Drv"


def test_schedule_without_a_loop_is_an_error():
    engine = MatchingEngine(Registry(), catalogue_of())
    with pytest.raises(Exception, match="no loop"):
        engine.schedule(Nub("IOUSBHostDevice"))


def test_terminating_the_nub_stops_and_frees_the_driver():
    async def main():
        registry = Registry()
        engine = MatchingEngine(registry, catalogue_of(usb_personality("Drv")))
        nub = Nub("IOUSBHostDevice", "a", USB)
        nub.attach(registry.root)
        await engine.publish(nub)
        drivers.LOG.clear()
        await nub.terminate()
        return nub, engine

    nub, engine = asyncio.run(main())
    assert verbs("Drv") == ["stop", "detach", "free"]
    assert nub.clients() == []
    assert engine.results == {} and engine._published == {} and engine._locks == {}


def test_a_class_that_cannot_be_created_fails_over():
    result, nub = run(
        [
            usb_personality(
                "NeedsArgs",
                ("idVendor", "idProduct", "bcdDevice"),
                io_class="tests.unit.matching.drivers.NeedsArguments",
            ),
            usb_personality("Works", IOProviderMergeProperties={"HWBoundBy": "Works"}),
        ]
    )
    failed = next(c for c in result.candidates if c.personality.name == "NeedsArgs")
    assert "cannot create tests.unit.matching.drivers.NeedsArguments: TypeError" in failed.reason
    assert [c.tag for c in nub.clients()] == ["Works"]
    assert nub.get_property("HWBoundBy") == "Works"


def test_personalities_dropped_in_later_match_published_nubs(tmp_path):
    async def main():
        registry = Registry()
        catalogue = Catalogue.load([tmp_path])
        engine = MatchingEngine(registry, catalogue)
        nub = Nub("IOUSBHostDevice", "a", USB)
        nub.attach(registry.root)
        nub.register_service()
        await engine.wait_quiet()
        before = list(nub.clients())
        table = {"IOClass": REC, "IOProviderClass": "IOUSBHostDevice", "Tag": "Late",
                 "idVendor": USB["idVendor"], "idProduct": USB["idProduct"]}  # fmt: skip
        write_plist(tmp_path / "late.plist", {"Late": table})
        engine.rematch_all(catalogue.rescan())
        await engine.wait_quiet()
        return before, nub.clients()

    before, after = asyncio.run(main())
    assert before == [] and [c.tag for c in after] == ["Late"]


def test_concurrent_publications_of_one_nub_bind_one_driver():
    p = usb_personality("Slow", io_class="tests.unit.matching.drivers.AsyncRecorder")

    async def main():
        registry = Registry()
        engine = MatchingEngine(registry, catalogue_of(p))
        nub = Nub("IOUSBHostDevice", "a", USB)
        nub.attach(registry.root)
        await asyncio.gather(engine.publish(nub), engine.publish(nub), engine.publish(nub))
        return nub

    nub = asyncio.run(main())
    assert [c.tag for c in nub.clients()] == ["Slow"]
