"""Linux VFIO for PCI functions: containers, groups, devices (Documentation/driver-api/vfio.rst).

The mapping rule: the object whose file descriptor an ioctl takes owns the method.

    container = VfioContainer()                     # /dev/vfio/vfio
    group = VfioGroup.open(iommu_group)             # /dev/vfio/<group>
    group.set_container(container)                  # VFIO_GROUP_SET_CONTAINER
    container.set_iommu()                           # VFIO_SET_IOMMU(TYPE1v2)
    device = group.open_device("0000:00:03.0")      # VFIO_GROUP_GET_DEVICE_FD
    bar0 = device.map_region(0)                     # VFIO_DEVICE_GET_REGION_INFO + mmap
    container.map_dma(vaddr, iova, size)            # VFIO_IOMMU_MAP_DMA

:func:`open_device` does those steps for one function; :func:`bind` / :func:`release`
move a function to vfio-pci and back to its previous driver through sysfs.

Every failed ioctl becomes a hwkit error naming the device, what failed and what to do.
Threading: objects are not locked; use each from one thread (the driver's work loop).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import mmap
import os
import struct
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from pathlib import Path

from hwkit.errors import (
    BadArgument,
    BusyResourceError,
    ClosedResourceError,
    DeviceGoneError,
    HwkitError,
    NotFoundError,
    PermissionDenied,
)

log = logging.getLogger(__name__)

VFIO_API_VERSION = 0
_VFIO_TYPE = ord(";")
_VFIO_BASE = 100


def _io(nr: int) -> int:
    """_IO(VFIO_TYPE, VFIO_BASE + nr): VFIO ioctls carry no size (argsz is in the struct)."""
    return (_VFIO_TYPE << 8) | (_VFIO_BASE + nr)


class Ioctl(IntEnum):
    """linux/vfio.h request numbers."""

    GET_API_VERSION = _io(0)
    CHECK_EXTENSION = _io(1)
    SET_IOMMU = _io(2)
    GROUP_GET_STATUS = _io(3)
    GROUP_SET_CONTAINER = _io(4)
    GROUP_UNSET_CONTAINER = _io(5)
    GROUP_GET_DEVICE_FD = _io(6)
    DEVICE_GET_INFO = _io(7)
    DEVICE_GET_REGION_INFO = _io(8)
    DEVICE_GET_IRQ_INFO = _io(9)
    DEVICE_SET_IRQS = _io(10)
    DEVICE_RESET = _io(11)
    IOMMU_GET_INFO = _io(12)  # on the container fd (same number as a device ioctl)
    IOMMU_MAP_DMA = _io(13)
    IOMMU_UNMAP_DMA = _io(14)


class Extension(IntEnum):
    TYPE1_IOMMU = 1
    SPAPR_TCE_IOMMU = 2
    TYPE1v2_IOMMU = 3
    DMA_CC_IOMMU = 4
    NOIOMMU_IOMMU = 8
    UNMAP_ALL = 9


class GroupFlag(IntFlag):
    VIABLE = 1 << 0
    CONTAINER_SET = 1 << 1


class DeviceFlag(IntFlag):
    RESET = 1 << 0
    PCI = 1 << 1
    PLATFORM = 1 << 2
    CAPS = 1 << 7


class RegionFlag(IntFlag):
    READ = 1 << 0
    WRITE = 1 << 1
    MMAP = 1 << 2
    CAPS = 1 << 3


class IrqInfoFlag(IntFlag):
    EVENTFD = 1 << 0
    MASKABLE = 1 << 1
    AUTOMASKED = 1 << 2
    NORESIZE = 1 << 3


class IrqSetFlag(IntFlag):
    DATA_NONE = 1 << 0
    DATA_BOOL = 1 << 1
    DATA_EVENTFD = 1 << 2
    ACTION_MASK = 1 << 3
    ACTION_UNMASK = 1 << 4
    ACTION_TRIGGER = 1 << 5


class DmaFlag(IntFlag):
    READ = 1 << 0  # the device may read the memory
    WRITE = 1 << 1  # the device may write the memory


class PciRegion(IntEnum):
    """VFIO_PCI_*_REGION_INDEX."""

    BAR0 = 0
    BAR1 = 1
    BAR2 = 2
    BAR3 = 3
    BAR4 = 4
    BAR5 = 5
    ROM = 6
    CONFIG = 7
    VGA = 8


class PciIrq(IntEnum):
    """VFIO_PCI_*_IRQ_INDEX."""

    INTX = 0
    MSI = 1
    MSIX = 2
    ERR = 3
    REQ = 4


# Capability ids in the info chains.
CAP_REGION_SPARSE_MMAP = 1
CAP_REGION_TYPE = 2
CAP_REGION_MSIX_MAPPABLE = 3
CAP_IOMMU_IOVA_RANGE = 1
CAP_IOMMU_DMA_AVAIL = 3

# Struct layouts (all native little-endian, as the kernel's).
_ARGSZ_FLAGS = struct.Struct("=II")  # vfio_group_status
_DEVICE_INFO = struct.Struct("=IIIIII")  # argsz flags num_regions num_irqs cap_offset pad
_REGION_INFO = struct.Struct("=IIIIQQ")  # argsz flags index cap_offset size offset
_IRQ_INFO = struct.Struct("=IIII")  # argsz flags index count
_IRQ_SET = struct.Struct("=IIIII")  # argsz flags index start count, then data[]
_IOMMU_INFO = struct.Struct("=IIQII")  # argsz flags iova_pgsizes cap_offset pad
_DMA_MAP = struct.Struct("=IIQQQ")  # argsz flags vaddr iova size
_DMA_UNMAP = struct.Struct("=IIQQ")  # argsz flags iova size
_CAP_HEADER = struct.Struct("=HHI")  # id version next


def _error(exc: OSError, what: str, where: str) -> HwkitError:
    """Map an errno from a VFIO call to the hwkit error that says whose fault it is."""
    text = f"{what} on {where}: {os.strerror(exc.errno or 0)}"
    if exc.errno in (errno.EPERM, errno.EACCES):
        return PermissionDenied(f"{text} (run as root, or give the group access to /dev/vfio)")
    if exc.errno == errno.EBUSY:
        return BusyResourceError(f"{text} (another process or container holds it)")
    if exc.errno in (errno.ENODEV, errno.ENXIO):
        return DeviceGoneError(f"{text} (the device went away)")
    if exc.errno == errno.ENOENT:
        return NotFoundError(text)
    if exc.errno == errno.EINVAL:
        return BadArgument(text)
    return HwkitError(text)


def _ioctl(fd: int, request: Ioctl, buf: bytearray | int, what: str, where: str) -> int:
    try:
        return (
            fcntl.ioctl(fd, request, buf, True)
            if isinstance(buf, bytearray)
            else fcntl.ioctl(fd, request, buf)
        )
    except OSError as exc:
        raise _error(exc, f"{what} ({request.name})", where) from exc


def _caps(buf: bytes, first: int) -> dict[int, bytes]:
    """Walk an info structure's capability chain: {cap id: bytes from its header on}."""
    found: dict[int, bytes] = {}
    offset, seen = first, set()
    while offset and offset not in seen and offset + _CAP_HEADER.size <= len(buf):
        seen.add(offset)
        cap_id, _version, next_offset = _CAP_HEADER.unpack_from(buf, offset)
        end = next_offset if next_offset > offset else len(buf)
        found.setdefault(cap_id, bytes(buf[offset:end]))
        offset = next_offset
    return found


def _query(fd: int, request: Ioctl, layout: struct.Struct, fields: tuple, what: str, where: str):
    """Run an info ioctl whose argsz may grow for capabilities; return (values, buffer)."""
    size = layout.size
    while True:
        buf = bytearray(size)
        layout.pack_into(buf, 0, size, *fields)
        _ioctl(fd, request, buf, what, where)
        values = layout.unpack_from(buf)
        if values[0] <= size:
            return values, bytes(buf)
        size = values[0]  # the kernel asks for room for its capability chain


# --- container ----------------------------------------------------------------------------


@dataclass(frozen=True)
class IommuInfo:
    """VFIO_IOMMU_GET_INFO: page sizes, usable IOVA ranges (inclusive) and mapping budget."""

    page_sizes: int
    iova_ranges: tuple[tuple[int, int], ...]
    dma_avail: int | None

    @property
    def min_page_size(self) -> int:
        return self.page_sizes & -self.page_sizes


class VfioContainer:
    """/dev/vfio/vfio: one IOMMU address space shared by the groups attached to it."""

    def __init__(self, path: str = "/dev/vfio/vfio", fd: int | None = None) -> None:
        """Open a new container, or adopt `fd`, one already set up (passed by the daemon)."""
        self.path = path
        try:
            self.fd: int | None = fd if fd is not None else os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise _error(exc, "cannot open the VFIO container", path) from exc
        version = _ioctl(self.fd, Ioctl.GET_API_VERSION, 0, "API version", path)
        if version != VFIO_API_VERSION:
            raise HwkitError(f"{path}: VFIO API version {version}, hwkit speaks {VFIO_API_VERSION}")
        self.iommu_set = fd is not None
        self.mappings: dict[int, int] = {}  # iova -> size

    def _fd(self) -> int:
        if self.fd is None:
            raise ClosedResourceError(f"VFIO container {self.path} is closed")
        return self.fd

    def check_extension(self, extension: Extension) -> bool:
        return bool(
            _ioctl(self._fd(), Ioctl.CHECK_EXTENSION, extension, "check extension", self.path)
        )

    def set_iommu(self, kind: Extension = Extension.TYPE1v2_IOMMU) -> None:
        """Choose the IOMMU model; needs at least one group attached first."""
        if not self.check_extension(kind):
            raise NotFoundError(
                f"{self.path}: the kernel's VFIO has no {kind.name} (load vfio_iommu_type1; "
                "is an IOMMU on? intel_iommu=on / amd_iommu=on)"
            )
        _ioctl(self._fd(), Ioctl.SET_IOMMU, kind, "set IOMMU", self.path)
        self.iommu_set = True

    def iommu_info(self) -> IommuInfo:
        values, buf = _query(
            self._fd(), Ioctl.IOMMU_GET_INFO, _IOMMU_INFO, (0, 0, 0, 0), "IOMMU info", self.path
        )
        _argsz, flags, page_sizes, cap_offset, _pad = values
        caps = _caps(buf, cap_offset) if flags & 2 else {}
        ranges: tuple[tuple[int, int], ...] = ((0, (1 << 64) - 1),)
        if raw := caps.get(CAP_IOMMU_IOVA_RANGE):
            (count,) = struct.unpack_from("=I", raw, 8)
            ranges = tuple(struct.unpack_from("=QQ", raw, 16 + 16 * i) for i in range(count))
        avail = (
            struct.unpack_from("=I", raw, 8)[0] if (raw := caps.get(CAP_IOMMU_DMA_AVAIL)) else None
        )
        return IommuInfo(page_sizes, ranges, avail)

    def map_dma(
        self, vaddr: int, iova: int, size: int, flags: DmaFlag = DmaFlag.READ | DmaFlag.WRITE
    ) -> None:
        """Map `size` bytes at process address `vaddr` to bus address `iova` (pins them).

        Raises:
            HwkitError: ENOMEM names RLIMIT_MEMLOCK (pinned pages count against it);
                ENOSPC the kernel's dma_entry_limit; EEXIST an overlapping mapping.
        """
        buf = bytearray(_DMA_MAP.size)
        _DMA_MAP.pack_into(buf, 0, _DMA_MAP.size, flags, vaddr, iova, size)
        try:
            fcntl.ioctl(self._fd(), Ioctl.IOMMU_MAP_DMA, buf, True)
        except OSError as exc:
            where = f"IOVA 0x{iova:x}+0x{size:x}"
            if exc.errno == errno.ENOMEM:
                raise HwkitError(
                    f"cannot pin {size} bytes for DMA at {where}: RLIMIT_MEMLOCK is too small "
                    "(raise it: ulimit -l, or LimitMEMLOCK= in the service unit)"
                ) from exc
            if exc.errno == errno.ENOSPC:
                raise HwkitError(
                    f"cannot map DMA at {where}: too many mappings (vfio_iommu_type1 "
                    "dma_entry_limit); use fewer, larger buffers"
                ) from exc
            if exc.errno == errno.EEXIST:
                raise BadArgument(f"cannot map DMA at {where}: it overlaps a mapping") from exc
            raise _error(exc, "map DMA", where) from exc
        self.mappings[iova] = size

    def unmap_dma(self, iova: int, size: int) -> None:
        buf = bytearray(_DMA_UNMAP.size)
        _DMA_UNMAP.pack_into(buf, 0, _DMA_UNMAP.size, 0, iova, size)
        _ioctl(self._fd(), Ioctl.IOMMU_UNMAP_DMA, buf, "unmap DMA", f"IOVA 0x{iova:x}")
        self.mappings.pop(iova, None)

    def unmap_all(self) -> None:
        """Unmap every mapping still made through this container (while a group is attached)."""
        for iova, size in list(self.mappings.items()):
            try:
                self.unmap_dma(iova, size)
            except HwkitError as exc:
                log.warning("%s", exc)
                self.mappings.pop(iova, None)

    def close(self) -> None:
        """Close the container; the kernel drops what is still mapped once no group is left."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
            self.mappings.clear()


# --- group --------------------------------------------------------------------------------


class VfioGroup:
    """/dev/vfio/<group>: the unit of isolation; every device in it goes to one container."""

    def __init__(self, number: int, fd: int) -> None:
        self.number = number
        self.fd: int | None = fd
        self.container: VfioContainer | None = None

    @classmethod
    def open(cls, number: int) -> VfioGroup:
        path = f"/dev/vfio/{number}"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise _error(exc, f"cannot open IOMMU group {number}", path) from exc
        return cls(number, fd)

    def _fd(self) -> int:
        if self.fd is None:
            raise ClosedResourceError(f"IOMMU group {self.number} is closed")
        return self.fd

    def status(self) -> GroupFlag:
        buf = bytearray(_ARGSZ_FLAGS.pack(_ARGSZ_FLAGS.size, 0))
        _ioctl(self._fd(), Ioctl.GROUP_GET_STATUS, buf, "group status", f"group {self.number}")
        return GroupFlag(_ARGSZ_FLAGS.unpack(buf)[1])

    def set_container(self, container: VfioContainer) -> None:
        if GroupFlag.VIABLE not in self.status():
            blockers = group_blockers(self.number)
            named = "; ".join(f"{bdf} is still bound to {driver}" for bdf, driver in blockers)
            raise BusyResourceError(
                f"cannot use IOMMU group {self.number}: not viable ({named or 'a member is bound'}"
                " to a kernel driver other than vfio-pci). Every device of a group goes to one "
                f"user: bind the others too (hwkit does not do it for you), e.g. echo vfio-pci > "
                f"/sys/bus/pci/devices/{blockers[0][0] if blockers else 'BDF'}/driver_override"
            )
        buf = bytearray(struct.pack("=i", container._fd()))
        _ioctl(self._fd(), Ioctl.GROUP_SET_CONTAINER, buf, "set container", f"group {self.number}")
        self.container = container

    def open_device(self, bdf: str) -> VfioDevice:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.ioctl(self._fd(), Ioctl.GROUP_GET_DEVICE_FD, ctypes.c_char_p(bdf.encode()))
        if fd < 0:
            err = ctypes.get_errno()
            raise _error(OSError(err, os.strerror(err)), "cannot open device", f"pci:{bdf}")
        return VfioDevice(bdf, fd, self)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# --- device -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegionInfo:
    index: int
    flags: RegionFlag
    size: int
    offset: int  # of the region within the device fd
    sparse_areas: tuple[tuple[int, int], ...] | None = None  # (offset, size) mmappable
    msix_mappable: bool = False

    @property
    def mappable_areas(self) -> tuple[tuple[int, int], ...]:
        if RegionFlag.MMAP not in self.flags:
            return ()
        return self.sparse_areas if self.sparse_areas is not None else ((0, self.size),)


@dataclass(frozen=True)
class IrqInfo:
    index: int
    flags: IrqInfoFlag
    count: int


@dataclass
class DeviceInfo:
    flags: DeviceFlag
    num_regions: int
    num_irqs: int
    regions: dict[int, RegionInfo] = field(default_factory=dict)


class VfioDevice:
    """A device fd: regions (BARs, config space), interrupts and reset of one function."""

    def __init__(self, bdf: str, fd: int, group: VfioGroup | None = None) -> None:
        self.bdf = bdf
        self.fd: int | None = fd
        self.group = group
        self._maps: list[mmap.mmap] = []
        self._regions: dict[int, RegionInfo] = {}

    @property
    def where(self) -> str:
        return f"pci:{self.bdf}"

    def _fd(self) -> int:
        if self.fd is None:
            raise ClosedResourceError(f"VFIO device {self.where} is closed")
        return self.fd

    def info(self) -> DeviceInfo:
        values, _ = _query(
            self._fd(),
            Ioctl.DEVICE_GET_INFO,
            _DEVICE_INFO,
            (0, 0, 0, 0, 0),
            "device info",
            self.where,
        )
        return DeviceInfo(DeviceFlag(values[1]), values[2], values[3])

    def region_info(self, index: int) -> RegionInfo:
        if index in self._regions:
            return self._regions[index]
        values, buf = _query(
            self._fd(),
            Ioctl.DEVICE_GET_REGION_INFO,
            _REGION_INFO,
            (0, index, 0, 0, 0),
            f"region {index} info",
            self.where,
        )
        _argsz, flags, _index, cap_offset, size, offset = values
        caps = _caps(buf, cap_offset) if flags & RegionFlag.CAPS else {}
        sparse = None
        if raw := caps.get(CAP_REGION_SPARSE_MMAP):
            (count,) = struct.unpack_from("=I", raw, 8)
            sparse = tuple(struct.unpack_from("=QQ", raw, 16 + 16 * i) for i in range(count))
        info = RegionInfo(
            index, RegionFlag(flags), size, offset, sparse, CAP_REGION_MSIX_MAPPABLE in caps
        )
        self._regions[index] = info
        return info

    def regions(self) -> list[RegionInfo]:
        """Every region the device has (vfio-pci reports a VGA index even without VGA)."""
        found = []
        for index in range(self.info().num_regions):
            try:
                found.append(self.region_info(index))
            except BadArgument:
                continue
        return found

    def irq_info(self, index: int) -> IrqInfo:
        buf = bytearray(_IRQ_INFO.pack(_IRQ_INFO.size, 0, index, 0))
        _ioctl(self._fd(), Ioctl.DEVICE_GET_IRQ_INFO, buf, f"IRQ {index} info", self.where)
        _argsz, flags, _index, count = _IRQ_INFO.unpack(buf)
        return IrqInfo(index, IrqInfoFlag(flags), count)

    def irqs(self) -> list[IrqInfo]:
        """Every interrupt index the device has (ERR needs PCIe AER, REQ a new enough kernel)."""
        found = []
        for index in range(self.info().num_irqs):
            try:
                found.append(self.irq_info(index))
            except BadArgument:
                continue
        return found

    def set_irqs(
        self,
        index: int,
        flags: IrqSetFlag,
        start: int = 0,
        data: list[int] | None = None,
        count: int | None = None,
    ) -> None:
        """VFIO_DEVICE_SET_IRQS: `data` holds eventfds (DATA_EVENTFD, -1 unassigns) or bools."""
        data = data or []
        if IrqSetFlag.DATA_EVENTFD in flags:
            payload = struct.pack(f"={len(data)}i", *data)
        elif IrqSetFlag.DATA_BOOL in flags:
            payload = bytes(1 if d else 0 for d in data)
        else:
            payload = b""
        n = count if count is not None else len(data)
        buf = bytearray(
            _IRQ_SET.pack(_IRQ_SET.size + len(payload), flags, index, start, n) + payload
        )
        _ioctl(self._fd(), Ioctl.DEVICE_SET_IRQS, buf, f"set IRQs (index {index})", self.where)

    def enable_irqs(self, index: PciIrq, eventfds: list[int]) -> None:
        """Route vectors 0..n-1 of `index` (INTx, MSI, MSI-X) to `eventfds`."""
        self.set_irqs(index, IrqSetFlag.DATA_EVENTFD | IrqSetFlag.ACTION_TRIGGER, 0, eventfds)

    def disable_irqs(self, index: PciIrq) -> None:
        self.set_irqs(index, IrqSetFlag.DATA_NONE | IrqSetFlag.ACTION_TRIGGER, 0, count=0)

    def unmask_intx(self) -> None:
        """INTx is automasked when it fires: unmask after the handler acked the device."""
        self.set_irqs(PciIrq.INTX, IrqSetFlag.DATA_NONE | IrqSetFlag.ACTION_UNMASK, 0, count=1)

    def reset(self) -> None:
        _ioctl(self._fd(), Ioctl.DEVICE_RESET, 0, "reset", self.where)

    # Config space through the config region (virtualised by vfio-pci).

    def config_read(self, offset: int, size: int) -> bytes:
        region = self.region_info(PciRegion.CONFIG)
        try:
            data = os.pread(self._fd(), size, region.offset + offset)
        except OSError as exc:
            raise _error(exc, f"config read at 0x{offset:x}", self.where) from exc
        if len(data) != size:
            raise DeviceGoneError(f"config read at 0x{offset:x} on {self.where}: short read")
        return data

    def config_write(self, offset: int, data: bytes) -> None:
        region = self.region_info(PciRegion.CONFIG)
        try:
            written = os.pwrite(self._fd(), data, region.offset + offset)
        except OSError as exc:
            raise _error(exc, f"config write at 0x{offset:x}", self.where) from exc
        if written != len(data):
            raise DeviceGoneError(f"config write at 0x{offset:x} on {self.where}: short write")

    def config_read16(self, offset: int) -> int:
        return int.from_bytes(self.config_read(offset, 2), "little")

    def config_write16(self, offset: int, value: int) -> None:
        self.config_write(offset, value.to_bytes(2, "little"))

    def region_read(self, index: int, offset: int, size: int) -> bytes:
        """pread on a region that is not mmappable (I/O BARs)."""
        return os.pread(self._fd(), size, self.region_info(index).offset + offset)

    def region_write(self, index: int, offset: int, data: bytes) -> None:
        os.pwrite(self._fd(), data, self.region_info(index).offset + offset)

    def map_region(self, index: int) -> mmap.mmap:
        """mmap a whole BAR (read-write, shared); an error if VFIO cannot mmap it."""
        region = self.region_info(index)
        if region.size == 0:
            raise NotFoundError(f"{self.where} has no region {index} (BAR not implemented)")
        if region.mappable_areas != ((0, region.size),):
            raise BadArgument(
                f"region {index} of {self.where} is not mmappable as a whole "
                f"(areas {region.mappable_areas}); map areas or use region_read/region_write"
            )
        try:
            mapping = mmap.mmap(
                self._fd(),
                region.size,
                mmap.MAP_SHARED,
                mmap.PROT_READ | mmap.PROT_WRITE,
                offset=region.offset,
            )
        except OSError as exc:
            raise _error(exc, f"mmap of region {index}", self.where) from exc
        self._maps.append(mapping)
        return mapping

    def close(self) -> None:
        for mapping in self._maps:
            try:
                mapping.close()
            except BufferError:
                log.warning("%s: a view of a BAR mapping is still alive at close", self.where)
        self._maps.clear()
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# --- sysfs: binding to vfio-pci -----------------------------------------------------------

SYSFS_PCI = Path("/sys/bus/pci")


def current_driver(bdf: str, sysfs: Path = SYSFS_PCI) -> str | None:
    link = sysfs / "devices" / bdf / "driver"
    return os.path.basename(os.readlink(link)) if link.is_symlink() else None


def iommu_group(bdf: str, sysfs: Path = SYSFS_PCI) -> int:
    link = sysfs / "devices" / bdf / "iommu_group"
    if not link.is_symlink():
        raise NotFoundError(
            f"pci:{bdf} has no IOMMU group: enable the IOMMU (intel_iommu=on or amd_iommu=on "
            "on the kernel command line, VT-d / AMD-Vi in the firmware)"
        )
    return int(os.path.basename(os.readlink(link)))


def _write(path: Path, value: str, what: str) -> None:
    try:
        path.write_text(value)
    except OSError as exc:
        raise _error(exc, what, str(path)) from exc


def group_blockers(group: int, sysfs_root: Path = Path("/sys")) -> list[tuple[str, str]]:
    """Members of IOMMU group `group` bound to a driver that makes it non-viable.

    vfio-pci and pci-stub leave a group viable, and so does a bridge's pcieport.
    """
    out = []
    for member in sorted(
        (sysfs_root / "kernel" / "iommu_groups" / str(group) / "devices").glob("*")
    ):
        link = member / "driver"
        driver = os.path.basename(os.readlink(link)) if link.is_symlink() else None
        if driver not in (None, "vfio-pci", "pci-stub", "pcieport"):
            out.append((member.name, driver))
    return out


def bind(bdf: str, sysfs: Path = SYSFS_PCI) -> str | None:
    """Give function `bdf` to vfio-pci; return the driver it had (for :func:`release`).

    Uses driver_override, so only this function moves and a rescan does not undo it.
    """
    previous = current_driver(bdf, sysfs)
    if previous == "vfio-pci":
        return previous
    device = sysfs / "devices" / bdf
    if not device.exists():
        raise NotFoundError(f"no PCI function {bdf} in {sysfs}/devices")
    _write(device / "driver_override", "vfio-pci", f"set driver_override of pci:{bdf}")
    if previous is not None:
        _write(device / "driver" / "unbind", bdf, f"unbind pci:{bdf} from {previous}")
    _write(sysfs / "drivers_probe", bdf, f"probe pci:{bdf}")
    if current_driver(bdf, sysfs) != "vfio-pci":
        raise NotFoundError(f"pci:{bdf} did not bind to vfio-pci: is the vfio-pci module loaded?")
    return previous


def release(bdf: str, previous: str | None, sysfs: Path = SYSFS_PCI) -> None:
    """Undo :func:`bind`: unbind from vfio-pci, clear the override, reprobe the old driver.

    A function that was on vfio-pci before :func:`bind` stays there.
    """
    if previous == "vfio-pci":
        return
    device = sysfs / "devices" / bdf
    if current_driver(bdf, sysfs) == "vfio-pci":
        _write(device / "driver" / "unbind", bdf, f"unbind pci:{bdf} from vfio-pci")
    _write(device / "driver_override", "\n", f"clear driver_override of pci:{bdf}")
    if previous is not None:
        _write(sysfs / "drivers_probe", bdf, f"probe pci:{bdf}")


@dataclass
class OpenedDevice:
    """A function opened through VFIO with its own container, and how to put it back."""

    bdf: str
    container: VfioContainer
    group: VfioGroup
    device: VfioDevice
    previous_driver: str | None

    #: False when another process bound the function and gives it back (the daemon, for
    #: a driver host it passed the descriptors to).
    owns_binding: bool = True

    def handles(self) -> list[int]:
        """New descriptors for the container, group and device, in that order.

        What the daemon passes to a driver host (``SCM_RIGHTS``), which rebuilds the
        device with :func:`adopt_device`. The receiver can do everything VFIO allows on
        them without privileges: the ioctls check the descriptor, not the caller.
        """
        return [os.dup(f._fd()) for f in (self.container, self.group, self.device)]

    def close(self, restore: bool = True) -> None:
        self.device.close()
        self.container.unmap_all()  # while the group still gives the container its IOMMU
        self.group.close()
        self.container.close()
        if restore and self.owns_binding:
            release(self.bdf, self.previous_driver)


def open_device(bdf: str, sysfs: Path = SYSFS_PCI) -> OpenedDevice:
    """Bind `bdf` to vfio-pci, attach its group to a new type1v2 container, open it."""
    previous = bind(bdf, sysfs)
    group = VfioGroup.open(iommu_group(bdf, sysfs))
    container = VfioContainer()
    try:
        group.set_container(container)
        container.set_iommu()
        device = group.open_device(bdf)
    except BaseException:
        group.close()
        container.close()
        release(bdf, previous, sysfs)
        raise
    return OpenedDevice(bdf, container, group, device, previous)


def adopt_device(bdf: str, handles: list[int]) -> OpenedDevice:
    """The function again from :meth:`OpenedDevice.handles` another process passed.

    The returned device does not own the vfio-pci binding: closing it closes the
    descriptors, and whoever bound the function gives it back to its driver.

    Raises:
        BadArgument: not three descriptors, or the group is not attached to the container.
    """
    if len(handles) != 3:
        raise BadArgument(
            f"pci:{bdf}: expected the container, group and device descriptors, got {len(handles)}"
        )
    container_fd, group_fd, device_fd = handles
    container = VfioContainer(fd=container_fd)
    group = VfioGroup(iommu_group(bdf), group_fd)
    if GroupFlag.CONTAINER_SET not in group.status():
        raise BadArgument(f"pci:{bdf}: the IOMMU group passed is not attached to a container")
    group.container = container
    opened = OpenedDevice(bdf, container, group, VfioDevice(bdf, device_fd, group), None)
    opened.owns_binding = False
    return opened
