"""Explanations: what a new user reads to learn why a driver did or did not match."""

from __future__ import annotations

import asyncio

from hwkit.matching.engine import MatchingEngine
from hwkit.matching.explain import format_nub, format_summary, format_value, report_json
from hwkit.matching.matcher import match_nub
from hwkit.matching.personality import Rejection

from hwkit.registry import Registry
from hwkit.service import Nub
from tests.unit.matching import drivers
from tests.unit.matching.support import catalogue_of, nub, personality

PCI = {
    "vendor-id": 0x8086,
    "device-id": 0x100E,
    "subsystem-vendor-id": 0x1AF4,
    "subsystem-id": 0x1100,
    "class-code": 0x020000,
    "revision-id": 3,
}


def pci(name, match, score=0, **extra):
    table = {"IOProviderClass": "IOPCIDevice", "IOPCIMatch": match, "Tag": name, **extra}
    if score:
        table["IOProbeScore"] = score
    return personality(table, name, io_class="tests.unit.matching.drivers.Recorder")


def test_passive_explanation_reads_top_to_bottom():
    catalogue = catalogue_of(
        pci("First", "0x100e8086"), pci("Second", "0x100e8086"), pci("Other", "0x10d38086")
    )
    text = format_nub(
        match_nub(catalogue, nub("IOPCIDevice", PCI, "0000:00:04.0"), explain=True), 1, 1
    )
    lines = text.splitlines()
    assert lines[0] == "Nub 1 of 1: '0000:00:04.0' (IOPCIDevice)"
    assert "  class chain IOPCIDevice > IOService > IORegistryEntry" in lines
    assert "vendor-id=0x8086, device-id=0x100e" in text and "class-code=0x020000" in text
    assert (
        "3 personalities name this class (or a superclass) as IOProviderClass, best first:" in text
    )
    assert "First                        score 0        WINNER of IODefaultMatchCategory" in text
    assert "matched, but lost IODefaultMatchCategory to First on a tie (listed earlier)" in text
    assert (
        "why not: IOPCIMatch: personality wants 0x10d38086&0xffffffff, nub has config 0x00 "
        "(device|vendor) = 0x100e8086, config 0x2c (subsystem|subvendor) = 0x11001af4"
    ) in text
    assert "score from: PCI IOPCIMatch (0) + IOProbeScore 0" in text
    assert (
        lines[-1]
        == "  Result: IODefaultMatchCategory -> First (tests.unit.matching.drivers.Recorder)"
    )


def test_explanation_after_probe_and_start():
    drivers.LOG.clear()
    drivers.PLAN.clear()
    drivers.PLAN.update(
        {"Raised": {"probe": 50}, "Declines": {"probe": None}, "Fails": {"start": False}}
    )
    catalogue = catalogue_of(
        pci("Declines", "0x100e8086", 100),
        pci("Fails", "0x100e8086", 60),
        pci("Raised", "0x100e8086"),
        pci("Plain", "0x100e8086", 10),
    )

    async def main():
        registry = Registry()
        engine = MatchingEngine(registry, catalogue)
        device = Nub("IOPCIDevice", "dev", PCI)
        device.attach(registry.root)
        return await engine.publish(device)

    text = format_nub(asyncio.run(main()), 1, 1)
    assert "why not: probe() declined the device" in text
    assert "why not: start() failed (no stop() was called)" in text
    assert "Raised                       score 50       WINNER" in text
    assert "score from: PCI IOPCIMatch (0) + IOProbeScore 0; probe() returned 50" in text
    assert "why not: another driver won its category" not in text
    assert "category 'IODefaultMatchCategory' was taken by a better candidate" in text


def test_no_candidates_and_summaries():
    result = match_nub(catalogue_of(), nub("IOSerialStreamSync", {}, "ttyS0"), explain=True)
    text = format_nub(result, 2, 3)
    assert "No personality names IOSerialStreamSync or a superclass as IOProviderClass." in text
    assert "Result: no driver matches this nub." in text
    assert format_summary(result) == "ttyS0 (IOSerialStreamSync): no match (0 candidates)"
    assert format_value("idVendor", 0x403) == "0x0403"
    assert format_value("bInterfaceClass", 2) == "0x02"
    assert format_value("name", "x") == "'x'"


def test_report_json():
    result = match_nub(catalogue_of(pci("A", "0x100e8086")), nub("IOPCIDevice", PCI))
    doc = report_json([result], [Rejection("f.plist", None, None, "not a valid plist")])
    assert doc["rejected"] == [
        {"file": "f.plist", "personality": None, "reason": "not a valid plist"}
    ]
    assert doc["nubs"][0]["winners"] == {"IODefaultMatchCategory": "A"}
