"""What a lab guest of each profile must have, checked from inside the guest.

Each :class:`Expectation` looks at sysfs (and /dev) the way a driver would find its
device, and returns None when the device is there as the profile promises, or a sentence
saying what is missing or wrong. Lab tests assert these one by one; ``hwkit lab run
--omit ID`` boots a profile without one device model, which makes its check fail.
Roots are parameters so the checks are testable on a fake sysfs tree. The checks read
sysfs directly rather than through hwkit's discovery code: an oracle must not share the
code it checks (``tests/lab/test_probe.py`` checks that code against lspci and lsusb).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hwkit.lab import profiles


@dataclass(frozen=True)
class Roots:
    sys: Path = Path("/sys")
    dev: Path = Path("/dev")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def pci_functions(roots: Roots, vendor_device: str) -> list[Path]:
    """The sysfs folders of PCI functions with id "vvvv:dddd"."""
    vendor, device = (int(x, 16) for x in vendor_device.split(":"))
    found = []
    for dev in sorted((roots.sys / "bus" / "pci" / "devices").glob("*")):
        if (
            _read(dev / "vendor") == f"0x{vendor:04x}"
            and _read(dev / "device") == f"0x{device:04x}"
        ):
            found.append(dev)
    return found


def usb_devices(roots: Roots, vendor_product: str) -> list[Path]:
    """The sysfs folders of USB devices with id "vvvv:pppp"."""
    vendor, product = vendor_product.split(":")
    return [
        dev
        for dev in sorted((roots.sys / "bus" / "usb" / "devices").glob("*"))
        if _read(dev / "idVendor") == vendor and _read(dev / "idProduct") == product
    ]


def check_edu(roots: Roots) -> str | None:
    found = pci_functions(roots, profiles.EDU_ID)
    if not found:
        return f"no PCI function {profiles.EDU_ID} (QEMU edu)"
    group = found[0] / "iommu_group"
    if not group.exists():
        return f"edu {found[0].name} has no IOMMU group (is intel-iommu on?)"
    return None


def check_nvme(roots: Roots) -> str | None:
    found = pci_functions(roots, profiles.NVME_ID)
    if not found:
        return f"no PCI function {profiles.NVME_ID} (QEMU NVMe)"
    dev = found[0]
    class_code = _read(dev / "class")
    if class_code != f"0x{profiles.NVME_CLASS:06x}":
        return f"NVMe {dev.name} has class {class_code}, expected 0x{profiles.NVME_CLASS:06x}"
    serials = [_read(c / "serial") for c in sorted((dev / "nvme").glob("nvme*"))]
    if profiles.NVME_SERIAL not in serials:
        return f"NVMe {dev.name}: serial {serials or 'unreadable'}, expected {profiles.NVME_SERIAL}"
    return None


def check_hotplug_port(roots: Roots) -> str | None:
    """A PCIe root port (QEMU's is 1b36:000c) with a hot-plug slot and nothing behind it."""
    for port in pci_functions(roots, "1b36:000c"):
        children = [p for p in port.glob("0000:*") if (p / "vendor").exists()]
        if not children:
            return None
    return "no empty pcie-root-port for hot-plug"


def check_shared_group(roots: Roots) -> str | None:
    """Two virtio-rng functions in one IOMMU group."""
    found = pci_functions(roots, profiles.VIRTIO_RNG_ID)
    if len(found) != 2:
        return f"{len(found)} PCI functions {profiles.VIRTIO_RNG_ID} (virtio-rng), expected 2"
    groups = {os.path.realpath(dev / "iommu_group") for dev in found}
    if len(groups) != 1:
        return f"the virtio-rng functions are in {len(groups)} IOMMU groups, expected one"
    return None


def check_vfio(roots: Roots) -> str | None:
    missing = [
        m
        for m in ("vfio", "vfio_pci", "vfio_iommu_type1")
        if not (roots.sys / "module" / m).exists()
    ]
    if missing:
        return f"modules not loaded: {', '.join(missing)}"
    if not (roots.dev / "vfio" / "vfio").exists():
        return "/dev/vfio/vfio is missing"
    return None


def usb_check(vendor_product: str, what: str) -> Callable[[Roots], str | None]:
    def check(roots: Roots) -> str | None:
        return (
            None
            if usb_devices(roots, vendor_product)
            else f"no USB device {vendor_product} ({what})"
        )

    return check


def check_gadget(roots: Roots) -> str | None:
    found = usb_devices(roots, profiles.GADGET_ID)
    if not found:
        return f"no USB device {profiles.GADGET_ID} (the configfs gadget on dummy_hcd)"
    for attr, key in (
        ("manufacturer", "manufacturer"),
        ("product", "product"),
        ("serial", "serialnumber"),
    ):
        value = _read(found[0] / attr)
        if value != profiles.GADGET[key]:
            return f"gadget {attr} is {value!r}, expected {profiles.GADGET[key]!r}"
    return None


def check_tty_gs0(roots: Roots) -> str | None:
    path = roots.dev / "ttyGS0"
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return f"{path} is missing (gadget ACM function not bound?)"
    return None if stat.S_ISCHR(mode) else f"{path} is not a character device"


@dataclass(frozen=True)
class Expectation:
    profile: str
    name: str
    check: Callable[[Roots], str | None]


EXPECTATIONS = [
    Expectation("pci", "edu", check_edu),
    Expectation("pci", "nvme", check_nvme),
    Expectation("pci", "hotplug-port", check_hotplug_port),
    Expectation("pci", "shared-group", check_shared_group),
    Expectation("pci", "vfio", check_vfio),
    Expectation("usb", "usb-storage", usb_check(profiles.USB_STORAGE_ID, "QEMU usb-storage")),
    Expectation("usb", "usb-kbd", usb_check(profiles.USB_KBD_ID, "QEMU usb-kbd")),
    Expectation("usb", "ftdi", usb_check(profiles.FTDI_ID, "QEMU usb-serial FTDI")),
    Expectation("usb", "gadget", check_gadget),
    Expectation("usb", "ttyGS0", check_tty_gs0),
]


def expectations(profile_names: list[str] | tuple[str, ...]) -> list[Expectation]:
    names = {p.name for p in profiles.resolve(list(profile_names))}
    return [e for e in EXPECTATIONS if e.profile in names]


def problems(profile_names: list[str] | tuple[str, ...], roots: Roots | None = None) -> list[str]:
    """Every unmet expectation of the profiles, as "name: what is wrong"."""
    roots = roots or Roots()
    return [
        f"{e.name}: {msg}"
        for e in expectations(profile_names)
        if (msg := e.check(roots)) is not None
    ]
