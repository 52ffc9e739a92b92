"""Nubs files: the JSON that describes devices for hwkit match."""

from __future__ import annotations

import json

import pytest
from hwkit.matching.nubs import build_nubs, load_nubs, nubs_to_json
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit.errors import BadArgument, NotFoundError


def test_build_and_round_trip():
    items = [
        {
            "name": "usb1-1",
            "class": "IOUSBDevice",
            "properties": {"idVendor": 1027},
            "parent": None,
        },
        {
            "name": "usb1-1:1.0",
            "class": "IOUSBHostInterface",
            "properties": {"bInterfaceNumber": 0, "serial": {"$data": "AAE="}},
            "parent": 0,
        },
        {
            "name": "IOResources",
            "class": "IOResources",
            "properties": {"hwkit.fw": True},
            "parent": None,
        },
    ]
    registry, nubs = build_nubs(items)
    device, interface, resources = nubs
    assert device.class_name == "IOUSBHostDevice"
    assert interface.path() == "IOService:/usb1-1/usb1-1:1.0"
    assert interface.get_property("serial") == b"\x00\x01"
    assert resources is registry.resources and resources.is_published("hwkit.fw")
    again = nubs_to_json(nubs[:2])
    assert again[1] == {
        "name": "usb1-1:1.0",
        "class": "IOUSBHostInterface",
        "properties": {"bInterfaceNumber": 0, "serial": {"$data": "AAE="}},
        "parent": 0,
    }
    assert again[0]["class"] == "IOUSBHostDevice"


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ({"name": "x"}, "expected a JSON list of nubs, got dict"),
        ([3], "nub 0: expected an object, got int"),
        ([{"class": "IOPCIDevice"}], "nub 0: 'name' must be a non-empty string"),
        ([{"name": "x"}], "nub 0: 'class' must be a non-empty string"),
        ([{"name": "x", "class": "IOPCIDevice", "props": {}}], "unknown keys \\['props'\\]"),
        (
            [{"name": "x", "class": "IOPCIDevce"}],
            "nub 0 \\('x'\\): class 'IOPCIDevce' is not a known",
        ),
        ([{"name": "x", "class": "IOPCIDevice", "parent": 0}], "'parent': attaching .* cycle"),
        ([{"name": "x", "class": "IOPCIDevice", "parent": 1}], "index of a nub \\(0..0\\)"),
        ([{"name": "x", "class": "IOPCIDevice", "parent": True}], "index of a nub"),
        (
            [
                {"name": "a", "class": "IOPCIDevice", "parent": 1},
                {"name": "b", "class": "IOPCIDevice", "parent": 0},
            ],
            "nub 1 \\('b'\\): 'parent': attaching .* cycle",
        ),
        (
            [{"name": "x", "class": "IOPCIDevice", "properties": []}],
            "'properties' must be an object",
        ),
        ([{"name": "x", "class": "IOPCIDevice", "properties": {"r": 1.5}}], "<real>"),
        ([{"name": "x", "class": "IOPCIDevice", "properties": {"r": None}}], "null"),
        ([{"name": "a/b", "class": "IOPCIDevice"}], "without '/'"),
    ],
)
def test_bad_items_name_the_nub_and_field(items, message):
    with pytest.raises(BadArgument, match=message):
        build_nubs(items, "f.json")


def test_parents_may_come_after_their_children():
    registry, (child, _bridge) = build_nubs(
        [{"name": "fn", "class": "IOPCIDevice", "parent": 1},
         {"name": "bridge", "class": "IOPCIDevice", "parent": None}]
    )  # fmt: skip
    assert child.path() == "IOService:/bridge/fn"
    assert registry.entry(child.entry_id) is child


def test_load_nubs_file_errors(tmp_path):
    with pytest.raises(NotFoundError, match="cannot read nubs file"):
        load_nubs(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(BadArgument, match=r"bad\.json: not valid JSON"):
        load_nubs(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps([{"name": "x", "class": "IOPCIDevice"}]))
    _registry, (nub,) = load_nubs(good)
    assert nub.name == "x"


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**65), 2**65), st.floats(allow_nan=False),
              st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8,
)  # fmt: skip
items = st.fixed_dictionaries(
    {"name": st.one_of(st.text(max_size=5), json_values),
     "class": st.one_of(st.sampled_from(["IOPCIDevice", "IOUSBDevice", "IOResources", "X"]),
                        json_values)},
    optional={"properties": json_values, "parent": st.one_of(st.integers(-1, 4), json_values)},
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.one_of(json_values, st.lists(items, max_size=5)))
def test_any_json_builds_nubs_or_says_why(data):
    try:
        registry, nubs = build_nubs(data, "fuzz.json")
    except BadArgument as exc:
        assert str(exc).startswith("fuzz.json: ")
    else:
        assert all(n.registry is registry for n in nubs)
