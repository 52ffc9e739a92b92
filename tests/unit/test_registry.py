"""The registry: ids, names, classes, planes, paths, lookup by matching dict, snapshots."""

from __future__ import annotations

import json
import plistlib

import pytest

from hwkit.errors import BadArgument, NotFoundError, UnsupportedError
from hwkit.registry import (
    POWER_PLANE,
    SERVICE_PLANE,
    Registry,
    RegistryEntry,
    canonical_class,
    known_class_chain,
)
from hwkit.service import Nub, Service


@pytest.fixture
def tree():
    registry = Registry()
    bridge = Nub("IOPCIDevice", "pci0000:00", {"vendor-id": 0x8086})
    bridge.attach(registry.root)
    device = Nub("IOPCIDevice", "0000:00:03.0", {"vendor-id": 0x1234, "blob": b"\x00\xff"})
    device.attach(bridge)
    port = Nub("IOSerialStreamSync", "ttyS0", location="3")
    port.attach(device)
    return registry, bridge, device, port


def test_ids_are_unique_and_64_bit():
    ids = {RegistryEntry("e").entry_id for _ in range(100)}
    assert len(ids) == 100
    assert all(0 < i < 2**64 for i in ids)


def test_paths_and_lookup(tree):
    registry, _bridge, device, port = tree
    assert registry.root.path() == "IOService:/"
    assert device.path() == "IOService:/pci0000:00/0000:00:03.0"
    assert port.path() == "IOService:/pci0000:00/0000:00:03.0/ttyS0@3"
    assert registry.from_path("IOService:/pci0000:00/0000:00:03.0") is device
    assert registry.from_path("/pci0000:00/0000:00:03.0/ttyS0@3") is port
    assert registry.entry(port.entry_id) is port
    with pytest.raises(NotFoundError, match="has no child 'nope'"):
        registry.from_path("IOService:/pci0000:00/nope")
    with pytest.raises(BadArgument, match="unknown plane"):
        registry.from_path("IODeviceTree:/x")
    with pytest.raises(NotFoundError, match="no registry entry"):
        registry.entry(1)


def test_planes_are_independent(tree):
    _registry, bridge, device, port = tree
    assert port.parent(POWER_PLANE) is None
    port.attach_to_parent(bridge, POWER_PLANE)
    assert port.parent(POWER_PLANE) is bridge
    assert port.parent(SERVICE_PLANE) is device
    # The bridge has no power parent: the path starts at the top of its power subtree.
    assert port.path(POWER_PLANE) == "IOPower:/pci0000:00/ttyS0@3"
    assert port in bridge.children(POWER_PLANE)
    assert port.attach_to_parent(bridge, POWER_PLANE) is False
    with pytest.raises(BadArgument, match="unknown plane"):
        port.attach_to_parent(bridge, "IOUSB")


def test_cycles_are_refused(tree):
    _registry, bridge, _device, port = tree
    with pytest.raises(BadArgument, match="cycle"):
        bridge.attach_to_parent(port)
    with pytest.raises(BadArgument, match="cycle"):
        bridge.attach_to_parent(bridge)


def test_detach_forgets_the_entry(tree):
    registry, _bridge, device, port = tree
    port.detach_from_parent(device)
    with pytest.raises(NotFoundError):
        registry.entry(port.entry_id)
    assert port not in device.children()


def test_names_cannot_break_paths():
    with pytest.raises(BadArgument, match="without '/' or '@'"):
        RegistryEntry("a/b")
    with pytest.raises(BadArgument, match="without '/' or '@'"):
        RegistryEntry("x", location="1@2")


def test_class_chain_from_python_and_from_names():
    class MyDriver(Service):
        pass

    chain = MyDriver().class_chain()
    assert chain[0] == "MyDriver"
    assert chain[1].endswith(
        "test_registry.test_class_chain_from_python_and_from_names.<locals>.MyDriver"
    )
    assert chain[2:] == ("IOService", "IORegistryEntry")
    assert known_class_chain("IOUSBDevice") == ("IOUSBHostDevice", "IOService", "IORegistryEntry")
    assert canonical_class("IOUSBInterface") == "IOUSBHostInterface"
    assert Nub("IOUSBDevice").conforms_to("IOUSBDevice")
    with pytest.raises(NotFoundError, match="not a known provider class"):
        known_class_chain("IOUSBDevce")


def test_properties_are_checked_and_set_properties_is_refused(tree):
    _registry, _bridge, device, _port = tree
    device.set_property("count", 3)
    assert device.get_property("count") == 3
    assert device.has_property("count")
    device.remove_property("count")
    assert device.get_property("count", "gone") == "gone"
    with pytest.raises(BadArgument, match=r"property 'x' of 0000:00:03\.0: <real>"):
        device.set_property("x", 1.0)
    with pytest.raises(UnsupportedError, match="does not accept properties"):
        device.set_properties({"a": 1})


def test_matching_uses_the_personality_code(tree):
    registry, bridge, device, port = tree
    assert registry.matching({"IOProviderClass": "IOPCIDevice"}) == [bridge, device]
    assert registry.matching({"IOPropertyMatch": {"vendor-id": 0x1234}}) == [device]
    assert registry.matching({"IOProviderClass": "IOSerialStreamSync", "IOLocationMatch": "3"}) == [
        port
    ]
    assert registry.matching({"IOProviderClass": "IOResources"}) == [registry.resources]
    with pytest.raises(BadArgument, match="key 'IOPCIMatch'"):
        registry.matching({"IOProviderClass": "IOPCIDevice", "IOPCIMatch": "zz"})
    with pytest.raises(BadArgument, match="must be a dict"):
        registry.matching(["IOPCIDevice"])  # type: ignore[arg-type]


def test_snapshots_serialise_to_json_and_plist(tree):
    registry, _bridge, device, port = tree
    snap = json.loads(registry.snapshot_json())
    assert snap["name"] == "Root"
    names = [c["name"] for c in snap["children"]]
    assert names == ["IOResources", "pci0000:00"]
    dev = snap["children"][1]["children"][0]
    assert dev["id"] == device.entry_id
    assert dev["class"] == "IOPCIDevice"
    assert dev["properties"]["blob"] == {"$data": "AP8="}
    assert dev["children"][0]["location"] == "3"
    plist = plistlib.loads(registry.snapshot_plist(root=device))
    assert plist["properties"]["blob"] == b"\x00\xff"
    assert plist["children"][0]["path"] == port.path()


def test_plist_snapshot_keeps_64_bit_integers(tree):
    registry, _bridge, device, _port = tree
    device.set_property("big", 2**64 - 1)
    assert plistlib.loads(registry.snapshot_plist(root=device))["properties"]["big"] == 2**64 - 1


def test_observers_hear_events(tree):
    registry, _bridge, device, _port = tree
    heard = []
    registry.observers.append(lambda event, entry: heard.append((event, entry)))
    device.register_service()
    assert heard == [("first_published", device), ("published", device)]


def test_first_events_come_once_per_entry(tree):
    """kIOFirstPublish/kIOFirstMatch: a service registering again is published again, once first."""
    registry, bridge, device, _port = tree
    heard = []
    registry.observers.append(lambda event, entry: heard.append((event, entry.name)))
    for _ in range(3):
        device.register_service()
        registry.notify("matched", device)
    registry.notify("matched", bridge)
    assert [e for e in heard if e[0].startswith("first_")] == [
        ("first_published", device.name), ("first_matched", device.name),
        ("first_matched", bridge.name),
    ]  # fmt: skip
    assert heard.count(("published", device.name)) == heard.count(("matched", device.name)) == 3


def test_property_observers_hear_real_changes_only(tree):
    _registry, _bridge, device, port = tree
    device.set_property("speed", 5)
    heard = []
    remove = device.add_property_observer(lambda entry, key: heard.append((entry, key)))
    device.set_property("speed", 5)  # the same value: no change
    device.set_property("speed", 10)
    device.set_property("speed", True)  # equal to 1 in Python, yet another value
    device.set_property("new", b"x")
    device.remove_property("new")
    device.remove_property("absent")
    port.set_property("speed", 1)  # another entry
    assert heard == [(device, "speed"), (device, "speed"), (device, "new"), (device, "new")]
    remove()
    remove()  # twice is harmless
    device.set_property("speed", 11)
    assert len(heard) == 4


def test_detaching_a_subtree_forgets_all_of_it_unless_still_reachable(tree):
    registry, bridge, device, port = tree
    port.attach_to_parent(registry.root, POWER_PLANE)
    device.detach_from_parent(bridge)
    with pytest.raises(NotFoundError):
        registry.entry(device.entry_id)
    assert registry.entry(port.entry_id) is port  # still reachable through the power plane
    port.detach_from_parent(registry.root, POWER_PLANE)
    with pytest.raises(NotFoundError):
        registry.entry(port.entry_id)
