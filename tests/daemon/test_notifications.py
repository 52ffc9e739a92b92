"""Notifications with a real daemon: first-publish / first-match, and property changes.

I/O Kit's kIOFirstPublishNotification and kIOFirstMatchNotification come once per
service, where publish and match notifications fire again when a service registers
again; kIOMessageServicePropertyChange reaches clients with interest in a service and
here carries the keys that changed.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from hwkit import client
from hwkit.errors import BadArgument
from hwkit.service import Message

from .conftest import SAMPLE_PLIST, personality, wait_for

SAMPLE = {"IOProviderClass": "SampleDriver"}
SETTABLE = {"IOProviderClass": "SettableDriver"}
SETTABLE_PLIST = personality("Settable", "faulty.SettableDriver", IOMatchCategory="Settable")


def test_first_publish_comes_once_and_publish_at_every_registration(start_daemon):
    daemon = start_daemon()
    with client.connect(daemon.socket) as hub:
        published: list[client.ServiceInfo] = []
        first: list[client.ServiceInfo] = []
        assert list(hub.add_matching_notification("published", SETTABLE, published.append)) == []
        assert list(hub.add_matching_notification("first_published", SETTABLE, first.append)) == []
        daemon.write_personality("settable.plist", SETTABLE_PLIST)
        wait_for(lambda: (hub.dispatch(0.1), first and published)[1], 15, "the first publication")
        [service] = first
        for generation in (1, 2):  # the driver registers again each time
            hub.set_properties(service, {"HWTestGeneration": generation})
            wait_for(lambda g=generation: (hub.dispatch(0.1), len(published) > g)[1], 10,
                     f"publication {generation + 1}")  # fmt: skip
        hub.dispatch(0.5)
        assert [s.id for s in published] == [service.id] * 3
        assert published[-1].properties["HWTestGeneration"] == 2
        assert [s.id for s in first] == [service.id]  # once, however often it registers
        # An existing service has had its first publication: a new notification lists it.
        later = hub.add_matching_notification("first_published", SETTABLE)
        assert [s.id for s in later] == [service.id]
        with pytest.raises(BadArgument, match="first_matched"):
            hub.add_matching_notification("first_terminated", SETTABLE)
    assert daemon.stop() == 0


@pytest.mark.parametrize("mode", [(), ("--in-process",)], ids=["hosts", "in-process"])
def test_property_changes_reach_interested_clients_with_the_keys(start_daemon, mode):
    daemon = start_daemon(*mode)
    daemon.write_personality("settable.plist", SETTABLE_PLIST)
    with client.connect(daemon.socket) as hub:
        [service] = wait_for(lambda: hub.find(SETTABLE), 15, "the settable driver")
        heard: list[tuple[int, int, object]] = []
        nid = hub.add_interest_notification(service, lambda *message: heard.append(message))
        # Two keys changed by one set_properties: one message naming both.
        hub.set_properties(service, {"HWTestGeneration": 1, "HWTestLabel": "one"})
        wait_for(lambda: (hub.dispatch(0.1), heard)[1], 10, "the property-change message")
        hub.dispatch(0.7)  # the host's next health-check reports change nothing more
        assert heard == [
            (service.id, Message.SERVICE_PROPERTY_CHANGE, ("HWTestGeneration", "HWTestLabel"))
        ]
        # The same values again are no change; another value is.
        hub.set_properties(service, {"HWTestGeneration": 1, "HWTestLabel": "two"})
        wait_for(lambda: (hub.dispatch(0.1), len(heard) > 1)[1], 10, "the second message")
        hub.dispatch(0.7)
        assert heard[1:] == [(service.id, Message.SERVICE_PROPERTY_CHANGE, ("HWTestLabel",))]
        assert hub.get_properties(service)["HWTestLabel"] == "two"
        # Removed: no more messages.
        hub.remove_notification(nid)
        hub.set_properties(service, {"HWTestLabel": "three"})
        wait_for(lambda: hub.get_properties(service)["HWTestLabel"] == "three", 10, "the label")
        hub.dispatch(0.5)
        assert len(heard) == 2
    assert daemon.stop() == 0


def test_asyncio_client_first_match_per_instance_and_property_changes(start_daemon):
    """first_matched comes once per service instance: a restarted driver is a new one."""
    daemon = start_daemon()

    async def use() -> None:
        async with await client.connect_async(daemon.socket) as hub:
            matched: list[client.ServiceInfo] = []
            first: list[client.ServiceInfo] = []
            arrived = asyncio.Event()

            def on_first(service: client.ServiceInfo) -> None:
                first.append(service)
                arrived.set()

            assert list(await hub.add_matching_notification("matched", SAMPLE,
                                                            matched.append)) == []  # fmt: skip
            assert list(await hub.add_matching_notification("first_matched", SAMPLE,
                                                            on_first)) == []  # fmt: skip
            daemon.add_personality(SAMPLE_PLIST)
            await asyncio.wait_for(arrived.wait(), 15)
            [service] = first

            changes: asyncio.Queue[tuple[int, int, object]] = asyncio.Queue()
            await hub.add_interest_notification(service, lambda *m: changes.put_nowait(m))
            await hub.set_properties(service, {"TickIntervalMS": 7})
            message = await asyncio.wait_for(changes.get(), 10)
            assert message == (service.id, Message.SERVICE_PROPERTY_CHANGE, ("TickIntervalMS",))

            arrived.clear()
            os.kill(service.properties["HWHostPID"], 9)  # restarted after the backoff
            await asyncio.wait_for(arrived.wait(), 15)
            await asyncio.sleep(0.3)
            assert len(first) == 2 and first[1].id != service.id
            assert [s.id for s in matched] == [s.id for s in first]

    asyncio.run(asyncio.wait_for(use(), 60))
    assert daemon.stop() == 0
