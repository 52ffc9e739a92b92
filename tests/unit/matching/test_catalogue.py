"""The catalogue: load order, rescans, watching, and an index that agrees with a full scan."""

from __future__ import annotations

import os
import time

from hwkit.matching.catalogue import Catalogue, default_search_path
from hwkit.matching.matcher import match_nub
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit.registry import Registry
from hwkit.service import Nub
from hwkit.workloop import WorkLoop
from tests.unit.matching.support import personality, write_plist

EDU = {"IOClass": "a.B", "IOProviderClass": "IOPCIDevice", "IOPCIPrimaryMatch": "0x11e81234"}
USB = {"IOClass": "a.B", "IOProviderClass": "IOUSBHostDevice", "idVendor": 1, "idProduct": 2}


def test_load_order_follows_the_search_path_and_file_names(tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    (second / "sub").mkdir(parents=True)
    write_plist(second / "sub" / "z.plist", {"Z": EDU})
    write_plist(first / "b.plist", {"B1": EDU, "B2": USB})
    write_plist(first / "a.plist", {"A": EDU})
    (first / "notes.txt").write_text("ignored")
    catalogue = Catalogue.load([second, first])
    assert [p.name for p in catalogue.personalities] == ["Z", "A", "B1", "B2"]
    assert [p.seq for p in catalogue.personalities] == [1, 2, 3, 4]
    assert len(catalogue.files()) == 3


def test_a_bad_file_is_skipped_and_the_rest_load(tmp_path):
    write_plist(tmp_path / "good.plist", {"Good": EDU})
    write_plist(tmp_path / "bad.plist", {"Bad": {**EDU, "IOPCIPrimaryMatch": "nope"}})
    catalogue = Catalogue.load([tmp_path])
    assert [p.name for p in catalogue.personalities] == ["Good"]
    assert [(r.personality, r.key) for r in catalogue.rejected] == [("Bad", "IOPCIPrimaryMatch")]


def test_rescan_picks_up_added_changed_and_removed_files(tmp_path):
    path = write_plist(tmp_path / "a.plist", {"A": EDU})
    catalogue = Catalogue.load([tmp_path])
    assert not catalogue.rescan()
    write_plist(tmp_path / "b.plist", {"B": USB})
    change = catalogue.rescan()
    assert change.added == [str(tmp_path / "b.plist")] and not change.changed
    write_plist(path, {"A2": EDU, "A3": EDU})
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    change = catalogue.rescan()
    assert change.changed == [str(path)]
    assert [p.name for p in catalogue.personalities] == ["B", "A2", "A3"]
    (tmp_path / "b.plist").unlink()
    change = catalogue.rescan()
    assert change.removed == [str(tmp_path / "b.plist")]
    assert [p.name for p in catalogue.personalities] == ["A2", "A3"]
    usb = Nub("IOUSBHostDevice", "d", {"idVendor": 1, "idProduct": 2})
    assert catalogue.candidates(usb) == [] and catalogue.for_provider(usb) == []


def test_a_fixed_file_replaces_its_rejections(tmp_path):
    path = write_plist(tmp_path / "a.plist", {"A": {**EDU, "IOProbeScore": "x"}})
    catalogue = Catalogue.load([tmp_path])
    assert catalogue.rejected and not catalogue.personalities
    write_plist(path, {"A": EDU})
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    catalogue.rescan()
    assert not catalogue.rejected and [p.name for p in catalogue.personalities] == ["A"]


def test_watch_picks_up_a_dropped_in_file(tmp_path):
    catalogue = Catalogue.load([tmp_path])
    changes = []
    with WorkLoop("watch") as work_loop:
        catalogue.watch(work_loop, interval=0.01, on_change=changes.append)
        write_plist(tmp_path / "new.plist", {"New": EDU})
        deadline = time.monotonic() + 2
        while not changes and time.monotonic() < deadline:
            time.sleep(0.005)
        work_loop.run_sync(lambda: None)
    assert changes and changes[0].added == [str(tmp_path / "new.plist")]
    assert [p.name for p in catalogue.personalities] == ["New"]


def test_default_search_path(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    path = default_search_path()
    assert path[-1] == tmp_path / "hwkit" / "drivers"
    assert any(str(p) == "/etc/hwkit/drivers" for p in path)


def test_index_narrows_the_search():
    personalities = [
        personality({"IOProviderClass": "IOUSBHostDevice", "idVendor": v, "idProduct": 1}, f"U{v}")
        for v in range(50)
    ] + [
        personality(
            {"IOProviderClass": "IOUSBHostDevice", "bDeviceClass": 9, "bDeviceSubClass": 0}, "Hub"
        )
    ]
    catalogue = Catalogue([])
    catalogue.add(personalities)
    device = Nub("IOUSBHostDevice", "d", {"idVendor": 7, "idProduct": 1, "bDeviceClass": 9})
    assert [p.name for p in catalogue.candidates(device)] == ["U7", "Hub"]
    assert len(catalogue.linear(device)) == 51


# ---- the index never changes an outcome -------------------------------------------------------
vendors = st.sampled_from([0x0403, 0x1D6B, 0x8086, 0x1234])
classes = st.sampled_from([0x00, 0x02, 0xFF, 0x09])
usb_tables = st.one_of(
    st.fixed_dictionaries({"idVendor": vendors, "idProduct": st.integers(0, 3)}),
    st.fixed_dictionaries({"idVendor": vendors, "bDeviceSubClass": classes}),
    st.fixed_dictionaries({"bDeviceClass": st.sampled_from([0, 2, 9]), "bDeviceSubClass": classes}),
    st.just({}),
).map(lambda t: {"IOProviderClass": "IOUSBHostDevice", **t})
pci_strings = st.lists(
    st.tuples(
        st.integers(0, 3),
        vendors,
        st.sampled_from(["", "&0xffffffff", "&0xffff0000", "&0x0000ffff"]),
    ),
    min_size=1,
    max_size=3,
).map(lambda es: " ".join(f"{d:#06x}{v:04x}{m}" for d, v, m in es))
pci_tables = st.one_of(
    st.fixed_dictionaries({"IOPCIPrimaryMatch": pci_strings}),
    st.fixed_dictionaries({"IOPCIMatch": pci_strings}),
    st.fixed_dictionaries({"IOPCISecondaryMatch": pci_strings}),
    st.fixed_dictionaries(
        {"IOPCIClassMatch": st.sampled_from(["0x02000000&0xff000000", "0x01080200", "0x0"])}
    ),
).map(lambda t: {"IOProviderClass": "IOPCIDevice", **t})
generic_tables = st.just({"IOProviderClass": "IOService", "IOPropertyExistsMatch": "x"})
usb_nubs = st.fixed_dictionaries(
    {
        "idVendor": vendors,
        "idProduct": st.integers(0, 3),
        "bDeviceClass": classes,
        "bDeviceSubClass": classes,
        "x": st.booleans(),
    }
).map(lambda p: Nub("IOUSBHostDevice", "u", p))
pci_nubs = st.fixed_dictionaries(
    {
        "vendor-id": vendors,
        "device-id": st.integers(0, 3),
        "subsystem-vendor-id": vendors,
        "subsystem-id": st.integers(0, 3),
        "class-code": st.sampled_from([0x020000, 0x010802, 0]),
        "revision-id": st.integers(0, 2),
    }
).map(lambda p: Nub("IOPCIDevice", "p", p))


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.one_of(usb_tables, pci_tables, generic_tables), max_size=25),
    st.lists(st.one_of(usb_nubs, pci_nubs), min_size=1, max_size=5),
)
def test_indexed_lookup_finds_exactly_what_a_linear_scan_finds(tables, nubs):
    catalogue = Catalogue([])
    catalogue.add(personality(t, f"P{i}") for i, t in enumerate(tables))
    registry = Registry()
    for nub in nubs:
        nub.attach(registry.root)
        indexed = match_nub(catalogue, nub)
        linear = match_nub(catalogue, nub, linear=True)
        assert [c.personality.name for c in indexed.ranked() if c.matched] == [
            c.personality.name for c in linear.ranked() if c.matched
        ]
        assert {k: c.personality.name for k, c in indexed.winners.items()} == {
            k: c.personality.name for k, c in linear.winners.items()
        }
