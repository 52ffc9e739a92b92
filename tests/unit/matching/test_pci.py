"""PCI matching: every string form (lists, masks, default masks) and each register."""

from __future__ import annotations

import pytest
from hwkit.matching.pci import Entry, parse_match_string

from tests.unit.matching.support import failure, nub, personality, problems

EDU = {
    "vendor-id": 0x1234,
    "device-id": 0x11E8,
    "subsystem-vendor-id": 0x1AF4,
    "subsystem-id": 0x1100,
    "class-code": 0x00FF00,
    "revision-id": 0x10,
}
E1000 = {**EDU, "vendor-id": 0x8086, "device-id": 0x100E, "class-code": 0x020000, "revision-id": 3}


@pytest.mark.parametrize(
    ("text", "default", "entries"),
    [
        ("0x11e81234", 0xFFFFFFFF, [(0x11E81234, 0xFFFFFFFF)]),
        ("11e81234", 0xFFFFFFFF, [(0x11E81234, 0xFFFFFFFF)]),
        ("0X11E81234", 0xFFFFFFFF, [(0x11E81234, 0xFFFFFFFF)]),
        ("0x1234&0xffff", 0xFFFFFFFF, [(0x1234, 0xFFFF)]),
        ("0x1234 & 0xffff", 0xFFFFFFFF, [(0x1234, 0xFFFF)]),
        ("0x1234&ffff", 0xFFFFFFFF, [(0x1234, 0xFFFF)]),
        (
            "  0x100e8086   0x100f8086\t0x10d38086 ",
            0xFFFFFFFF,
            [(0x100E8086, 0xFFFFFFFF), (0x100F8086, 0xFFFFFFFF), (0x10D38086, 0xFFFFFFFF)],
        ),
        (
            "0x02000000&0xffff0000 0x01080200",
            0xFFFFFF00,
            [(0x02000000, 0xFFFF0000), (0x01080200, 0xFFFFFF00)],
        ),
        ("0", 0xFFFFFF00, [(0, 0xFFFFFF00)]),
    ],
)
def test_match_string_forms(text, default, entries):
    assert parse_match_string(text, default) == [Entry(v, m) for v, m in entries]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("0x", "'0x'"),
        ("0x1234&", "'0x1234&'"),
        ("0x123456789", "'0x123456789'"),
        ("0x1234,0x5678", "'0x1234,0x5678'"),
        ("0x1234 zz", "'zz'"),
        ("0x12&0x34&0x56", "'0x12&0x34&0x56'"),
        ("-0x1", "'-0x1'"),
    ],
)
def test_malformed_strings_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_match_string(text, 0xFFFFFFFF)


# key, value, matches EDU, matches E1000
CASES = [
    ("IOPCIPrimaryMatch", "0x11e81234", True, False),
    ("IOPCIPrimaryMatch", "0x100e8086 0x11e81234", True, True),
    ("IOPCIPrimaryMatch", "0x00001234&0x0000ffff", True, False),  # any device of vendor 1234
    ("IOPCIPrimaryMatch", "0x11e80000&0xffff0000", True, False),  # device id only
    ("IOPCIPrimaryMatch", "0x11001af4", False, False),  # subsystem ids are not register 0x00
    ("IOPCISecondaryMatch", "0x11001af4", True, True),
    ("IOPCISecondaryMatch", "0x00001af4&0x0000ffff", True, True),
    ("IOPCISecondaryMatch", "0x11e81234", False, False),
    ("IOPCIMatch", "0x11e81234", True, False),  # register 0x00
    ("IOPCIMatch", "0x11001af4", True, True),  # falls back to register 0x2c
    ("IOPCIMatch", "0x12345678 0x100e8086", False, True),
    ("IOPCIClassMatch", "0x00ff0000", True, False),  # default mask ignores the revision
    ("IOPCIClassMatch", "0x00ff0010&0xffffffff", True, False),  # revision 0x10 exactly
    ("IOPCIClassMatch", "0x00ff0011&0xffffffff", False, False),
    ("IOPCIClassMatch", "0x02000000&0xffff0000", False, True),
    ("IOPCIClassMatch", "0x02000000&0xff000000 0x00ff0000", True, True),
    ("IOPCIClassMatch", "0x02000003", False, True),  # revision bits are masked off by default
]


@pytest.mark.parametrize(("key", "value", "edu", "e1000"), CASES)
def test_each_key_against_its_register(key, value, edu, e1000):
    p = personality({"IOProviderClass": "IOPCIDevice", key: value})
    assert (failure(p, nub("IOPCIDevice", EDU)) is None) is edu
    assert (failure(p, nub("IOPCIDevice", E1000)) is None) is e1000
    assert p.passive_score == 0


def test_keys_and_together():
    p = personality(
        {
            "IOProviderClass": "IOPCIDevice",
            "IOPCIPrimaryMatch": "0x100e8086",
            "IOPCISecondaryMatch": "0x11001af4",
            "IOPCIClassMatch": "0x02000000",
        }
    )
    assert failure(p, nub("IOPCIDevice", E1000)) is None
    found = failure(p, nub("IOPCIDevice", {**E1000, "subsystem-id": 0x1101}))
    assert found is not None and found.key == "IOPCISecondaryMatch"
    assert found.wanted == "0x11001af4&0xffffffff"
    assert found.got == "config 0x2c (subsystem|subvendor) = 0x11011af4"


def test_failure_names_both_registers_for_iopcimatch():
    p = personality({"IOProviderClass": "IOPCIDevice", "IOPCIMatch": "0xdeadbeef&0xffff0000"})
    found = failure(p, nub("IOPCIDevice", EDU))
    assert str(found) == (
        "IOPCIMatch: personality wants 0xdeadbeef&0xffff0000, "
        "nub has config 0x00 (device|vendor) = 0x11e81234, "
        "config 0x2c (subsystem|subvendor) = 0x11001af4"
    )


@pytest.mark.parametrize(
    ("props", "got"),
    [
        ({k: v for k, v in EDU.items() if k != "subsystem-id"}, "no subsystem-id"),
        ({**EDU, "vendor-id": 0x10000}, "vendor-id 65536 (not a 16-bit integer)"),
        ({**EDU, "class-code": "0x00ff00"}, "class-code '0x00ff00' (not a 24-bit integer)"),
        ({**EDU, "revision-id": True}, "revision-id True (not a 8-bit integer)"),
    ],
)
def test_nubs_with_missing_or_bad_ids_fail_cleanly(props, got):
    p = personality({"IOProviderClass": "IOPCIDevice", "IOPCIPrimaryMatch": "0x11e81234"})
    found = failure(p, nub("IOPCIDevice", props))
    assert found is not None and found.got == got


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ({"IOPCIMatch": 0x11E81234}, "IOPCIMatch", "must be a <string>"),
        ({"IOPCIClassMatch": "0x0200zz00"}, "IOPCIClassMatch", "'0x0200zz00'"),
        ({"IOPCISecondaryMatch": ""}, "IOPCISecondaryMatch", "empty"),
    ],
)
def test_bad_pci_keys_are_rejected_at_load(table, key, message):
    (found,) = problems({"IOProviderClass": "IOPCIDevice", **table})
    assert found.key == key and message in found.reason


def test_pci_keys_need_a_pci_provider():
    (found,) = problems({"IOProviderClass": "IOUSBHostDevice", "IOPCIMatch": "0x1"})
    assert found.reason == "is a PCI matching key but IOProviderClass is 'IOUSBHostDevice'"


def test_name_match_on_pci_compatible_names():
    for name in ("pci1234,11e8", "pci1af4,1100", "pciclass,00ff00"):
        p = personality({"IOProviderClass": "IOPCIDevice", "IONameMatch": name})
        assert failure(p, nub("IOPCIDevice", EDU)) is None, name
    p = personality({"IOProviderClass": "IOPCIDevice", "IONameMatch": "pci8086,100e"})
    found = failure(p, nub("IOPCIDevice", EDU, name="0000:00:03.0"))
    assert found is not None and "pci1234,11e8" in found.got


def test_index_keys():
    def keys(table):
        return personality({"IOProviderClass": "IOPCIDevice", **table}).compiled.index_keys

    assert keys({"IOPCIPrimaryMatch": "0x11e81234 0x100e8086"}) == {
        ("pci-vendor", 0x1234),
        ("pci-vendor", 0x8086),
    }
    assert keys({"IOPCIPrimaryMatch": "0x11e80000&0xffff0000"}) == frozenset()
    assert keys({"IOPCIClassMatch": "0x02000000&0xffff0000"}) == {("pci-class", 0x02)}
    assert keys({"IOPCIClassMatch": "0x00000000&0x00ff0000"}) == frozenset()
    assert keys({"IOPCIPrimaryMatch": "0x11e80000&0xffff0000", "IOPCIClassMatch": "0x0"}) == {
        ("pci-class", 0)
    }
