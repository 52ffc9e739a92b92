"""Generic keys (AND semantics), IOProviderClass by class chain, kernel-driver policy."""

from __future__ import annotations

import pytest
from hwkit.matching.context import MatchContext
from hwkit.matching.rules import compile_matching_table, kernel_driver_failure, name_matched

from hwkit.registry import Registry
from hwkit.service import Nub, Service
from tests.unit.matching.support import failure, nub, personality, problems


@pytest.fixture
def family():
    registry = Registry()
    hub = Nub("IOUSBHostDevice", "hub", {"idVendor": 0x1D6B, "role": "hub"}, location="1")
    hub.attach(registry.root)
    device = Nub("IOUSBHostDevice", "ftdi", {"idVendor": 0x0403}, location="2")
    device.attach(hub)
    port = Nub(
        "IOSerialStreamSync",
        "ttyUSB0",
        {
            "IOTTYBaseName": "ttyUSB",
            "compatible": ["ft232r", "usb-serial"],
            "flag": True,
            "BSD Name": "ttyUSB0",
            "nested": {"a": [1, 2]},
        },
        location="0",
    )
    port.attach(device)
    return registry, hub, device, port


SERIAL = "IOSerialStreamSync"

# (personality keys, matches the port?, first failed key)
GENERIC = [
    ({"IONameMatch": "ttyUSB0"}, True, None),
    ({"IONameMatch": ["nope", "usb-serial"]}, True, None),
    ({"IONameMatch": "ft232r"}, True, None),
    ({"IONameMatch": ["nope"]}, False, "IONameMatch"),
    ({"IOPropertyMatch": {"IOTTYBaseName": "ttyUSB"}}, True, None),
    ({"IOPropertyMatch": {"IOTTYBaseName": "ttyUSB", "flag": True}}, True, None),
    ({"IOPropertyMatch": {"flag": 1}}, False, "IOPropertyMatch"),
    ({"IOPropertyMatch": {"nested": {"a": [1, 2]}}}, True, None),
    ({"IOPropertyMatch": {"nested": {"a": [1]}}}, False, "IOPropertyMatch"),
    ({"IOPropertyMatch": [{"flag": False}, {"IOTTYBaseName": "ttyUSB"}]}, True, None),
    ({"IOPropertyMatch": [{"flag": False}, {"missing": 1}]}, False, "IOPropertyMatch"),
    ({"IOPropertyExistsMatch": "flag"}, True, None),
    ({"IOPropertyExistsMatch": ["missing", "flag"]}, True, None),
    ({"IOPropertyExistsMatch": ["missing"]}, False, "IOPropertyExistsMatch"),
    ({"IOParentMatch": {"IOPropertyMatch": {"role": "hub"}}}, True, None),
    (
        {
            "IOParentMatch": {
                "IOProviderClass": "IOUSBHostDevice",
                "idVendor": 0x0403,
                "idProduct": 1,
            }
        },
        False,
        "IOParentMatch",
    ),
    ({"IOParentMatch": {"IOProviderClass": "IOPCIDevice"}}, False, "IOParentMatch"),
    ({"IOPathMatch": "IOService:/hub@1/ftdi@2/ttyUSB0@0"}, True, None),
    ({"IOPathMatch": "/hub@1/ftdi@2/ttyUSB0@0"}, True, None),
    ({"IOPathMatch": "/hub@1/ttyUSB0@0"}, False, "IOPathMatch"),
    ({"IOLocationMatch": "0"}, True, None),
    ({"IOLocationMatch": "1"}, False, "IOLocationMatch"),
    ({"BSD Name": "ttyUSB0"}, True, None),
    ({"BSD Name": "ttyUSB1"}, False, "BSD Name"),
    ({"IOResourceMatch": "IOKit"}, True, None),
    ({"IOResourceMatch": ["IOKit", "later"]}, False, "IOResourceMatch"),
    # AND: every key must pass; the first failure (in xnu's order) is reported.
    ({"IONameMatch": "ttyUSB0", "IOPropertyMatch": {"flag": False}}, False, "IOPropertyMatch"),
    (
        {"IOPropertyMatch": {"flag": True}, "IOLocationMatch": "0", "BSD Name": "x"},
        False,
        "BSD Name",
    ),
    ({"IONameMatch": "nope", "IOLocationMatch": "9"}, False, "IONameMatch"),
]


@pytest.mark.parametrize(("table", "matches", "key"), GENERIC)
def test_generic_keys(family, table, matches, key):
    _registry, _hub, _device, port = family
    p = personality({"IOProviderClass": SERIAL, **table})
    found = failure(p, port)
    assert (found is None) is matches
    assert (found.key if found else None) == key


def test_registry_entry_id_key(family):
    _registry, _hub, _device, port = family
    assert (
        failure(personality({"IOProviderClass": SERIAL, "IORegistryEntryID": port.entry_id}), port)
        is None
    )
    found = failure(personality({"IOProviderClass": SERIAL, "IORegistryEntryID": 1}), port)
    assert found is not None and found.got == repr(port.entry_id)


def test_resource_published_later_matches(family):
    registry, _hub, _device, port = family
    p = personality({"IOProviderClass": SERIAL, "IOResourceMatch": "later"})
    found = failure(p, port)
    assert (
        str(found)
        == "IOResourceMatch: personality wants resource 'later', registry has not published it"
    )
    registry.resources.set_property("later", True)
    assert failure(p, port) is None


def test_failures_quote_both_values(family):
    _registry, _hub, _device, port = family
    found = failure(personality({"IOProviderClass": SERIAL, "IOPropertyMatch": {"flag": 1}}), port)
    assert str(found) == "IOPropertyMatch: personality wants flag = 1, nub has flag = True"
    found = failure(personality({"IOProviderClass": SERIAL, "IOLocationMatch": "7"}), port)
    assert str(found) == "IOLocationMatch: personality wants '7', nub has '0'"
    found = failure(personality({"IOProviderClass": "IOPCIDevice"}), port)
    assert str(found) == (
        "IOProviderClass: personality wants IOPCIDevice, "
        "nub has IOSerialStreamSync > IOService > IORegistryEntry"
    )


def test_provider_class_follows_python_subclasses():
    class FamilyNub(Service):
        ioclass = "IOPCIDevice"

    class QuirkyNub(FamilyNub):
        pass

    entry = QuirkyNub("q", {"vendor-id": 1})
    entry.attach(Registry().root)
    for provider in (
        "IOPCIDevice",
        "IOService",
        "QuirkyNub",
        f"{__name__}.{QuirkyNub.__qualname__}",
    ):
        assert failure(personality({"IOProviderClass": provider}), entry) is None, provider


def test_name_matched_is_the_entry_that_matched(family):
    _registry, _hub, _device, port = family
    p = personality({"IOProviderClass": SERIAL, "IONameMatch": ["nope", "usb-serial", "ttyUSB0"]})
    assert name_matched(p.compiled, MatchContext.for_entry(port)) == "usb-serial"


def test_kernel_driver_policy():
    held = nub("IOUSBHostInterface", {"HWKernelDriver": "cdc_acm"})
    ctx = MatchContext.for_entry(held)
    found = kernel_driver_failure({}, "IODefaultMatchCategory", ctx)
    assert found is not None and "kernel driver 'cdc_acm' bound" in str(found)
    assert (
        kernel_driver_failure({"HWDetachKernelDriver": True}, "IODefaultMatchCategory", ctx) is None
    )
    assert kernel_driver_failure({}, "Observer", ctx) is None
    free = MatchContext.for_entry(nub("IOUSBHostInterface", {}))
    assert kernel_driver_failure({}, "IODefaultMatchCategory", free) is None


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ({"IONameMatch": 3}, "IONameMatch", "must be a <string> or a non-empty <array>"),
        ({"IONameMatch": []}, "IONameMatch", "non-empty"),
        ({"IOPropertyMatch": "x"}, "IOPropertyMatch", "must be a <dict> or a non-empty <array>"),
        ({"IOPropertyMatch": [{"a": 1}, 2]}, "IOPropertyMatch", "<array> of <dict>"),
        ({"IOPropertyExistsMatch": [1]}, "IOPropertyExistsMatch", "must be a <string>"),
        ({"IOParentMatch": "hub"}, "IOParentMatch", "must be a matching <dict>"),
        ({"IOParentMatch": {"IOPCIMatch": "zz"}}, "IOParentMatch", "IOPCIMatch:"),
        ({"IOPathMatch": 1}, "IOPathMatch", "must be a <string>"),
        ({"IORegistryEntryID": "1"}, "IORegistryEntryID", "must be an <integer>"),
        ({"IOResourceMatch": 1}, "IOResourceMatch", "must be a <string>"),
        ({"IOProbeScore": "high"}, "IOProbeScore", "must be an <integer>"),
        ({"IOProbeScore": 2**31}, "IOProbeScore", "32-bit"),
        ({"IOMatchCategory": ""}, "IOMatchCategory", "must be a <string>"),
        ({"IOUserClientClass": "NoDots"}, "IOUserClientClass", "dotted Python path"),
        ({"HWUserClientGroups": ["ok", 3]}, "HWUserClientGroups", "<array> of group names"),
        ({"HWDetachKernelDriver": "yes"}, "HWDetachKernelDriver", "must be a boolean"),
        ({"IOProviderClas": "x"}, "IOProviderClas", "did you mean 'IOProviderClass'?"),
        ({"HWSomething": 1}, "HWSomething", "is not a key hwkit knows"),
        ({"idVender": 1}, "idVender", "misspelling of the match key 'idVendor'"),
        ({"ratio": 0.5}, "ratio", "<real> is not a registry property type"),
    ],
)
def test_bad_generic_and_personality_keys_are_rejected(table, key, message):
    found = problems({"IOProviderClass": SERIAL, **table})
    assert found[0].key == key, [str(f) for f in found]
    assert message in found[0].reason


def test_required_keys():
    found = {p.key: p.reason for p in problems({}, name="Empty")}
    assert "IOProviderClass" in found and "is missing" in found["IOProviderClass"]
    found = problems({"IOProviderClass": SERIAL, "IOClass": "NotDotted"})
    assert found[0].key == "IOClass"


def test_matching_tables_default_to_ioservice(family):
    registry, _hub, _device, port = family
    compiled = compile_matching_table({"IOPropertyExistsMatch": "flag"})
    assert compiled.provider_class == "IOService"
    assert [e for e in registry.entries() if compiled.matches(e)] == [port]
    assert (
        compile_matching_table({"IOProviderClass": "IOUSBDevice"}).provider_class
        == "IOUSBHostDevice"
    )
