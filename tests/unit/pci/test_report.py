"""Tests of hwkit.pci.report: the lspci -vvv style text and the JSON schema."""

from __future__ import annotations

import json
from pathlib import Path

from hwkit.pci import report
from hwkit.pci.config import parse_config_space
from hwkit.pci.discovery import PCIFunction, Resource, VfioReadiness

from .configs import EDU, NIC, NIC_BAR_SIZES, NVME, ROOT_PORT

NVME_FN = PCIFunction(
    bdf="0000:00:05.0",
    sysfs_path=Path("/sys/bus/pci/devices/0000:00:05.0"),
    vendor_id=0x1B36,
    device_id=0x0010,
    class_code=0x010802,
    revision=2,
    subsystem_vendor_id=0x1AF4,
    subsystem_id=0x1100,
    config=NVME,
    config_size=4096,
    resources=(Resource(0xFEBD0000, 0xFEBD3FFF, 0x140204),),
    driver="nvme",
    iommu_group=5,
    iommu_group_members=("0000:00:05.0",),
    irq=21,
)
NOT_READY = VfioReadiness(
    False, True, ("bound to nvme, not vfio-pci",), ("echo vfio-pci > /sys/.../driver_override",)
)


def test_nvme_text():
    view = report.FunctionView(NVME_FN.bdf, NVME_FN.parse(), NVME_FN, NOT_READY)
    lines = report.format_function(view)
    assert lines[0].startswith("0000:00:05.0 Non-Volatile memory controller (NVM Express) [0108]")
    assert "[1b36:0010] (rev 02) (prog-if 02)" in lines[0]
    assert "\tRegion 0: Memory at febd0000 (64-bit, non-prefetchable) [size=16K]" in lines
    assert "\tCapabilities: [40] MSI-X: Enable+ Count=65 Masked-" in lines
    assert "\t\tVector table: BAR=0 offset=00002000" in lines
    assert "\tCapabilities: [60] Power Management version 3" in lines
    assert "\tCapabilities: [80] Express (v2) Root Complex Integrated Endpoint, MSI 00" in lines
    assert "\tKernel driver in use: nvme" in lines
    assert "\tIOMMU group: 5 (members: 0000:00:05.0)" in lines
    assert "\tVFIO: not ready" in lines and "\t\t- bound to nvme, not vfio-pci" in lines
    assert "\tInterrupt: pin A routed to IRQ 21" in lines


def test_edu_msi_and_bridge_windows():
    lines = report.format_function(report.FunctionView("0000:00:04.0", parse_config_space(EDU)))
    assert "\tCapabilities: [40] MSI: Enable- Count=1/1 Maskable- 64bit+" in lines
    assert "\t\tAddress: 00000000fee00000  Data: 4021" in lines
    lines = report.format_function(
        report.FunctionView("0000:00:06.0", parse_config_space(ROOT_PORT))
    )
    assert "\tBus: primary=00, secondary=01, subordinate=01" in lines
    assert "\tMemory behind bridge: fe800000-fe9fffff" in lines
    assert "\tI/O behind bridge: [disabled]" in lines
    assert "\tCapabilities: [54] Express (v2) Root Port (Slot+), MSI 00" in lines
    assert "\tCapabilities: [100 v2] Advanced Error Reporting" in lines


def test_io_bar_and_extended_fields():
    view = report.FunctionView("0000:01:00.0", parse_config_space(NIC, NIC_BAR_SIZES))
    lines = report.format_function(view)
    assert "\tRegion 2: I/O ports at e000 [size=32]" in lines
    assert "\t\tserial_number_text: 00-11-22-33-de-ad-be-ef" in lines


def test_json_schema():
    view = report.FunctionView(NVME_FN.bdf, NVME_FN.parse(), NVME_FN, NOT_READY)
    out = report.function_to_json(view)
    assert json.loads(json.dumps(out)) == out
    assert {k: out[k] for k in ("bdf", "vendor_id", "device_id", "class_code", "revision")} == {
        "bdf": "0000:00:05.0",
        "vendor_id": 0x1B36,
        "device_id": 0x10,
        "class_code": 0x010802,
        "revision": 2,
    }
    assert (out["subsystem_vendor_id"], out["subsystem_id"]) == (0x1AF4, 0x1100)
    assert (out["driver"], out["iommu_group"]) == ("nvme", 5)
    assert out["bars"] == [
        {
            "index": 0,
            "address": 0xFEBD0000,
            "size": 0x4000,
            "kind": "memory",
            "is_64bit": True,
            "prefetchable": False,
        }
    ]
    assert [(c["id"], c["offset"], c["name"]) for c in out["capabilities"]] == [
        (0x11, 0x40, "MSI-X"),
        (0x01, 0x60, "Power Management"),
        (0x10, 0x80, "PCI Express"),
    ]
    assert out["capabilities"][0]["fields"]["table_size"] == 65
    assert out["extended_capabilities"] == [] and out["notes"] == []
    assert out["vfio"]["ready"] is False


def test_unprivileged_note_in_json_and_text():
    fn = PCIFunction(**{**NVME_FN.__dict__, "config": NVME[:64]})
    view = report.FunctionView(fn.bdf, fn.parse(), fn)
    out = report.function_to_json(view)
    assert out["capabilities"] == [] and out["config_bytes_read"] == 64
    assert "only the first 64 of 4096 bytes" in out["notes"][0]
    assert any(
        line.startswith("\tNote: only the first 64") for line in report.format_function(view)
    )


def test_dump_view_has_no_sysfs_fields():
    out = report.function_to_json(report.FunctionView("0000:00:04.0", parse_config_space(EDU)))
    assert out["driver"] is None and out["iommu_group"] is None
    assert out["bars"][0]["size"] is None


def test_expansion_rom_line_and_json():
    config = bytearray(EDU)
    config[0x30:0x34] = (0xFEB80000).to_bytes(4, "little")
    resources = (Resource(0xFEA00000, 0xFEAFFFFF, 0x40200),) + (Resource(0, 0, 0),) * 5
    resources += (Resource(0xFEB80000, 0xFEBBFFFF, 0x46200),)
    fn = PCIFunction(**{**NVME_FN.__dict__, "config": bytes(config), "resources": resources})
    view = report.FunctionView(fn.bdf, fn.parse(), fn)
    assert "\tExpansion ROM at feb80000 [disabled] [size=256K]" in report.format_function(view)
    assert report.function_to_json(view)["expansion_rom"] == {
        "address": 0xFEB80000,
        "size": 256 * 1024,
        "enabled": False,
    }
