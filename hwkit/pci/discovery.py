"""PCI functions as sysfs shows them, and what stands between each one and VFIO.

Linux lists every function under ``/sys/bus/pci/devices/DDDD:BB:DD.F``
(Documentation/ABI/testing/sysfs-bus-pci): the ID files (``vendor``, ``device``,
``class``, ``revision``, ``subsystem_vendor``, ``subsystem_device``), ``config`` (the
config space: an unprivileged read returns only the first 64 bytes, root gets all 256
or 4096), ``resource`` (one line per BAR: start, end, flags), the ``driver`` link,
``driver_override`` and the ``iommu_group`` link, whose group lists its members.

Addresses people type: ``pci:0000:00:03.0`` (the domain may be left out:
``pci:00:03.0``). Every function takes ``sysfs_root`` (and ``dev_root`` where /dev is
read) so tests build a fake tree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from hwkit.errors import BadArgument, DescriptorError, NotFoundError
from hwkit.pci.config import Bar, ConfigSpace, normalize_bdf, parse_config_space, parse_header

SYSFS_ROOT = Path("/sys")
DEV_ROOT = Path("/dev")

_BDF = re.compile(r"^[0-9a-f]{4,}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
_ADDRESS = re.compile(r"^pci:((?:[0-9a-fA-F]{4,}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])$")

# include/linux/ioport.h: the flags column of sysfs `resource`.
IORESOURCE_IO = 0x00000100
IORESOURCE_MEM = 0x00000200
IORESOURCE_PREFETCH = 0x00002000
IORESOURCE_MEM_64 = 0x00100000
IORESOURCE_DISABLED = 0x10000000

# Drivers that leave an IOMMU group viable for VFIO (drivers/vfio/group.c and
# vfio_pci_core: vfio-pci itself, pci-stub; bridges may keep any driver).
VFIO_FRIENDLY_DRIVERS = {None, "vfio-pci", "pci-stub"}


@dataclass(frozen=True)
class Resource:
    """One line of sysfs ``resource``: a BAR (lines 0-5), the ROM (6), windows after."""

    start: int
    end: int
    flags: int

    @property
    def size(self) -> int:
        """Bytes decoded, 0 for an unused slot."""
        return self.end - self.start + 1 if self.end else 0

    @property
    def kind(self) -> str | None:
        """``"io"``, ``"memory"`` or None (unused)."""
        if self.flags & IORESOURCE_IO:
            return "io"
        return "memory" if self.flags & IORESOURCE_MEM else None


def parse_resource(text: str) -> tuple[Resource, ...]:
    """Parse the sysfs ``resource`` file.

    Raises:
        DescriptorError: a line that is not three hex numbers.
    """
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        try:
            start, end, flags = (int(p, 16) for p in parts)
        except ValueError:
            raise DescriptorError(
                f"resource line {lineno}: {line!r} is not three hex numbers"
            ) from None
        out.append(Resource(start, end, flags))
    return tuple(out)


@dataclass(frozen=True)
class PCIFunction:
    """One PCI function: its IDs, config bytes, resources, driver and IOMMU group.

    ``config`` holds what could be read; ``config_size`` what the kernel offers
    (256 or 4096), so ``config_complete`` tells an unprivileged read apart.
    """

    bdf: str
    sysfs_path: Path
    vendor_id: int
    device_id: int
    class_code: int
    revision: int
    subsystem_vendor_id: int | None
    subsystem_id: int | None
    config: bytes = b""
    config_size: int = 0
    resources: tuple[Resource, ...] = ()
    driver: str | None = None
    driver_override: str | None = None
    iommu_group: int | None = None
    iommu_group_members: tuple[str, ...] = ()
    parent: str | None = None
    numa_node: int | None = None
    irq: int | None = None
    config_error: str | None = None

    @property
    def address(self) -> str:
        """``pci:DDDD:BB:DD.F``."""
        return f"pci:{self.bdf}"

    @property
    def config_complete(self) -> bool:
        """True when all the config space the kernel offers was read (root)."""
        return bool(self.config) and len(self.config) >= self.config_size

    @property
    def is_bridge(self) -> bool:
        """True for a PCI-to-PCI bridge (class 0604), which keeps its group viable."""
        return self.class_code >> 8 == 0x0604

    def bar_sizes(self) -> list[int | None]:
        """BAR sizes from ``resource`` (None for each slot when it was unreadable)."""
        if not self.resources:
            return [None] * 6
        return [r.size for r in self.resources[:6]]

    def parse(self) -> ConfigSpace | None:
        """The parsed config space, BAR sizes and CPU addresses from ``resource``.

        Returns None when no config bytes could be read. Never raises: malformed
        bytes end up in the result's ``problems``.
        """
        if len(self.config) < 64:
            return None
        space = parse_config_space(self.config, self.bar_sizes())
        bars = tuple(_with_cpu_address(b, self.resources) for b in space.bars)
        return replace(space, bars=bars)


def _with_cpu_address(bar: Bar, resources: Sequence[Resource]) -> Bar:
    """Show the CPU address the kernel assigned, as lspci does, where it differs."""
    if bar.index < len(resources) and resources[bar.index].start:
        return replace(bar, address=resources[bar.index].start)
    return bar


def _text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _hex(path: Path) -> int | None:
    text = _text(path)
    try:
        return int(text, 16) if text else None
    except ValueError:
        return None


def _link_name(path: Path) -> str | None:
    return os.path.basename(os.readlink(path)) if path.is_symlink() else None


def _read_config(path: Path) -> tuple[bytes, int, str | None]:
    """The config bytes readable here, the size the kernel offers, and any error."""
    try:
        size = path.stat().st_size
        return path.read_bytes(), size, None
    except OSError as exc:
        return b"", 0, f"cannot read {path}: {exc.strerror or exc}"


def read_function(path: Path, sysfs_root: Path = SYSFS_ROOT) -> PCIFunction:
    """Read one function's sysfs directory.

    Raises:
        NotFoundError: the directory has no ``vendor`` file (not a PCI function).
    """
    vendor = _hex(path / "vendor")
    if vendor is None:
        raise NotFoundError(f"{path} is not a PCI function (no vendor file)")
    config, size, error = _read_config(path / "config")
    try:
        resources = parse_resource(_text(path / "resource") or "")
    except DescriptorError as exc:
        resources, error = (), f"{error + '; ' if error else ''}{exc}"
    group = _link_name(path / "iommu_group")
    members: tuple[str, ...] = ()
    if group is not None:
        group_dir = Path(sysfs_root) / "kernel/iommu_groups" / group / "devices"
        members = tuple(sorted(p.name for p in group_dir.iterdir())) if group_dir.is_dir() else ()
    override = _text(path / "driver_override")
    parent = path.resolve().parent.name
    numa, irq = _text(path / "numa_node"), _text(path / "irq")
    return PCIFunction(
        bdf=path.name,
        sysfs_path=path,
        vendor_id=vendor,
        device_id=_hex(path / "device") or 0,
        class_code=_hex(path / "class") or 0,
        revision=_hex(path / "revision") or 0,
        subsystem_vendor_id=_hex(path / "subsystem_vendor"),
        subsystem_id=_hex(path / "subsystem_device"),
        config=config,
        config_size=size,
        resources=resources,
        driver=_link_name(path / "driver"),
        driver_override=None if override in (None, "", "(null)") else override,
        iommu_group=int(group) if group and group.isdigit() else None,
        iommu_group_members=members,
        parent=parent if _BDF.match(parent) else None,
        numa_node=int(numa) if numa and numa.lstrip("-").isdigit() else None,
        irq=int(irq) if irq and irq.isdigit() else None,
        config_error=error,
    )


def function_from_config(bdf: str, config: bytes) -> PCIFunction:
    """A function known only from its config bytes (a saved dump): IDs from the header.

    Raises:
        DescriptorError: fewer than 64 bytes.
    """
    header = parse_header(config)
    return PCIFunction(
        bdf=bdf,
        sysfs_path=Path(),
        vendor_id=header.vendor_id,
        device_id=header.device_id,
        class_code=header.class_code,
        revision=header.revision_id,
        subsystem_vendor_id=header.subsystem_vendor_id,
        subsystem_id=header.subsystem_id,
        config=bytes(config),
        config_size=len(config),
    )


def list_functions(sysfs_root: Path = SYSFS_ROOT) -> list[PCIFunction]:
    """Every PCI function, sorted by BDF; empty on a machine without PCI."""
    base = Path(sysfs_root) / "bus/pci/devices"
    if not base.is_dir():
        return []
    out = []
    for entry in sorted(base.iterdir()):
        if _BDF.match(entry.name):
            try:
                out.append(read_function(entry, sysfs_root))
            except NotFoundError:
                continue
    return out


def parse_address(address: str) -> str:
    """``pci:00:03.0`` or ``pci:0000:00:03.0`` -> ``0000:00:03.0``; a bare BDF works too.

    Raises:
        BadArgument: not a PCI address.
    """
    m = _ADDRESS.match(address if address.startswith("pci:") else f"pci:{address}")
    if not m:
        raise BadArgument(
            f"not a PCI address: {address!r} (expected pci:DOMAIN:BUS:DEV.FN such as "
            "pci:0000:00:03.0)"
        )
    return normalize_bdf(m[1])


def find_function(address: str, sysfs_root: Path = SYSFS_ROOT) -> PCIFunction:
    """The function at ``address``.

    Raises:
        BadArgument: a malformed address.
        NotFoundError: no such function; the message lists those present.
    """
    bdf = parse_address(address)
    path = Path(sysfs_root) / "bus/pci/devices" / bdf
    if not path.exists():
        present = ", ".join(f.bdf for f in list_functions(sysfs_root)) or "none"
        raise NotFoundError(f"no PCI function {bdf}; functions present: {present}")
    return read_function(path, sysfs_root)


@dataclass(frozen=True)
class VfioReadiness:
    """Whether a function can be opened through VFIO now, why not, and how to fix it."""

    ready: bool
    group_viable: bool
    reasons: tuple[str, ...]
    commands: tuple[str, ...]


def vfio_readiness(
    fn: PCIFunction,
    functions: Sequence[PCIFunction] = (),
    sysfs_root: Path = SYSFS_ROOT,
    dev_root: Path = DEV_ROOT,
) -> VfioReadiness:
    """Check what stands between ``fn`` and VFIO: IOMMU group, driver, group members.

    ``functions`` are the other functions (to judge the group's viability: every
    member bound to vfio-pci or pci-stub, unbound, or a bridge). ``commands`` are the
    sysfs writes, as root, that bind ``fn`` to vfio-pci.
    """
    reasons, commands = [], []
    if fn.iommu_group is None:
        reasons.append(
            "no IOMMU group: the IOMMU is off or absent (boot with intel_iommu=on or "
            "amd_iommu=on, and check the firmware enables VT-d/AMD-Vi)"
        )
    dev = f"/sys/bus/pci/devices/{fn.bdf}"
    if not (Path(sysfs_root) / "bus/pci/drivers/vfio-pci").is_dir():
        reasons.append("the vfio-pci driver is not loaded")
        commands.append("modprobe vfio-pci")
    if fn.driver != "vfio-pci":
        reasons.append(
            f"bound to {fn.driver}, not vfio-pci" if fn.driver else "not bound to vfio-pci"
        )
        commands.append(f"echo vfio-pci > {dev}/driver_override")
        if fn.driver:
            commands.append(f"echo {fn.bdf} > {dev}/driver/unbind")
        commands.append(f"echo {fn.bdf} > /sys/bus/pci/drivers_probe")
    by_bdf = {f.bdf: f for f in functions}
    blockers = []
    for member in fn.iommu_group_members:
        other = by_bdf.get(member)
        if member == fn.bdf or other is None or other.is_bridge:
            continue
        if other.driver not in VFIO_FRIENDLY_DRIVERS:
            blockers.append(f"{member} is bound to {other.driver}")
    if blockers:
        reasons.append(
            f"IOMMU group {fn.iommu_group} is not viable: {', '.join(blockers)} (unbind "
            "them or bind them to vfio-pci too)"
        )
    node = Path(dev_root) / "vfio" / str(fn.iommu_group)
    if fn.driver == "vfio-pci" and fn.iommu_group is not None and not node.exists():
        reasons.append(f"/dev/vfio/{fn.iommu_group} does not exist (yet)")
    return VfioReadiness(not reasons, not blockers, tuple(reasons), tuple(commands))


def nub_properties(fn: PCIFunction) -> dict[str, object]:
    """The properties of an ``IOPCIDevice`` nub: what PCI matching reads.

    I/O Kit's names (``vendor-id``, ``class-code`` as 24 bits...) plus hwkit's
    ``HWAddress``, and the IOMMU group and bound driver when there are.
    """
    props: dict[str, object] = {
        "vendor-id": fn.vendor_id,
        "device-id": fn.device_id,
        "subsystem-vendor-id": fn.subsystem_vendor_id or 0,
        "subsystem-id": fn.subsystem_id or 0,
        "class-code": fn.class_code,
        "revision-id": fn.revision,
        "HWAddress": fn.address,
    }
    if fn.iommu_group is not None:
        props["iommu-group"] = fn.iommu_group
    if fn.driver is not None:
        props["HWKernelDriver"] = fn.driver
    return props
