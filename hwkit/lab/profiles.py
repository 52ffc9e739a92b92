"""Lab profiles: which QEMU device models a guest gets, and what the guest sets up.

A profile is data: QEMU ``-device``/``-drive``/``-chardev`` arguments (with ``{run}``
standing for the run folder the host shares with the guest), scratch disk images, the
guest kernel modules to load, an optional USB gadget built through configfs, and the
devices the guest waits for before it reports ready. Profiles combine: ``all`` is
``pci`` plus ``usb``.

The identities below are what lab tests assert; they are the device models' own IDs
(QEMU's) or values this module sets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from hwkit.errors import BadArgument

# QEMU device models' identities (hw/misc/edu.c, hw/nvme, hw/usb/dev-*.c).
EDU_ID = "1234:11e8"
NVME_ID = "1b36:0010"
NVME_CLASS = 0x010802
NVME_SERIAL = "HWKITLAB0001"
VIRTIO_RNG_ID = "1af4:1005"  # transitional virtio-rng-pci
USB_STORAGE_ID = "46f4:0001"
USB_KBD_ID = "0627:0001"
FTDI_ID = "0403:6001"

#: The configfs gadget on dummy_hcd: Linux Foundation's "Multifunction Composite Gadget"
#: IDs, a vendor SourceSink function and a CDC ACM function (device end /dev/ttyGS0).
GADGET = {
    "name": "hwkit",
    "idVendor": 0x1D6B,
    "idProduct": 0x0104,
    "bcdDevice": 0x0100,
    "bcdUSB": 0x0200,
    # Miscellaneous / Common / Interface Association: the ACM function uses an IAD.
    "bDeviceClass": 0xEF,
    "bDeviceSubClass": 0x02,
    "bDeviceProtocol": 0x01,
    "manufacturer": "hwkit",
    "product": "hwkit lab gadget",
    "serialnumber": "hwkit-lab-0001",
    "functions": ["SourceSink.0", "acm.GS0"],
}
GADGET_ID = f"{GADGET['idVendor']:04x}:{GADGET['idProduct']:04x}"

#: Socket file names in the run folder.
FTDI_SOCKET = "ftdi.sock"

#: The id of the free PCIe root port for hot-plug (QMP ``device_add ... bus=hotplug0``).
HOTPLUG_PORT = "hotplug0"


@dataclass(frozen=True)
class Image:
    """A scratch disk image (raw, sparse), created fresh in the run folder for each boot."""

    id: str
    size_mib: int


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    # QEMU arguments; "{run}" is the run folder, "{sock}" the folder of host-end sockets
    # (the host listens there and QEMU connects: a client chardev).
    devices: tuple[str, ...] = ()
    images: tuple[Image, ...] = ()
    modules: tuple[str, ...] = ()
    gadget: dict[str, Any] | None = None
    # What the guest waits for before it reports ready: (QEMU device id or "", kind,
    # value) with kind "pci" / "usb" (an id "vvvv:dddd") or "path".
    expect: tuple[tuple[str, str, str], ...] = ()
    ftdi: bool = False

    def without(self, qemu_ids: list[str] | tuple[str, ...]) -> Profile:
        """This profile minus the QEMU devices with these ids (and their drives, chardevs).

        Raises:
            BadArgument: the profile has no device with one of the ids.
        """
        if not qemu_ids:
            return self
        pairs = list(zip(self.devices[::2], self.devices[1::2], strict=True))
        known = {_props(spec).get("id") for _, spec in pairs}
        if unknown := set(qemu_ids) - known:
            raise BadArgument(
                f"profile {self.name} has no QEMU device with id {', '.join(sorted(unknown))} "
                f"(its ids: {', '.join(sorted(i for i in known if i))})"
            )
        dropped = set(qemu_ids)
        for _, spec in pairs:  # a drive or chardev goes with the device that uses it
            props = _props(spec)
            if props.get("id") in dropped:
                dropped.update(v for k, v in props.items() if k in ("drive", "chardev"))
        kept = [pair for pair in pairs if _props(pair[1]).get("id") not in dropped]
        return replace(
            self,
            name=f"{self.name}-without-{'-'.join(qemu_ids)}",
            devices=tuple(arg for pair in kept for arg in pair),
            images=tuple(i for i in self.images if i.id not in dropped),
            expect=tuple(e for e in self.expect if e[0] not in dropped),
            ftdi=self.ftdi and "ftdi" not in dropped,
        )


def _props(spec: str) -> dict[str, str]:
    """The key=value properties of a QEMU option value ("edu,id=edu0" -> {"id": "edu0"})."""
    return dict(part.split("=", 1) for part in spec.split(",") if "=" in part)


PCI = Profile(
    name="pci",
    description=(
        "q35 + intel-iommu; edu (1234:11e8); NVMe 1b36:0010 with a scratch disk "
        f"(serial {NVME_SERIAL}); a free pcie-root-port '{HOTPLUG_PORT}' for hot-plug; two "
        "virtio-rng behind a PCIe-to-PCI bridge sharing one IOMMU group; "
        "vfio, vfio-pci and vfio_iommu_type1 loaded"
    ),
    devices=(
        "-device", "edu,id=edu0",
        "-drive", "if=none,id=nvme0disk,format=raw,file={run}/nvme0.img",
        "-device", f"nvme,id=nvme0,serial={NVME_SERIAL},drive=nvme0disk",
        "-device", f"pcie-root-port,id={HOTPLUG_PORT},slot=1,chassis=1",
        # Two functions behind a PCIe-to-PCI bridge share one IOMMU group (the bridge
        # aliases their requester IDs): the group is not viable while one of them keeps
        # its kernel driver (virtio-pci).
        "-device", "pcie-root-port,id=sharedport,slot=2,chassis=2",
        "-device", "pcie-pci-bridge,id=sharedbridge,bus=sharedport",
        "-device", "virtio-rng-pci,id=rng0,bus=sharedbridge,addr=1",
        "-device", "virtio-rng-pci,id=rng1,bus=sharedbridge,addr=2",
    ),
    images=(Image("nvme0", 64),),
    modules=("vfio", "vfio_iommu_type1", "vfio-pci", "nvme"),
    expect=(("edu0", "pci", EDU_ID), ("nvme0", "pci", NVME_ID), ("rng0", "pci", VIRTIO_RNG_ID)),
)  # fmt: skip

USB = Profile(
    name="usb",
    description=(
        "qemu-xhci with usb-storage (46f4:0001, scratch disk), usb-kbd (0627:0001) and "
        "usb-serial FTDI (0403:6001, host end on a socket); in the guest a configfs "
        f"gadget {GADGET_ID} on dummy_hcd with SourceSink and CDC ACM (/dev/ttyGS0)"
    ),
    devices=(
        "-device", "qemu-xhci,id=xhci",
        "-drive", "if=none,id=usbdisk,format=raw,file={run}/usbdisk.img",
        "-device", "usb-storage,bus=xhci.0,id=usbdisk,drive=usbdisk",
        "-device", "usb-kbd,bus=xhci.0,id=kbd",
        "-chardev", "socket,id=ftdi,path={sock}/" + FTDI_SOCKET,
        "-device", "usb-serial,bus=xhci.0,id=ftdi,chardev=ftdi",
    ),
    images=(Image("usbdisk", 64),),
    modules=(
        "xhci_pci", "usb_storage", "sd_mod", "usbhid", "hid_generic", "ftdi_sio",
        "cdc_acm", "evdev", "dummy_hcd", "libcomposite", "usb_f_ss_lb", "usb_f_acm",
    ),
    gadget=GADGET,
    expect=(
        ("usbdisk", "usb", USB_STORAGE_ID),
        ("kbd", "usb", USB_KBD_ID),
        ("ftdi", "usb", FTDI_ID),
        ("", "usb", GADGET_ID),
        ("", "path", "/dev/ttyGS0"),
    ),
    ftdi=True,
)  # fmt: skip

PROFILES = {p.name: p for p in (PCI, USB)}
COMPOSITES = {"all": ("pci", "usb")}


def profile_names() -> list[str]:
    return [*PROFILES, *COMPOSITES]


def resolve(names: list[str] | tuple[str, ...]) -> list[Profile]:
    """Expand composite names and check every name; order kept, duplicates dropped."""
    out: list[Profile] = []
    for name in names:
        parts = COMPOSITES.get(name, (name,))
        for part in parts:
            if part not in PROFILES:
                known = ", ".join(profile_names())
                raise BadArgument(f"unknown lab profile {part!r}: the profiles are {known}")
            if PROFILES[part] not in out:
                out.append(PROFILES[part])
    return out


def merged(profiles: list[Profile]) -> Profile:
    """One profile with every device, module and expectation of `profiles`."""
    gadgets = [p.gadget for p in profiles if p.gadget]
    return Profile(
        name="+".join(p.name for p in profiles) or "bare",
        description="; ".join(p.description for p in profiles),
        devices=tuple(a for p in profiles for a in p.devices),
        images=tuple(i for p in profiles for i in p.images),
        modules=tuple(dict.fromkeys(m for p in profiles for m in p.modules)),
        gadget=gadgets[0] if gadgets else None,
        expect=tuple(dict.fromkeys(e for p in profiles for e in p.expect)),
        ftdi=any(p.ftdi for p in profiles),
    )
