"""Tests of hwkit.pci.capabilities: register tables against the specs, each decoder."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from hwkit.errors import DescriptorError
from hwkit.pci import capabilities as caps

from .configs import le

ENDPOINT = SimpleNamespace(vendor_id=0x8086)
VIRTIO = SimpleNamespace(vendor_id=0x1AF4)

LAYOUTS = {
    "PMC": caps.PMC,
    "PMCSR": caps.PMCSR,
    "DEVICE_CAPABILITIES": caps.DEVICE_CAPABILITIES,
    "DEVICE_CONTROL": caps.DEVICE_CONTROL,
    "DEVICE_STATUS": caps.DEVICE_STATUS,
    "LINK_CAPABILITIES": caps.LINK_CAPABILITIES,
    "LINK_CONTROL": caps.LINK_CONTROL,
    "LINK_STATUS": caps.LINK_STATUS,
    "SLOT_CAPABILITIES": caps.SLOT_CAPABILITIES,
    "SLOT_STATUS": caps.SLOT_STATUS,
}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_register_layouts_have_no_overlapping_fields(name):
    used: set[int] = set()
    for field in LAYOUTS[name]:
        low = field.high if field.low is None else field.low
        span = set(range(low, field.high + 1))
        assert not used & span, f"{name}.{field.name} overlaps another field"
        assert field.high < 32
        used |= span


@pytest.mark.parametrize(
    ("reg", "offset"),
    [
        (caps.PCIe.DEVICE_CAPABILITIES, 0x04),
        (caps.PCIe.LINK_CAPABILITIES, 0x0C),
        (caps.PCIe.LINK_STATUS, 0x12),
        (caps.PCIe.SLOT_STATUS, 0x1A),
        (caps.PCIe.ROOT_STATUS, 0x20),
        (caps.PCIe.LINK_CAPABILITIES_2, 0x2C),
        (caps.MSIX.TABLE, 0x04),
        (caps.MSIX.PBA, 0x08),
        (caps.PM.PMCSR, 0x04),
        (caps.SRIOV.TOTAL_VFS, 0x0E),
        (caps.SRIOV.VF_DEVICE_ID, 0x1A),
        (caps.SRIOV.VF_BAR0, 0x24),
        (caps.AER.HEADER_LOG, 0x1C),
        (caps.VirtioCap.NOTIFY_OFF_MULTIPLIER, 0x10),
    ],
)
def test_register_offsets_match_the_specs(reg, offset):
    assert reg == offset


def test_decode_fields():
    layout = (
        caps.Field("flag", 0),
        caps.Field("count", 4, 1),
        caps.Field("x2", 7, 5, lambda v: 2 * v),
    )
    assert caps.decode_fields(0b1011_0111, layout) == {"flag": True, "count": 0b1011, "x2": 10}


def _cap(body: bytes) -> bytes:
    """A capability at offset 0 (two header bytes, then ``body``)."""
    return b"\x00\x00" + body


def test_msi_32bit_with_masking():
    data = _cap(le((0x0103, 2), (0xFEE00000, 4), (0x4041, 2), (0, 2), (0x5, 4), (0x1, 4)))
    f = caps.decode_msi(data, 0, ENDPOINT)
    assert f["enabled"] and not f["is_64bit"] and f["per_vector_masking"]
    assert (f["multiple_message_capable"], f["data"]) == (2, 0x4041)
    assert (f["mask_bits"], f["pending_bits"]) == (0x5, 0x1)


def test_vendor_specific_of_a_non_virtio_function_is_raw():
    data = _cap(le((8, 1), (0xAABBCCDDEE, 5)))
    assert caps.decode_vendor_specific(data, 0, ENDPOINT) == {"length": 8, "data": "eeddccbbaa"}


def test_virtio_notify_capability():
    body = le((20, 1), (2, 1), (4, 1), (0, 1), (0, 2), (0x3000, 4), (0x1000, 4), (4, 4))
    f = caps.decode_vendor_specific(_cap(body), 0, VIRTIO)
    assert f["virtio_cfg_type_name"] == "Notify" and f["bar"] == 4
    assert (f["offset"], f["bar_length"], f["notify_off_multiplier"]) == (0x3000, 0x1000, 4)


def test_ltr_latencies():
    # 0x1003 = value 3, scale 4 (32^4 ns); 0x0801 = value 1, scale 2 (1024 ns)
    data = b"\x00" * 4 + le((0x1003, 2), (0x0801, 2))
    f = caps.decode_ltr(data, 0, ENDPOINT)
    assert f == {"max_snoop_latency_ns": 3 * 32**4, "max_no_snoop_latency_ns": 1024}


def test_resizable_bar():
    # BAR 0: supports 1 MiB..256 MiB (bits 4..12), currently 16 MiB (size code 4)
    data = b"\x00" * 4 + le((0x1FF0, 4), (0x0420, 4))
    (bar,) = caps.decode_rebar(data, 0, ENDPOINT)["bars"]
    assert bar["bar"] == 0 and bar["current_size"] == 16 << 20
    assert bar["supported_sizes"][0] == 1 << 20 and bar["supported_sizes"][-1] == 256 << 20


def test_dvsec_vsec_ats_pasid():
    assert caps.decode_dvsec(b"\x00" * 4 + le((0x01E98086, 4), (7, 2)), 0, ENDPOINT) == {
        "dvsec_vendor_id": 0x8086,
        "dvsec_revision": 9,
        "dvsec_length": 0x01E,
        "dvsec_id": 7,
    }
    assert caps.decode_vsec(b"\x00" * 4 + le((0x01410023, 4)), 0, ENDPOINT)["vsec_id"] == 0x23
    ats = caps.decode_ats(b"\x00" * 4 + le((0x0020, 2), (0x8000, 2)), 0, ENDPOINT)
    assert ats == {
        "invalidate_queue_depth": 32,
        "page_aligned_request": True,
        "smallest_translation_unit": 0,
        "enable": True,
    }
    pasid = caps.decode_pasid(b"\x00" * 4 + le((0x1406, 2), (1, 2)), 0, ENDPOINT)
    assert pasid["max_pasid_width"] == 20 and pasid["enable"]


def test_registers_past_the_data_raise():
    with pytest.raises(DescriptorError, match="beyond the 4 bytes"):
        caps.decode_msix(b"\x11\x00\x00\x00", 0, ENDPOINT)


def test_unknown_ids_decode_to_nothing():
    assert caps.decoder(0x42)(b"", 0, ENDPOINT) == {}
    assert caps.extended_decoder(0x4242)(b"", 0, ENDPOINT) == {}
