"""Tests of hwkit.pci.config: headers, BARs, capability chains, dumps; fuzzed bytes."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit.errors import DescriptorError
from hwkit.pci import config as c
from hwkit.pci.capabilities import CapId, ExtCapId

from .configs import (
    EDU,
    EDU_BAR_SIZES,
    NIC,
    NIC_BAR_SIZES,
    NVME,
    NVME_BAR_SIZES,
    ROOT_PORT,
    ConfigBuilder,
)

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    ("reg", "offset"),
    [
        (c.Reg.VENDOR_ID, 0x00),
        (c.Reg.COMMAND, 0x04),
        (c.Reg.STATUS, 0x06),
        (c.Reg.CLASS_CODE, 0x09),
        (c.Reg.HEADER_TYPE, 0x0E),
        (c.Reg.BAR0, 0x10),
        (c.Reg.CAPABILITIES_POINTER, 0x34),
        (c.Reg.INTERRUPT_PIN, 0x3D),
        (c.Type0.SUBSYSTEM_VENDOR_ID, 0x2C),
        (c.Type0.EXPANSION_ROM_BASE, 0x30),
        (c.Type1.SECONDARY_BUS, 0x19),
        (c.Type1.PREFETCHABLE_BASE_UPPER, 0x28),
        (c.Type1.EXPANSION_ROM_BASE, 0x38),
        (c.Type1.BRIDGE_CONTROL, 0x3E),
    ],
)
def test_register_offsets_match_the_spec(reg, offset):
    assert reg == offset


def test_command_and_status_bits():
    assert c.Command.BUS_MASTER == 1 << 2 and c.Command.INTERRUPT_DISABLE == 1 << 10
    assert c.Status.CAPABILITIES_LIST == 1 << 4 and c.Status.DETECTED_PARITY_ERROR == 1 << 15


def test_edu_header_bars_and_msi():
    cs = c.parse_config_space(EDU, EDU_BAR_SIZES)
    h = cs.header
    assert (h.vendor_id, h.device_id, h.revision_id, h.class_code) == (0x1234, 0x11E8, 0x10, 0xFF00)
    assert (h.subsystem_vendor_id, h.subsystem_id) == (0x1AF4, 0x1100)
    assert h.layout == c.HeaderLayout.ENDPOINT and not h.multifunction
    assert h.command == c.Command.MEMORY_SPACE and h.interrupt_pin == 1
    assert cs.bars == (c.Bar(0, "memory", 0xFEA00000, 1 << 20, False, False, 0xFEA00000),)
    (msi,) = cs.capabilities
    assert (msi.id, msi.offset, msi.name) == (5, 0x40, "MSI")
    assert msi.fields["is_64bit"] and msi.fields["multiple_message_capable"] == 1
    assert msi.fields["address"] == 0xFEE00000 and msi.fields["data"] == 0x4021
    assert not cs.is_pcie and cs.extended_capabilities == () and cs.problems == ()


def test_nvme_msix_pm_and_pcie_rciep():
    cs = c.parse_config_space(NVME, NVME_BAR_SIZES)
    assert cs.header.class_code == 0x010802
    (bar,) = cs.bars
    assert (bar.index, bar.address, bar.size, bar.is_64bit, bar.kind) == (
        0,
        0xFEBD0000,
        16384,
        True,
        "memory",
    )
    assert [(x.offset, x.id) for x in cs.capabilities] == [(0x40, 0x11), (0x60, 0x01), (0x80, 0x10)]
    msix = cs.capability(CapId.MSI_X).fields
    assert msix["table_size"] == 65 and msix["enabled"]
    assert (msix["table_bir"], msix["table_offset"]) == (0, 0x2000)
    assert (msix["pba_bir"], msix["pba_offset"]) == (0, 0x3000)
    pm = cs.capability(CapId.POWER_MANAGEMENT).fields
    assert pm["version"] == 3 and pm["power_state"] == "D0" and pm["no_soft_reset"]
    pcie = cs.capability(CapId.PCI_EXPRESS).fields
    assert pcie["version"] == 2
    assert pcie["device_port_type_name"] == "Root Complex Integrated Endpoint"
    assert pcie["device_capabilities"]["function_level_reset"]
    assert pcie["device_control"]["max_read_request_size"] == 512
    assert "link_capabilities" not in pcie  # an RCiEP has no link
    assert cs.is_pcie and cs.extended_capabilities == ()


def test_root_port_type1_header_windows_and_aer():
    cs = c.parse_config_space(ROOT_PORT)
    h = cs.header
    assert h.layout == c.HeaderLayout.PCI_BRIDGE and h.multifunction
    assert (h.primary_bus, h.secondary_bus, h.subordinate_bus) == (0, 1, 1)
    assert h.io_window is None
    assert h.memory_window == (0xFE800000, 0xFE9FFFFF)
    assert h.prefetchable_window == (0xFC000000, 0xFDFFFFFF)
    assert h.subsystem_vendor_id is None
    assert [x.offset for x in cs.capabilities] == [0x54, 0x48, 0x40]
    pcie = cs.capability(CapId.PCI_EXPRESS).fields
    assert pcie["device_port_type_name"] == "Root Port" and pcie["slot_implemented"]
    assert pcie["link_capabilities"]["max_link_speed"] == "2.5GT/s"
    assert pcie["link_status"]["data_link_layer_link_active"]
    assert pcie["slot_capabilities"]["physical_slot_number"] == 1
    assert pcie["slot_status"]["presence_detect_state"]
    assert pcie["link_capabilities_2"]["supported_link_speeds"] == ["2.5GT/s"]
    assert cs.capabilities[2].name == "Subsystem Vendor ID"
    (aer,) = cs.extended_capabilities
    assert (aer.id, aer.offset, aer.version) == (1, 0x100, 2)


def test_nic_bars_and_extended_capabilities():
    cs = c.parse_config_space(NIC, NIC_BAR_SIZES)
    assert [(b.index, b.kind, b.address, b.size) for b in cs.bars] == [
        (0, "memory", 0xF7A00000, 128 * 1024),
        (2, "io", 0xE000, 32),
        (3, "memory", 0xF7B00000, 16 * 1024),
    ]
    pcie = cs.capability(CapId.PCI_EXPRESS).fields
    assert pcie["device_port_type_name"] == "Endpoint"
    assert pcie["device_capabilities"]["max_payload_size_supported"] == 256
    assert pcie["device_control"]["max_payload_size"] == 256
    assert pcie["link_capabilities"]["max_link_width"] == 4
    assert pcie["link_capabilities"]["aspm_support"] == "L0s L1"
    assert pcie["link_status"]["negotiated_link_width"] == 4
    assert pcie["link_control"]["common_clock"]
    msi = cs.capability(CapId.MSI).fields
    assert msi["multiple_message_capable"] == 8 and msi["per_vector_masking"]
    msix = cs.capability(CapId.MSI_X).fields
    assert (msix["table_size"], msix["table_bir"], msix["pba_offset"]) == (10, 3, 0x2000)
    pm = cs.capability(CapId.POWER_MANAGEMENT).fields
    assert pm["pme_support"] == ["D0", "D3hot", "D3cold"] and pm["dsi"]
    assert [(x.id, x.offset) for x in cs.extended_capabilities] == [
        (0x0001, 0x100),
        (0x0003, 0x140),
        (0x000E, 0x150),
        (0x0010, 0x160),
        (0x000D, 0x1A0),
    ]
    aer = cs.extended_capability(ExtCapId.AER).fields
    assert aer["uncorrectable_status_names"] == ["COMPLETION_TIMEOUT"]
    assert aer["correctable_status_names"] == ["BAD_TLP"]
    assert aer["first_error_pointer"] == 14 and aer["ecrc_check_capable"]
    assert cs.extended_capability(ExtCapId.DSN).fields["serial_number_text"] == (
        "00-11-22-33-de-ad-be-ef"
    )
    sriov = cs.extended_capability(ExtCapId.SRIOV).fields
    assert (sriov["total_vfs"], sriov["num_vfs"], sriov["vf_device_id"]) == (8, 8, 0x10CA)
    assert (sriov["first_vf_offset"], sriov["vf_stride"], sriov["vf_enable"]) == (0x180, 2, True)
    acs = cs.extended_capability(ExtCapId.ACS).fields
    assert acs["capability_names"][:2] == ["SOURCE_VALIDATION", "TRANSLATION_BLOCKING"]
    assert "TRANSLATION_BLOCKING" not in acs["control_names"]
    assert cs.extended_capability(ExtCapId.ARI).fields["next_function_number"] == 1
    assert cs.extended_capabilities[1].name == "Device Serial Number"


def test_bar_size_from_mask():
    assert c.bar_size_from_mask(0xFFF00000) == 1 << 20
    assert c.bar_size_from_mask(0xFFFFC004, 0xFFFFFFFF) == 16 * 1024
    assert c.bar_size_from_mask(0x00000004, 0xFFFFFFF0) == 1 << 36
    assert c.bar_size_from_mask(0xFFFFFFE1) == 32
    assert c.bar_size_from_mask(0x0000FFE1) == 32  # 16-bit I/O decoder
    assert c.bar_size_from_mask(0) == 0


def test_unprivileged_read_of_64_bytes():
    cs = c.parse_config_space(NVME[:64], NVME_BAR_SIZES)
    assert not cs.capabilities_readable and cs.capabilities == () and cs.problems == ()
    assert cs.bars[0].size == 16384


def test_truncated_header():
    with pytest.raises(DescriptorError, match="the header alone is 64"):
        c.parse_config_space(EDU[:63])


def _with_chain(chain):
    b = ConfigBuilder(256).header(0x1234, 0x5678, 0, 0x0010, 0, 0, sv=0, sd=0)
    b.w8(0x34, chain[0])
    for off, nxt in zip(chain, [*chain[1:], 0], strict=True):
        b.w8(off, 0x09).w8(off + 1, nxt).w8(off + 2, 4)
    return b


def test_capability_loop_is_an_error_not_a_hang():
    data = _with_chain([0x40, 0x50, 0x60]).w8(0x61, 0x50).bytes()
    with pytest.raises(
        DescriptorError, match="loops: the pointer at offset 0x61 goes back to 0x50"
    ):
        list(c.iter_capability_offsets(data))
    cs = c.parse_config_space(data)  # not strict: keeps what came before
    assert [x.offset for x in cs.capabilities] == [0x40, 0x50, 0x60]
    assert "loops" in cs.problems[0]
    with pytest.raises(DescriptorError):
        c.parse_config_space(data, strict=True)


def test_capability_pointer_into_header():
    data = _with_chain([0x40]).w8(0x41, 0x10).bytes()
    with pytest.raises(DescriptorError, match="0x41 is 0x10, inside the 64-byte header"):
        c.parse_config_space(data, strict=True)


def test_capability_beyond_bytes_read():
    data = _with_chain([0x40]).w8(0x41, 0xF0).bytes()[:0x80]
    with pytest.raises(DescriptorError, match="beyond the 128 bytes"):
        list(c.iter_capability_offsets(data))


def test_extended_capability_loop_and_bad_pointer():
    b = ConfigBuilder(4096)
    b.data[:] = NIC
    b.w32(0x1A0, 0x000D | 1 << 16 | 0x140 << 20)  # ACS points back to DSN
    with pytest.raises(DescriptorError, match="loops: offset 0x1a0 points back to 0x140"):
        list(c.iter_extended_capability_offsets(b.bytes()))
    b.w32(0x1A0, 0x000D | 1 << 16 | 0x040 << 20)
    with pytest.raises(DescriptorError, match="points to 0x040, outside"):
        list(c.iter_extended_capability_offsets(b.bytes()))
    b.w32(0x1A0, 0x000D | 1 << 16 | 0x300 << 20)
    with pytest.raises(DescriptorError, match="holds 0x00000000"):
        list(c.iter_extended_capability_offsets(b.bytes()))


def test_capability_running_past_the_data_is_reported_on_that_capability():
    data = NVME[:0x88]  # the PCIe capability at 0x80 needs more
    cs = c.parse_config_space(data)
    pcie = cs.capability(CapId.PCI_EXPRESS)
    assert pcie.fields == {} and "cannot be decoded" in pcie.error
    assert cs.problems == (pcie.error,)


def test_find_capability():
    assert c.find_capability(NVME, CapId.PCI_EXPRESS) == 0x80
    assert c.find_capability(EDU, CapId.MSI_X) is None
    assert c.find_extended_capability(NIC, ExtCapId.SRIOV) == 0x160


def test_gone_device_reads_all_ones():
    cs = c.parse_config_space(b"\xff" * 256)
    assert "absent or gone" in cs.problems[0]


def test_real_host_dumps_agree_with_lspci():
    """The virtio functions of the machine these tests were written on."""
    text = (DATA / "host-virtio-00-03.0.lspci-xxx").read_text()
    (fn,) = c.parse_lspci_dump(text)
    assert fn.bdf == "0000:00:03.0" and fn.description.startswith("Ethernet controller")
    assert len(fn.data) == 256
    cs = c.parse_config_space(fn.data, [512 * 1024])
    assert (cs.header.vendor_id, cs.header.device_id) == (0x1AF4, 0x1041)
    (bar,) = cs.bars
    assert (bar.address, bar.is_64bit, bar.size) == (0x4000100000, True, 512 * 1024)
    names = [x.fields.get("virtio_cfg_type_name") for x in cs.capabilities[:5]]
    assert names == ["CommonCfg", "ISR", "DeviceCfg", "Notify", "PCICfg"]
    notify = cs.capabilities[3].fields
    assert (notify["bar"], notify["offset"], notify["notify_off_multiplier"]) == (0, 0x6000, 4)
    msix = cs.capability(CapId.MSI_X)
    assert msix.offset == 0x98 and msix.fields["table_size"] == 3


def test_dump_round_trip_and_multiple_functions():
    functions = [
        c.DumpedFunction("0000:00:04.0", "Unclassified device [00ff]: edu", EDU),
        c.DumpedFunction("0000:00:05.0", "Non-Volatile memory controller: NVMe", NVME),
    ]
    text = c.format_lspci_dump(functions)
    assert "\n100: " in text and "\nf0: " in text
    assert c.parse_lspci_dump(text) == functions
    assert c.load_dump(text.encode()) == functions
    assert c.load_dump(EDU) == [c.DumpedFunction(None, "binary config space", EDU)]


def test_dump_with_verbose_lines_in_between():
    text = (DATA / "host-virtio-00-03.0.lspci-xxx").read_text().splitlines()
    verbose = [text[0], "\tSubsystem: Red Hat, Inc.", "\tLatency: 0", *text[1:]]
    (fn,) = c.parse_lspci_dump("\n".join(verbose))
    assert len(fn.data) == 256


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("00: 00 11\n", "line 1: hex bytes before any device line"),
        ("00:03.0 Foo\n00: " + "00 " * 16 + "\n20: 00\n", "line 3: offset 0x20 where 0x10"),
        ("00:03.0 Foo\n00:04.0 Bar\n00: 00\n", "line 2: 00:03.0 has no config-space hex lines"),
    ],
)
def test_malformed_dumps(text, message):
    with pytest.raises(DescriptorError, match=message):
        c.parse_lspci_dump(text)


def test_load_dump_rejects_short_binary():
    with pytest.raises(DescriptorError, match="neither lspci"):
        c.load_dump(b"\x00\x01")


@settings(max_examples=400, deadline=None)
@given(data=st.binary(min_size=0, max_size=600))
def test_arbitrary_bytes_raise_only_descriptor_errors(data):
    with contextlib.suppress(DescriptorError):
        c.parse_config_space(data, strict=True)
    with contextlib.suppress(DescriptorError):
        c.parse_config_space(data)


@settings(max_examples=400, deadline=None)
@given(
    base=st.sampled_from([EDU, NVME, ROOT_PORT, NIC]),
    edits=st.lists(st.tuples(st.integers(0, 0x1FF), st.integers(0, 255)), max_size=6),
    strict=st.booleans(),
)
def test_mutated_real_config_spaces_raise_only_descriptor_errors(base, edits, strict):
    data = bytearray(base)
    for pos, value in edits:
        data[pos % len(data)] = value
    with contextlib.suppress(DescriptorError):
        c.parse_config_space(bytes(data), [4096] * 6, strict=strict)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="0123456789abcdef: .\n\tx", max_size=400))
def test_arbitrary_dump_text_raises_only_descriptor_errors(text):
    with contextlib.suppress(DescriptorError):
        c.load_dump(("00:03.0 X\n" + text).encode())


def _lab(name: str) -> c.ConfigSpace:
    (fn,) = c.load_dump((DATA / f"lab-{name}.lspci-xxxx").read_bytes())
    assert len(fn.data) in (256, 4096)  # conventional PCI (edu) has 256
    return c.parse_config_space(fn.data, strict=True)


def test_lab_edu():
    cs = _lab("edu-00-04.0")
    h = cs.header
    assert (h.vendor_id, h.device_id, h.class_code) == (0x1234, 0x11E8, 0x00FF00)
    assert [(x.id, x.offset) for x in cs.capabilities] == [(0x05, 0x40)]
    assert cs.capability(CapId.MSI).fields["is_64bit"]
    (bar,) = cs.bars
    assert (bar.kind, bar.is_64bit, bar.address) == ("memory", False, 0xFE600000)


def test_lab_nvme():
    cs = _lab("nvme-00-05.0")
    assert cs.header.class_code == 0x010802
    assert [(x.id, x.offset) for x in cs.capabilities] == [(0x11, 0x40), (0x10, 0x80), (0x01, 0x60)]
    assert cs.capability(CapId.MSI_X).fields["table_size"] == 65
    assert cs.capability(CapId.PCI_EXPRESS).fields["device_port_type"] == 9  # RCiEP
    assert cs.extended_capabilities == ()


def test_lab_pcie_root_port():
    cs = _lab("pcie-root-port-00-06.0")
    assert cs.header.layout == c.HeaderLayout.PCI_BRIDGE and cs.header.secondary_bus == 1
    pcie = cs.capability(CapId.PCI_EXPRESS).fields
    assert pcie["device_port_type_name"] == "Root Port" and pcie["slot_implemented"]
    assert pcie["slot_capabilities"]["hot_plug_capable"]
    assert [(x.id, x.offset, x.version) for x in cs.extended_capabilities] == [
        (ExtCapId.AER, 0x100, 2),
        (ExtCapId.ACS, 0x148, 1),
    ]


def test_sizes_from_masks():
    # NIC: BAR0 32-bit memory, BAR2 I/O, BAR3 32-bit memory; NVMe: BAR0/1 one 64-bit BAR
    masks = [0xFFFE0000, 0, 0xFFFFFFE1, 0xFFFFC000, 0, 0]
    assert c.sizes_from_masks(NIC, masks) == [128 * 1024, 0, 32, 16 * 1024, 0, 0]
    assert c.sizes_from_masks(NVME, [0xFFFFC004, 0xFFFFFFFF, 0, 0, 0, 0]) == [
        16384,
        None,
        0,
        0,
        0,
        0,
    ]
    cs = c.parse_config_space(NVME, c.sizes_from_masks(NVME, [0xFFFFC004, 0xFFFFFFFF] + [0] * 4))
    assert cs.bars[0].size == 16384


def test_expansion_rom():
    b = ConfigBuilder(256).header(0x8086, 0x10C9, 0, 0, 1, 0x020000, sv=0, sd=0)
    assert c.decode_expansion_rom(c.parse_header(b.bytes())) is None
    b.w32(0x30, 0xFEB80001)
    rom = c.decode_expansion_rom(c.parse_header(b.bytes()), 256 * 1024)
    assert rom == c.ExpansionRom(0xFEB80000, 256 * 1024, True)
