"""The personality loader: every bad input is a clear rejection, never a crash."""

from __future__ import annotations

import plistlib
import sys
import types
from pathlib import Path

import pytest
from hwkit.matching.personality import Rejection, load_file, parse_personalities
from hwkit.matching.rules import KNOWN_KEYS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwkit.errors import BadArgument, NotFoundError
from hwkit.service import Service
from tests.unit.matching.support import personality, write_plist

GOOD = {
    "IOClass": "pkg.mod.Driver",
    "IOProviderClass": "IOPCIDevice",
    "IOPCIPrimaryMatch": "0x11e81234",
}


def test_a_good_file_loads(tmp_path):
    path = write_plist(
        tmp_path / "a.plist",
        {"One": GOOD, "Two": {**GOOD, "IOProbeScore": 5, "Custom": {"k": [1, b"x"]}}},
        CFBundleIdentifier="org.example",
    )
    found, rejected = load_file(path)
    assert rejected == []
    assert [p.name for p in found] == ["One", "Two"]
    assert found[1].probe_score == 5
    assert found[0].table["CFBundleIdentifier"] == "org.example"
    assert found[0].category == "IODefaultMatchCategory"
    assert found[0].file == str(path)


@pytest.mark.parametrize(
    ("content", "personality_name", "key", "reason"),
    [
        (b"not a plist", None, None, "not a valid plist"),
        (b"<?xml version='1.0'?><plist><dict><key>a</key>", None, None, "not a valid plist"),
        (plistlib.dumps([1, 2]), None, None, "top level is list, expected a <dict>"),
        (plistlib.dumps({}), None, "IOKitPersonalities", "is missing"),
        (
            plistlib.dumps({"IOKitPersonalities": []}),
            None,
            "IOKitPersonalities",
            "is a list, not a <dict>",
        ),
        (plistlib.dumps({"IOKitPersonalities": {}}), None, "IOKitPersonalities", "is empty"),
        (
            plistlib.dumps({"IOKitPersonalities": {"X": "str"}}),
            "X",
            None,
            "is a str, expected a <dict>",
        ),
        (
            plistlib.dumps({"CFBundleIdentifier": 3, "IOKitPersonalities": {"X": GOOD}}),
            None,
            "CFBundleIdentifier",
            "must be a <string>",
        ),
        (
            plistlib.dumps({"IOKitPersonalities": {"X": {**GOOD, "IOClass": 1}}}),
            "X",
            "IOClass",
            "must be a dotted Python path",
        ),
        (
            plistlib.dumps(
                {
                    "IOKitPersonalities": {
                        "X": {**GOOD, "When": __import__("datetime").datetime(2020, 1, 1)}
                    }
                }
            ),
            "X",
            "When",
            "datetime is not a registry property type",
        ),
    ],
)
def test_file_problems_are_named(tmp_path, content, personality_name, key, reason):
    path = tmp_path / "bad.plist"
    path.write_bytes(content)
    found, rejected = load_file(path)
    assert found == []
    assert rejected[0].file == str(path)
    assert rejected[0].personality == personality_name
    assert rejected[0].key == key
    assert reason in rejected[0].reason


def test_one_bad_personality_skips_the_whole_file(tmp_path):
    path = write_plist(
        tmp_path / "mixed.plist", {"Good": GOOD, "Bad": {**GOOD, "IOProbeScore": "9"}}
    )
    found, rejected = load_file(path)
    assert found == []
    assert [str(r) for r in rejected] == [
        f"{path}: personality 'Bad': key 'IOProbeScore': "
        "must be an <integer> (32-bit signed), not '9'"
    ]


def test_every_problem_of_a_file_is_reported(tmp_path):
    path = write_plist(
        tmp_path / "two.plist",
        {
            "A": {**GOOD, "IOPCIMatch": "nope"},
            "B": {"IOClass": "x.Y", "IOProviderClass": "IOUSBHostDevice", "idVendor": 1},
        },
    )
    _found, rejected = load_file(path)
    assert [(r.personality, r.key) for r in rejected] == [("A", "IOPCIMatch"), ("B", "idProduct")]


def test_unreadable_file(tmp_path):
    found, rejected = load_file(tmp_path / "missing.plist")
    assert found == [] and "cannot read" in rejected[0].reason


def test_rejection_text_and_json():
    r = Rejection("f.plist", "P", "IOClass", "is missing")
    assert str(r) == "f.plist: personality 'P': key 'IOClass': is missing"
    assert r.to_json() == {
        "file": "f.plist",
        "personality": "P",
        "reason": "key 'IOClass': is missing",
    }
    assert (
        str(Rejection("f.plist", None, None, "not a valid plist")) == "f.plist: not a valid plist"
    )


# ---- IOClass is resolved lazily -------------------------------------------------------------
@pytest.fixture
def driver_module():
    module = types.ModuleType("hwkit_test_drivers")

    class Good(Service):
        pass

    module.Good = Good
    module.NotAService = int
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


def test_resolve_class_imports_on_demand(driver_module):
    p = personality(GOOD, io_class="hwkit_test_drivers.Good")
    assert p._class is None  # loading imported nothing
    assert p.resolve_class() is driver_module.Good
    assert p.resolve_class() is driver_module.Good


@pytest.mark.parametrize(
    ("io_class", "error", "message"),
    [
        (
            "hwkit_no_such_module.Driver",
            NotFoundError,
            "personality 'P': IOClass 'hwkit_no_such_module.Driver': cannot import "
            "'hwkit_no_such_module' \\(ModuleNotFoundError",
        ),
        (
            "hwkit_test_drivers.Missing",
            NotFoundError,
            "module 'hwkit_test_drivers' has no 'Missing'",
        ),
        ("hwkit_test_drivers.NotAService", BadArgument, "is not a subclass of hwkit.Service"),
    ],
)
def test_resolve_class_errors(driver_module, io_class, error, message):
    with pytest.raises(error, match=message):
        personality(GOOD, io_class=io_class).resolve_class()


def test_driver_properties_are_a_private_copy():
    p = personality({**GOOD, "Custom": {"list": [1]}})
    copy = p.driver_properties()
    copy["Custom"]["list"].append(2)
    assert p.table["Custom"] == {"list": [1]}


# ---- property tests: arbitrary content never crashes the loader ------------------------------
scalars = st.one_of(
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.binary(max_size=6),
    st.sampled_from(
        [
            "0x11e81234",
            "0x1234&0xffff",
            "IOPCIDevice",
            "IOUSBHostDevice",
            "IOUSBInterface",
            "IOResources",
            "a.b.C",
            "",
            "0xzz",
            "IOKit",
        ]
    ),
)
keys = st.one_of(st.sampled_from(list(KNOWN_KEYS)), st.text(max_size=10))
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=10,
)
personality_tables = st.dictionaries(keys, values, max_size=8)
VALID_BASES = [
    GOOD,
    {"IOClass": "a.B", "IOProviderClass": "IOUSBHostDevice", "idVendor": 1, "idProduct": 2},
    {"IOClass": "a.B", "IOProviderClass": "IOUSBInterface", "bInterfaceClass": 2,
     "bInterfaceSubClass": 2, "IOMatchCategory": "acm"},
    {"IOClass": "a.B", "IOProviderClass": "IOResources", "IOResourceMatch": "IOKit",
     "IOProbeScore": -5, "Custom": [1, b"x", {"k": True}]},
    {"IOClass": "a.B", "IOProviderClass": "IOSerialStreamSync",
     "IOPropertyMatch": {"IOTTYBaseName": "ttyUSB"}, "IOParentMatch": {"IONameMatch": "x"}},
]  # fmt: skip
mutated = st.tuples(
    st.sampled_from(VALID_BASES),
    st.dictionaries(keys, values, max_size=2),
    st.lists(st.sampled_from(list(KNOWN_KEYS)), max_size=2),
).map(lambda t: {k: v for k, v in {**t[0], **t[1]}.items() if k not in t[2]})
documents = st.one_of(
    st.dictionaries(st.text(max_size=5), mutated, min_size=1, max_size=3).map(
        lambda ps: {"IOKitPersonalities": ps}
    ),
    values,
    st.fixed_dictionaries(
        {
            "IOKitPersonalities": st.one_of(
                values,
                st.dictionaries(
                    st.text(max_size=5), st.one_of(personality_tables, values), max_size=3
                ),
            )
        },
        optional={"CFBundleIdentifier": values},
    ),
)


@settings(max_examples=200, deadline=None)
@given(documents)
def test_parse_never_raises_and_explains_every_rejection(document):
    found, rejected = parse_personalities(document, "fuzz.plist")
    assert not (found and rejected)
    for rejection in rejected:
        text = str(rejection)
        assert text.startswith("fuzz.plist: ")
        assert rejection.reason
        if rejection.personality is not None:
            assert f"personality {rejection.personality!r}" in text
        if rejection.key is not None:
            assert f"key {rejection.key!r}" in text
    for p in found:
        assert isinstance(p.passive_score, int)
        assert p.table["IOClass"] and p.provider_class


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(st.binary(max_size=200), documents.map(lambda d: _dump_or_garbage(d))))
def test_load_file_never_raises_on_any_bytes(tmp_path, content):
    path: Path = tmp_path / "fuzz.plist"
    path.write_bytes(content)
    found, rejected = load_file(path)
    assert found or rejected
    assert all(str(r).startswith(str(path)) for r in rejected)


def _dump_or_garbage(document) -> bytes:
    try:
        return plistlib.dumps(document, fmt=plistlib.FMT_BINARY)
    except (TypeError, OverflowError, ValueError):
        return b"<plist><dict><key>IOKitPersonalities</key><integer>x</integer></dict></plist>"
