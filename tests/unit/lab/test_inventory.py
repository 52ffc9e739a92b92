"""The inventory checks on a fake sysfs tree: each passes with its device, fails without."""

import os
import shutil
from pathlib import Path

import pytest

from hwkit.lab import inventory, profiles


def pci(root: Path, bdf: str, vendor: int, device: int, cls: int, group: bool = True) -> Path:
    dev = root / "sys/bus/pci/devices" / bdf
    dev.mkdir(parents=True)
    (dev / "vendor").write_text(f"0x{vendor:04x}\n")
    (dev / "device").write_text(f"0x{device:04x}\n")
    (dev / "class").write_text(f"0x{cls:06x}\n")
    if group:
        (dev / "iommu_group").mkdir()
    return dev


def usb(root: Path, name: str, ident: str, **strings: str) -> Path:
    dev = root / "sys/bus/usb/devices" / name
    dev.mkdir(parents=True)
    vendor, product = ident.split(":")
    (dev / "idVendor").write_text(vendor + "\n")
    (dev / "idProduct").write_text(product + "\n")
    for key, value in strings.items():
        (dev / key).write_text(value + "\n")
    return dev


@pytest.fixture
def full(tmp_path: Path) -> inventory.Roots:
    """A tree with everything the pci and usb profiles promise."""
    pci(tmp_path, "0000:00:02.0", 0x1234, 0x11E8, 0x00FF00)
    nvme = pci(tmp_path, "0000:00:03.0", 0x1B36, 0x0010, 0x010802)
    (nvme / "nvme/nvme0").mkdir(parents=True)
    (nvme / "nvme/nvme0/serial").write_text(profiles.NVME_SERIAL + "\n")
    pci(tmp_path, "0000:00:04.0", 0x1B36, 0x000C, 0x060400)
    (tmp_path / "groups/7").mkdir(parents=True)
    for bdf in ("0000:02:01.0", "0000:02:02.0"):
        rng = pci(tmp_path, bdf, 0x1AF4, 0x1005, 0x00FF00, group=False)
        os.symlink(tmp_path / "groups/7", rng / "iommu_group")
    for module in ("vfio", "vfio_pci", "vfio_iommu_type1"):
        (tmp_path / "sys/module" / module).mkdir(parents=True)
    (tmp_path / "dev/vfio").mkdir(parents=True)
    (tmp_path / "dev/vfio/vfio").write_text("")
    usb(tmp_path, "1-1", profiles.USB_STORAGE_ID)
    usb(tmp_path, "1-2", profiles.USB_KBD_ID)
    usb(tmp_path, "1-3", profiles.FTDI_ID)
    g = profiles.GADGET
    usb(tmp_path, "3-1", profiles.GADGET_ID, manufacturer=g["manufacturer"],
        product=g["product"], serial=g["serialnumber"])  # fmt: skip
    os.symlink("/dev/null", tmp_path / "dev/ttyGS0")  # a character device
    return inventory.Roots(sys=tmp_path / "sys", dev=tmp_path / "dev")


def test_a_complete_tree_has_no_problems(full: inventory.Roots) -> None:
    assert inventory.problems(["all"], full) == []


REMOVALS = {
    "edu": ("bus/pci/devices/0000:00:02.0", "no PCI function 1234:11e8"),
    "nvme": ("bus/pci/devices/0000:00:03.0", "no PCI function 1b36:0010"),
    "hotplug-port": ("bus/pci/devices/0000:00:04.0", "no empty pcie-root-port"),
    "vfio": ("module/vfio_pci", "modules not loaded: vfio_pci"),
    "shared-group": ("bus/pci/devices/0000:02:02.0", "1 PCI functions 1af4:1005"),
    "usb-storage": ("bus/usb/devices/1-1", "no USB device 46f4:0001"),
    "usb-kbd": ("bus/usb/devices/1-2", "no USB device 0627:0001"),
    "ftdi": ("bus/usb/devices/1-3", "no USB device 0403:6001"),
    "gadget": ("bus/usb/devices/3-1", "no USB device 1d6b:0104"),
}


@pytest.mark.parametrize("name", sorted(REMOVALS))
def test_removing_a_device_fails_exactly_its_check(full: inventory.Roots, name: str) -> None:
    relative, message = REMOVALS[name]
    target = full.sys / relative
    shutil.rmtree(target)
    found = inventory.problems(["all"], full)
    assert len(found) == 1 and found[0].startswith(f"{name}: ") and message in found[0], found


def test_edu_without_iommu_group(full: inventory.Roots) -> None:
    (full.sys / "bus/pci/devices/0000:00:02.0/iommu_group").rmdir()
    assert inventory.problems(["pci"], full) == [
        "edu: edu 0000:00:02.0 has no IOMMU group (is intel-iommu on?)"
    ]


def test_nvme_with_another_serial(full: inventory.Roots) -> None:
    (full.sys / "bus/pci/devices/0000:00:03.0/nvme/nvme0/serial").write_text("OTHER\n")
    assert "expected HWKITLAB0001" in inventory.problems(["pci"], full)[0]


def test_gadget_with_wrong_strings(full: inventory.Roots) -> None:
    (full.sys / "bus/usb/devices/3-1/product").write_text("something else\n")
    assert "gadget product is 'something else'" in inventory.problems(["usb"], full)[0]


def test_tty_gs0_must_be_a_character_device(full: inventory.Roots) -> None:
    (full.dev / "ttyGS0").unlink()
    (full.dev / "ttyGS0").write_text("")
    assert inventory.problems(["usb"], full) == [
        f"ttyGS0: {full.dev}/ttyGS0 is not a character device"
    ]


def test_shared_group_must_be_one_group(full: inventory.Roots, tmp_path: Path) -> None:
    link = full.sys / "bus/pci/devices/0000:02:02.0/iommu_group"
    link.unlink()
    link.mkdir()
    assert inventory.problems(["pci"], full) == [
        "shared-group: the virtio-rng functions are in 2 IOMMU groups, expected one"
    ]


def test_a_filled_hotplug_port_is_not_free(full: inventory.Roots) -> None:
    child = full.sys / "bus/pci/devices/0000:00:04.0/0000:01:00.0"
    child.mkdir()
    (child / "vendor").write_text("0x1234\n")
    assert inventory.problems(["pci"], full) == [
        "hotplug-port: no empty pcie-root-port for hot-plug"
    ]


def test_profiles_select_their_expectations() -> None:
    assert {e.profile for e in inventory.expectations(["usb"])} == {"usb"}
    assert len(inventory.expectations(["all"])) == len(inventory.EXPECTATIONS)
