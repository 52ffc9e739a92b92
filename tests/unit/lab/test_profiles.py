import pytest

from hwkit.errors import BadArgument
from hwkit.lab import profiles


def test_all_is_pci_plus_usb() -> None:
    assert [p.name for p in profiles.resolve(["all"])] == ["pci", "usb"]
    assert [p.name for p in profiles.resolve(["usb", "all", "pci"])] == ["usb", "pci"]


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(BadArgument, match=r"unknown lab profile 'scsi'.*pci, usb, all"):
        profiles.resolve(["scsi"])


def test_merged_profile_keeps_every_device_module_and_expectation() -> None:
    both = profiles.merged(profiles.resolve(["all"]))
    assert both.name == "pci+usb"
    assert both.devices == profiles.PCI.devices + profiles.USB.devices
    assert set(both.modules) == set(profiles.PCI.modules) | set(profiles.USB.modules)
    assert set(both.expect) == set(profiles.PCI.expect) | set(profiles.USB.expect)
    assert both.gadget == profiles.GADGET and both.ftdi


def test_device_arguments_come_in_option_value_pairs() -> None:
    for profile in profiles.PROFILES.values():
        options = profile.devices[::2]
        assert set(options) <= {"-device", "-drive", "-chardev"}, profile.name
        assert len(profile.devices) % 2 == 0


def test_without_drops_the_device_its_drive_image_and_expectation() -> None:
    pci = profiles.PCI.without(["nvme0"])
    assert not any("nvme" in arg for arg in pci.devices)
    assert pci.images == ()
    assert [e[2] for e in pci.expect] == [profiles.EDU_ID, profiles.VIRTIO_RNG_ID]
    assert "edu,id=edu0" in pci.devices


def test_without_the_ftdi_drops_its_chardev_and_host_end() -> None:
    usb = profiles.USB.without(["ftdi"])
    assert not any("ftdi" in arg for arg in usb.devices)
    assert not usb.ftdi


def test_without_an_unknown_id_lists_the_known_ones() -> None:
    with pytest.raises(BadArgument, match=r"no QEMU device with id nope.*edu0"):
        profiles.PCI.without(["nope"])


def test_qemu_props_parsing() -> None:
    assert profiles._props("usb-storage,bus=xhci.0,id=usbdisk,drive=usbdisk") == {
        "bus": "xhci.0",
        "id": "usbdisk",
        "drive": "usbdisk",
    }
