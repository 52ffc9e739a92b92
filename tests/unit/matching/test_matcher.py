"""Passive matching: sorting, stable ties, categories, and no exceptions on odd nubs."""

from __future__ import annotations

from pathlib import Path

from hwkit.matching.catalogue import Catalogue
from hwkit.matching.matcher import match_nub
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit.registry import Registry
from hwkit.service import Nub, Service
from tests.unit.matching.support import catalogue_of, nub, personality

SAMPLES = Path(__file__).parents[2] / "data" / "matching" / "personalities"
USB = {"idVendor": 1, "idProduct": 2, "bcdDevice": 3, "bDeviceClass": 0, "bDeviceSubClass": 0}


def usb(name, score=0, category=None, keys=("idVendor", "idProduct")):
    table = {"IOProviderClass": "IOUSBHostDevice", **{k: USB[k] for k in keys}}
    if score:
        table["IOProbeScore"] = score
    if category:
        table["IOMatchCategory"] = category
    return personality(table, name)


def names(candidates):
    return [c.personality.name for c in candidates]


def test_sorted_by_score_then_catalogue_order():
    catalogue = catalogue_of(
        usb("A"),
        usb("B", 5),
        usb("C"),
        usb("D", keys=("idVendor", "idProduct", "bcdDevice")),
        usb("E", -1),
        usb("F", 5),
    )
    result = match_nub(catalogue, nub("IOUSBHostDevice", USB))
    assert names(result.ranked()) == ["D", "B", "F", "A", "C", "E"]
    assert [c.score for c in result.ranked()] == [100000, 90005, 90005, 90000, 90000, 89999]
    assert names(result.winners.values()) == ["D"]


def test_ties_keep_insertion_order_whatever_the_order():
    for order in (["X", "Y", "Z"], ["Z", "X", "Y"], ["Y", "Z", "X"]):
        result = match_nub(catalogue_of(*(usb(n) for n in order)), nub("IOUSBHostDevice", USB))
        assert names(result.ranked()) == order
        assert result.winners["IODefaultMatchCategory"].personality.name == order[0]


def test_one_winner_per_category():
    catalogue = catalogue_of(
        usb("Main"),
        usb("Logger", category="Log"),
        usb("Better", 1),
        usb("Tracer", 9, category="Log"),
    )
    result = match_nub(catalogue, nub("IOUSBHostDevice", USB))
    assert {k: c.personality.name for k, c in result.winners.items()} == {
        "IODefaultMatchCategory": "Better",
        "Log": "Tracer",
    }


def test_an_occupied_category_is_skipped():
    class Running(Service):
        pass

    device = nub("IOUSBHostDevice", USB)
    running = Running()
    running.set_property("IOMatchCategory", "Log")
    running._started = True
    running.attach(device)
    result = match_nub(
        catalogue_of(usb("Main"), usb("Logger", category="Log")), device, explain=True
    )
    assert names(result.winners.values()) == ["Main"]
    logger = next(c for c in result.candidates if c.personality.name == "Logger")
    assert str(logger.failure) == (
        "IOMatchCategory: personality wants category 'Log', "
        "nub has a client there already (Running)"
    )


def test_explain_lists_losers_that_the_index_skips():
    catalogue = catalogue_of(
        usb("Match"),
        personality(
            {"IOProviderClass": "IOUSBHostDevice", "idVendor": 9, "idProduct": 2}, "OtherVendor"
        ),
        personality({"IOProviderClass": "IOPCIDevice"}, "Pci"),
    )
    device = nub("IOUSBHostDevice", USB)
    assert names(match_nub(catalogue, device).candidates) == ["Match"]
    explained = match_nub(catalogue, device, explain=True)
    assert names(explained.candidates) == ["Match", "OtherVendor"]
    other = explained.candidates[1]
    assert not other.matched and other.score is None
    assert other.reason == "idVendor: personality wants 0x0009, nub has 0x0001"


def test_json_shape():
    result = match_nub(catalogue_of(usb("A"), usb("B", category="C2")), nub("IOUSBHostDevice", USB))
    doc = result.to_json()
    assert doc["name"] == "nub" and doc["class"] == "IOUSBHostDevice"
    assert doc["winners"] == {"IODefaultMatchCategory": "A", "C2": "B"}
    assert doc["candidates"][0] == {
        "personality": "A",
        "file": "test.plist",
        "category": "IODefaultMatchCategory",
        "score": 90000,
        "matched": True,
        "reason": None,
    }


# ---- property test: the matcher never raises ---------------------------------------------------
leaf = st.one_of(
    st.booleans(), st.integers(-(2**63), 2**64 - 1), st.text(max_size=6), st.binary(max_size=4)
)
value = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
prop_names = st.sampled_from(
    [
        "idVendor",
        "idProduct",
        "bcdDevice",
        "bDeviceClass",
        "bDeviceSubClass",
        "bDeviceProtocol",
        "bInterfaceClass",
        "bInterfaceSubClass",
        "bConfigurationValue",
        "bInterfaceNumber",
        "vendor-id",
        "device-id",
        "subsystem-vendor-id",
        "subsystem-id",
        "class-code",
        "revision-id",
        "compatible",
        "IOTTYBaseName",
        "BSD Name",
        "HWKernelDriver",
        "IOKit",
    ]
)
classes = st.sampled_from(
    ["IOUSBHostDevice", "IOUSBHostInterface", "IOPCIDevice", "IOSerialStreamSync", "IOResources"]
)
CATALOGUE = Catalogue.load([SAMPLES])


def _plist_safe(props):
    from hwkit.errors import BadArgument
    from hwkit.properties import check_value

    try:
        return check_value(props)
    except BadArgument:
        return None


@settings(max_examples=100, deadline=None)
@given(classes, st.dictionaries(st.one_of(prop_names, st.text(max_size=5)), value, max_size=8))
def test_matching_never_raises_on_arbitrary_properties(cls, props):
    checked = _plist_safe(props)
    if checked is None:
        return  # the registry refuses such values before matching could see them
    registry = Registry()
    parent = Nub("IOUSBHostInterface", "parent", checked)
    parent.attach(registry.root)
    entry = Nub(cls, "n", checked)
    entry.attach(parent)
    for explain in (False, True):
        result = match_nub(CATALOGUE, entry, explain=explain)
        for candidate in result.candidates:
            assert candidate.matched or candidate.reason
        result.to_json()
