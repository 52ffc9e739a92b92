"""Tests of hwkit.usb.descriptors on real-shaped descriptor bytes and on garbage."""

from __future__ import annotations

import contextlib
import struct
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit.errors import BadArgument, DescriptorError
from hwkit.usb import descriptors as d
from hwkit.usb.names import TransferType, class_name, protocol_name, subclass_name

from .vectors import (
    ACM_COMPOSITE_CONFIG,
    ACM_COMPOSITE_DEVICE,
    BOS,
    FTDI_CONFIG,
    FTDI_DEVICE,
    KEYBOARD_CONFIG,
    KEYBOARD_DEVICE,
    LANGIDS,
    STORAGE_CONFIG,
    STORAGE_DEVICE,
    h,
    string,
)


@pytest.mark.parametrize(
    ("cls", "size"),
    [
        (d.DeviceDescriptor, 18),
        (d.DeviceQualifierDescriptor, 10),
        (d.ConfigurationDescriptor, 9),
        (d.InterfaceDescriptor, 9),
        (d.EndpointDescriptor, 7),
        (d.InterfaceAssociationDescriptor, 8),
        (d.SuperSpeedEndpointCompanionDescriptor, 6),
        (d.HIDDescriptor, 6),
        (d.BOSDescriptor, 5),
        (d.USB20ExtensionCapability, 7),
        (d.SuperSpeedUSBCapability, 10),
        (d.ContainerIDCapability, 20),
        (d.PlatformCapability, 20),
        (d.SuperSpeedPlusCapability, 12),
        (d.CDCHeaderDescriptor, 5),
        (d.CDCCallManagementDescriptor, 5),
        (d.CDCACMDescriptor, 4),
        (d.CDCUnionDescriptor, 4),
        (d.CDCEthernetDescriptor, 13),
        (d.CDCNCMDescriptor, 6),
    ],
)
def test_layout_sizes_match_the_specs(cls, size):
    assert struct.calcsize(cls.FORMAT) == size


def test_keyboard_device_descriptor():
    dev = d.parse_device(KEYBOARD_DEVICE)
    assert (dev.idVendor, dev.idProduct, dev.bcdUSB, dev.bcdDevice) == (0x0627, 1, 0x200, 0)
    assert dev.bMaxPacketSize0 == 64
    assert (dev.iManufacturer, dev.iProduct, dev.iSerialNumber) == (1, 4, 11)
    assert dev.bNumConfigurations == 1


def test_keyboard_configuration_nests_hid_and_endpoint():
    cfg = d.parse_configuration(KEYBOARD_CONFIG)
    assert (cfg.wTotalLength, cfg.bNumInterfaces, cfg.bConfigurationValue) == (34, 1, 1)
    assert cfg.remote_wakeup and not cfg.self_powered
    assert cfg.bMaxPower == 50
    (intf,) = cfg.interfaces
    assert (intf.bInterfaceClass, intf.bInterfaceSubClass, intf.bInterfaceProtocol) == (3, 1, 1)
    (hid,) = intf.extra
    assert isinstance(hid, d.HIDDescriptor)
    assert hid.bcdHID == 0x0111
    assert hid.descriptors == ((0x22, 63),)
    (ep,) = intf.endpoints
    assert ep.bEndpointAddress == 0x81 and ep.is_in and ep.number == 1
    assert ep.transfer_type == TransferType.INTERRUPT
    assert (ep.max_packet_size, ep.bInterval) == (8, 7)


def test_storage_superspeed_companions():
    dev = d.parse_device(STORAGE_DEVICE)
    assert (dev.idVendor, dev.idProduct, dev.bcdUSB, dev.bMaxPacketSize0) == (0x46F4, 1, 0x300, 9)
    cfg = d.parse_configuration(STORAGE_CONFIG)
    (intf,) = cfg.interfaces
    assert (intf.bInterfaceClass, intf.bInterfaceSubClass, intf.bInterfaceProtocol) == (
        8,
        6,
        0x50,
    )
    ep_in, ep_out = intf.endpoints
    assert ep_in.bEndpointAddress == 0x81 and ep_out.bEndpointAddress == 0x02
    assert not ep_out.is_in
    assert ep_in.transfer_type == TransferType.BULK
    assert ep_in.wMaxPacketSize == 1024
    assert ep_in.companion is not None and ep_in.companion.bMaxBurst == 15
    assert ep_out.companion == d.SuperSpeedEndpointCompanionDescriptor(6, 0x30, 15, 0, 0)


def test_ftdi_vendor_interface():
    dev = d.parse_device(FTDI_DEVICE)
    assert (dev.idVendor, dev.idProduct, dev.bcdDevice) == (0x0403, 0x6001, 0x0600)
    cfg = d.parse_configuration(FTDI_CONFIG)
    (intf,) = cfg.interfaces
    assert intf.bInterfaceClass == 0xFF and intf.iInterface == 2
    assert [e.bEndpointAddress for e in intf.endpoints] == [0x81, 0x02]
    assert all(e.max_packet_size == 64 for e in intf.endpoints)


def test_acm_composite_iad_and_cdc_functional_descriptors():
    dev = d.parse_device(ACM_COMPOSITE_DEVICE)
    assert (dev.bDeviceClass, dev.bDeviceSubClass, dev.bDeviceProtocol) == (0xEF, 2, 1)
    cfg = d.parse_configuration(ACM_COMPOSITE_CONFIG)
    assert [i.bInterfaceNumber for i in cfg.interfaces] == [0, 1, 2]
    (iad,) = cfg.associations
    assert (iad.bFirstInterface, iad.bInterfaceCount, iad.bFunctionClass) == (1, 2, 2)
    comm = cfg.interface(1)
    header, call, acm, union = comm.extra
    assert isinstance(header, d.CDCHeaderDescriptor) and header.bcdCDC == 0x0110
    assert isinstance(call, d.CDCCallManagementDescriptor) and call.bDataInterface == 2
    assert isinstance(acm, d.CDCACMDescriptor) and acm.bmCapabilities == 2
    assert isinstance(union, d.CDCUnionDescriptor)
    assert (union.bControlInterface, union.bSubordinateInterface) == (1, (2,))
    (notify,) = comm.endpoints
    assert notify.transfer_type == TransferType.INTERRUPT and notify.max_packet_size == 10
    data = cfg.interface(2)
    assert data.bInterfaceClass == 0x0A
    assert [e.bEndpointAddress for e in data.endpoints] == [0x84, 0x03]
    with pytest.raises(DescriptorError, match="no interface 3"):
        cfg.interface(3)


def test_device_and_configurations_back_to_back():
    dev, configs = d.parse_device_and_configurations(FTDI_DEVICE + FTDI_CONFIG)
    assert dev.idProduct == 0x6001
    assert len(configs) == 1 and configs[0].wTotalLength == len(FTDI_CONFIG)


def test_unknown_class_descriptors_are_kept_raw():
    # An audio-class CS_INTERFACE descriptor inside an audio interface stays raw; so
    # does a CS_ENDPOINT after an endpoint, and a 0x21 (DFU functional) outside HID.
    cfg = h(
        """
        09 02 2b 00 02 01 00 80 32
        09 04 00 00 01 01 02 00 00
        07 24 01 01 01 01 00
        09 05 81 0d c0 00 01 00 00
        07 25 01 00 00 00 00
        09 04 01 00 00 fe 01 01 00
        09 21 0b ff 00 00 04 10 01
        """
    )
    cfg = h(f"09 02 {len(cfg):02x} 00") + cfg[4:]
    parsed = d.parse_configuration(cfg)
    audio, dfu = parsed.interfaces
    assert audio.extra == (d.UnknownDescriptor(7, 0x24, cfg[18:25]),)
    (ep,) = audio.endpoints
    assert (ep.bRefresh, ep.bSynchAddress) == (0, 0)  # 9-byte audio endpoint
    assert ep.transfer_type == TransferType.ISOCHRONOUS and ep.sync_type == 3
    assert ep.extra == (d.UnknownDescriptor(7, 0x25, cfg[34:41]),)
    assert isinstance(dfu.extra[0], d.UnknownDescriptor)


def test_strings_and_language_ids():
    assert d.parse_language_ids(LANGIDS).wLANGID == (0x0409,)
    assert d.parse_string(string("FT232R USB UART")).string == "FT232R USB UART"
    assert d.parse_string(string("Grüße ✓")).string == "Grüße ✓"
    # A lone surrogate is the device's mistake: shown, not raised.
    assert d.parse_string(bytes([6, 3, 0x00, 0xD8, 0x41, 0x00])).string == "\ufffdA"
    with pytest.raises(DescriptorError, match="odd"):
        d.parse_string(bytes([5, 3, 0x41, 0x00, 0x42]))


def test_bos_capabilities():
    bos = d.parse_bos(BOS)
    assert (bos.wTotalLength, bos.bNumDeviceCaps) == (42, 3)
    ext, ss, cid = bos.capabilities
    assert isinstance(ext, d.USB20ExtensionCapability) and ext.bmAttributes == 2
    assert isinstance(ss, d.SuperSpeedUSBCapability)
    assert (ss.wSpeedsSupported, ss.bFunctionalitySupport) == (0x0E, 1)
    assert (ss.bU1DevExitLat, ss.wU2DevExitLat) == (0x0A, 0x07FF)
    assert isinstance(cid, d.ContainerIDCapability)
    assert cid.uuid == uuid.UUID(bytes_le=BOS[-16:])


def test_bos_platform_superspeedplus_and_unknown_capabilities():
    platform = h("1c 10 05 00") + bytes(range(16)) + h("00 01 01 00 00 00 00 00")
    ssp = h("14 10 0a 00 01 00 00 00 00 11 00 00 30 40 0a 00 b0 40 0a 00")
    unknown = h("05 10 11 aa bb")
    body = platform + ssp + unknown
    bos = d.parse_bos(h(f"05 0f {5 + len(body):02x} 00 03") + body)
    p, s, u = bos.capabilities
    assert p.CapabilityData == h("00 01 01 00 00 00 00 00") and p.uuid.bytes_le == bytes(range(16))
    assert s.bmSublinkSpeedAttr == (0x000A4030, 0x000A40B0)
    assert isinstance(u, d.DeviceCapability) and u.name == "FWStatus" and u.data == h("aa bb")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "truncated"),
        (b"\x12", "truncated"),
        (h("00 01"), "bLength is 0"),
        (h("12 01 00 02"), "runs past the end"),
        (h("12 02") + bytes(16), "bDescriptorType is 0x02, expected 0x01"),
        (h("08 01 00 02 00 00 00 40"), "shorter than the 18 bytes"),
    ],
)
def test_malformed_device_descriptor(data, message):
    with pytest.raises(DescriptorError, match=message) as info:
        d.parse_device(data)
    assert "offset 0" in str(info.value)
    assert isinstance(info.value, BadArgument)


def test_malformed_descriptor_inside_configuration_names_its_offset():
    bad = bytearray(KEYBOARD_CONFIG)
    bad[27] = 0  # the endpoint's bLength
    with pytest.raises(DescriptorError, match="offset 27: bLength is 0") as info:
        d.parse_configuration(bytes(bad))
    assert info.value.offset == 27


def test_configuration_total_length_past_the_end():
    with pytest.raises(DescriptorError, match="wTotalLength 34 does not fit"):
        d.parse_configuration(KEYBOARD_CONFIG[:-1])


def test_hid_descriptor_count_beyond_length():
    with pytest.raises(DescriptorError, match="bNumDescriptors 2"):
        d.parse_hid(h("09 21 11 01 00 02 22 3f 00"))


def test_class_names():
    assert class_name(3) == "Human Interface Device"
    assert subclass_name(8, 6) == "SCSI"
    assert protocol_name(8, 6, 0x50) == "Bulk-Only"
    assert protocol_name(3, 1, 1) == "Keyboard"
    assert class_name(0x42) is None


PARSERS = [
    d.parse_device,
    d.parse_configuration,
    d.parse_device_and_configurations,
    d.parse_bos,
    d.parse_string,
    d.parse_language_ids,
    d.parse_hid,
    d.parse_cdc_functional,
    d.parse_endpoint,
    d.parse_interface,
    d.parse_interface_association,
    d.parse_ss_endpoint_companion,
    d.parse_device_capability,
    d.parse_device_qualifier,
]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), parser=st.sampled_from(PARSERS))
def test_arbitrary_bytes_raise_only_descriptor_errors(data, parser):
    with contextlib.suppress(DescriptorError):
        parser(data)


VALID = [
    KEYBOARD_DEVICE + KEYBOARD_CONFIG,
    STORAGE_DEVICE + STORAGE_CONFIG,
    FTDI_DEVICE + FTDI_CONFIG,
    ACM_COMPOSITE_DEVICE + ACM_COMPOSITE_CONFIG,
]


@settings(max_examples=500, deadline=None)
@given(
    base=st.sampled_from(VALID),
    edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 200),
)
def test_mutated_real_descriptors_raise_only_descriptor_errors(base, edits, cut):
    data = bytearray(base)
    for pos, value in edits:
        if pos < len(data):
            data[pos] = value
    data = bytes(data[: len(data) - cut % 8])
    with contextlib.suppress(DescriptorError):
        d.parse_device_and_configurations(data)


@settings(max_examples=300, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, 41), st.integers(0, 255)), max_size=4))
def test_mutated_bos_raises_only_descriptor_errors(edits):
    data = bytearray(BOS)
    for pos, value in edits:
        data[pos] = value
    with contextlib.suppress(DescriptorError):
        d.parse_bos(bytes(data))


def test_hid_descriptor_after_the_endpoint_still_belongs_to_the_interface():
    body = KEYBOARD_CONFIG[9:18] + KEYBOARD_CONFIG[27:34] + KEYBOARD_CONFIG[18:27]
    (intf,) = d.parse_configuration(KEYBOARD_CONFIG[:9] + body).interfaces
    assert isinstance(intf.extra[0], d.HIDDescriptor) and intf.endpoints[0].extra == ()
