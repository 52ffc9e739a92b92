"""Tests of hwkit.pci.lspci: hwkit's view of real config spaces against lspci's."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit.pci.config import load_dump, parse_config_space
from hwkit.pci.discovery import parse_resource
from hwkit.pci.lspci import compare, compare_all, parse_lspci_verbose
from hwkit.pci.report import FunctionView, function_to_json

from .configs import NIC, NIC_BAR_SIZES

DATA = Path(__file__).parent / "data"
# Dumps taken with lspci -xxx/-xxxx on this machine (host-*) and in the lab guest
# (lab-*: QEMU's edu, NVMe, pcie-root-port and qemu-xhci), with sysfs `resource`.
DUMPS = sorted(p.name.split(".lspci-")[0] for p in DATA.glob("*.lspci-xx*"))

NIC_LSPCI = """\
01:00.0 Ethernet controller: Intel Corporation 82576 Gigabit Network Connection (rev 01)
\tSubsystem: Intel Corporation Gigabit ET Dual Port Server Adapter
\tControl: I/O- Mem+ BusMaster+ SpecCycle- MemWINV- VGASnoop- ParErr- DisINTx+
\tRegion 0: Memory at f7a00000 (32-bit, non-prefetchable) [size=128K]
\tRegion 2: I/O ports at e000 [size=32]
\tRegion 3: Memory at f7b00000 (32-bit, non-prefetchable) [size=16K]
\tCapabilities: [40] Power Management version 3
\t\tFlags: PMEClk- DSI+ D1- D2- AuxCurrent=0mA PME(D0+,D1-,D2-,D3hot+,D3cold+)
\tCapabilities: [50] MSI: Enable- Count=1/8 Maskable+ 64bit+
\tCapabilities: [70] MSI-X: Enable+ Count=10 Masked-
\t\tVector table: BAR=3 offset=00000000
\tCapabilities: [a0] Express (v2) Endpoint, MSI 00
\tCapabilities: [100 v1] Advanced Error Reporting
\tCapabilities: [140 v1] Device Serial Number 00-11-22-33-de-ad-be-ef
\tCapabilities: [150 v1] Alternative Routing-ID Interpretation (ARI)
\tCapabilities: [160 v1] Single Root I/O Virtualization (SR-IOV)
\tCapabilities: [1a0 v1] Access Control Services
\tKernel driver in use: igb
"""


def _dump_json(name: str) -> dict:
    (dump,) = DATA.glob(f"{name}.lspci-xx*")
    (fn,) = load_dump(dump.read_bytes())
    resources = parse_resource((DATA / f"{name}.resource").read_text())
    space = parse_config_space(fn.data, [r.size for r in resources[:6]])
    return function_to_json(FunctionView(fn.bdf, space))


@pytest.mark.parametrize("name", DUMPS)
def test_real_functions_agree_with_lspci(name):
    """Every BAR, capability and MSI-X count agrees with lspci 3.9's view."""
    (ref,) = parse_lspci_verbose((DATA / f"{name}.lspci-vvv").read_text())
    probe = _dump_json(name)
    probe["driver"] = ref.driver  # a dump does not say which driver was bound
    assert compare(probe, ref) == []


def test_parse_verbose():
    (fn,) = parse_lspci_verbose(NIC_LSPCI)
    assert fn.bdf == "0000:01:00.0" and fn.driver == "igb" and fn.msix_count == 10
    assert fn.bars[1] == {"index": 2, "kind": "io", "address": 0xE000, "size": 32}
    assert fn.bars[0]["size"] == 128 * 1024 and fn.bars[0]["is_64bit"] is False
    assert [o for o, _ in fn.capabilities] == [0x40, 0x50, 0x70, 0xA0]
    assert fn.extended_capabilities[1] == (0x140, 1, "Device Serial Number 00-11-22-33-de-ad-be-ef")


def test_synthetic_nic_agrees():
    probe = function_to_json(FunctionView("0000:01:00.0", parse_config_space(NIC, NIC_BAR_SIZES)))
    probe["driver"] = "igb"
    assert compare_all([probe], NIC_LSPCI) == []


def test_differences_are_named():
    probe = function_to_json(FunctionView("0000:01:00.0", parse_config_space(NIC, NIC_BAR_SIZES)))
    probe["bars"][0]["size"] = 64 * 1024
    probe["capabilities"][2]["fields"]["table_size"] = 9
    probe["extended_capabilities"].pop()
    probe["driver"] = None
    diffs = compare_all([probe], NIC_LSPCI)
    assert "0000:01:00.0: BAR0 size: hwkit 65536, lspci 131072" in diffs
    assert "0000:01:00.0: MSI-X count: hwkit 9, lspci 10" in diffs
    assert any("extended capabilities (offset, version)" in d for d in diffs)
    assert "0000:01:00.0: driver: hwkit None, lspci 'igb'" in diffs


def test_functions_on_one_side_only():
    diffs = compare_all([{"bdf": "0000:00:09.0"}], NIC_LSPCI)
    assert diffs == [
        "0000:01:00.0: lspci lists it, hwkit does not",
        "0000:00:09.0: hwkit lists it, lspci does not",
    ]


def test_unprivileged_lspci_skips_capabilities():
    text = "00:03.0 Ethernet controller: X\n\tCapabilities: <access denied>\n"
    (fn,) = parse_lspci_verbose(text)
    assert fn.access_denied
    probe = {"bdf": "0000:00:03.0", "bars": [], "capabilities": [{"id": 9, "offset": 64}]}
    assert compare(probe, fn) == []


def test_expansion_rom_compared():
    text = NIC_LSPCI.replace(
        "\tCapabilities: [40]",
        "\tExpansion ROM at f7c00000 [disabled] [size=512K]\n\tCapabilities: [40]",
    )
    (ref,) = parse_lspci_verbose(text)
    assert ref.expansion_rom == {"address": 0xF7C00000, "size": 512 * 1024}
    probe = function_to_json(FunctionView("0000:01:00.0", parse_config_space(NIC, NIC_BAR_SIZES)))
    probe["driver"] = "igb"
    assert compare(probe, ref) == [
        "0000:01:00.0: expansion ROM address: hwkit None, lspci 4156555264",
        "0000:01:00.0: expansion ROM size: hwkit None, lspci 524288",
    ]
    probe["expansion_rom"] = {"address": 0xF7C00000, "size": 512 * 1024, "enabled": False}
    assert compare(probe, ref) == []


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=400))
def test_arbitrary_text_never_breaks_the_reader(text):
    parse_lspci_verbose("00:03.0 X\n\t" + text.replace("\n", "\n\t"))
