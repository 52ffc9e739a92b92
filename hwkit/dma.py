"""Memory for DMA: buffers, bus (IOVA) addresses, mapping through the IOMMU, segments.

I/O Kit's model, on VFIO type1 (iokit-reference.md §6):

- :class:`DMABuffer` is an ``IOBufferMemoryDescriptor``: page-aligned memory (a memfd,
  so it can also be handed to a user client and mapped there), optionally in huge
  pages, with NumPy views.
- :class:`IOVAAllocator` hands out bus addresses from the IOMMU's usable ranges
  (``VFIO_IOMMU_GET_INFO``) below the device's DMA address width: the address the
  device sees is contiguous even where RAM is not.
- :class:`DMAMapper` is ``prepare()`` / ``complete()``: it maps a buffer through the
  container (``VFIO_IOMMU_MAP_DMA``, which pins the pages) and counts; every prepare
  must be balanced by a complete, and :meth:`DMAMapper.close` unmaps whatever is left,
  so no mapping outlives its driver.
- :class:`DMACommand` is ``IODMACommand``: it cuts a prepared range into segments that
  respect a maximum segment size and boundary, and builds NVMe PRP lists.

Threading: none of these lock; a driver uses them from its work loop.
"""

from __future__ import annotations

import bisect
import ctypes
import mmap
import os
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntFlag
from typing import Protocol

import numpy as np

from hwkit.errors import BadArgument, ClosedResourceError, HwkitError

PAGE_SIZE = mmap.PAGESIZE
HUGE_PAGE_SIZE = 2 << 20


class Direction(IntFlag):
    """Which way data moves, from memory's point of view (kIODirectionIn = device to memory)."""

    IN = 1  # the device writes the memory
    OUT = 2  # the device reads the memory
    BOTH = 3


class IOVASpaceExhausted(HwkitError):
    """No free bus-address range is large enough below the device's address limit."""


def round_up(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


class DMABuffer:
    """Page-aligned memory a device can reach once prepared (memfd-backed).

    Args:
        size: bytes wanted; rounded up to the page (or huge page) size.
        name: shown in /proc/<pid>/maps and in errors.
        hugepages: back it with 2 MiB pages (needs free pages in
            /proc/sys/vm/nr_hugepages).

    Raises:
        HwkitError: the memory could not be had (the message says which limit).
    """

    def __init__(self, size: int, name: str = "hwkit-dma", hugepages: bool = False) -> None:
        if size <= 0:
            raise BadArgument(f"DMA buffer {name!r}: size must be positive, not {size}")
        page = HUGE_PAGE_SIZE if hugepages else PAGE_SIZE
        self.size = round_up(size, page)
        self.name = name
        flags = os.MFD_CLOEXEC | (os.MFD_HUGETLB if hugepages else 0)
        try:
            self.fd: int | None = os.memfd_create(name, flags)
            os.ftruncate(self.fd, self.size)
            self.mmap = mmap.mmap(self.fd, self.size, mmap.MAP_SHARED)
        except OSError as exc:
            hint = " (are huge pages reserved? /proc/sys/vm/nr_hugepages)" if hugepages else ""
            raise HwkitError(
                f"cannot allocate DMA buffer {name!r} of {self.size} bytes: {exc}{hint}"
            ) from exc
        anchor = ctypes.c_char.from_buffer(self.mmap)
        self.address = ctypes.addressof(anchor)  # valid while the mapping is open
        del anchor  # an export would keep mmap.close() from working

    def array(
        self, dtype: str | np.dtype = np.uint8, offset: int = 0, count: int = -1
    ) -> np.ndarray:
        """A NumPy view of the buffer (no copy)."""
        return np.frombuffer(self.mmap, dtype=dtype, offset=offset, count=count)

    def __len__(self) -> int:
        return self.size

    def close(self) -> None:
        if self.fd is not None:
            close_memfd(self.mmap, self.fd, f"DMA buffer {self.name!r}")
            self.fd = None


def close_memfd(mapping: mmap.mmap, fd: int, what: str) -> None:
    """Unmap and close a memfd-backed buffer; refused while NumPy views still use it.

    Raises:
        BadArgument: a view of the mapping is alive (nothing was closed).
    """
    try:
        mapping.close()
    except BufferError as exc:
        raise BadArgument(f"{what}: close it after dropping its NumPy views") from exc
    os.close(fd)


class IOVAAllocator:
    """First-fit allocator of bus addresses within the IOMMU's usable ranges.

    Args:
        ranges: usable (start, end) pairs, end inclusive, as VFIO reports them.
        page_size: the IOMMU's smallest page; every allocation is a multiple of it.
        reserve_zero: keep IOVA 0 unused, so a zero address is always a bug.
    """

    def __init__(
        self,
        ranges: Iterable[tuple[int, int]],
        page_size: int = PAGE_SIZE,
        reserve_zero: bool = True,
    ) -> None:
        self.page_size = page_size
        self._free: list[tuple[int, int]] = []  # (start, end exclusive), sorted, disjoint
        for start, end in sorted(ranges):
            start = round_up(max(start, page_size if reserve_zero else 0), page_size)
            stop = (end + 1) // page_size * page_size
            if stop > start:
                self._free.append((start, stop))
        self._used: dict[int, int] = {}

    def allocate(self, size: int, address_bits: int = 64, alignment: int | None = None) -> int:
        """Reserve `size` bytes (rounded to pages) ending below 2**address_bits."""
        size = round_up(size, self.page_size)
        alignment = max(alignment or self.page_size, self.page_size)
        limit = 1 << address_bits
        for i, (start, stop) in enumerate(self._free):
            base = round_up(start, alignment)
            if base + size <= min(stop, limit):
                pieces = [(start, base), (base + size, stop)]
                self._free[i : i + 1] = [p for p in pieces if p[1] > p[0]]
                self._used[base] = size
                return base
        raise IOVASpaceExhausted(
            f"no free IOVA range of {size} bytes below 2**{address_bits} "
            f"({len(self._used)} mappings hold {sum(self._used.values())} bytes); "
            "complete() mappings you no longer need, or use fewer, larger buffers"
        )

    def free(self, iova: int) -> None:
        size = self._used.pop(iova, None)
        if size is None:
            raise BadArgument(f"IOVA 0x{iova:x} was not allocated here")
        i = bisect.bisect(self._free, (iova, iova + size))
        self._free.insert(i, (iova, iova + size))
        merged: list[tuple[int, int]] = []
        for start, stop in self._free:
            if merged and merged[-1][1] == start:
                merged[-1] = (merged[-1][0], stop)
            else:
                merged.append((start, stop))
        self._free = merged

    def statistics(self) -> dict[str, int]:
        return {
            "allocations": len(self._used),
            "bytes_allocated": sum(self._used.values()),
            "bytes_free": sum(stop - start for start, stop in self._free),
        }


class Container(Protocol):
    """What DMAMapper needs of a VFIO container (hwkit.pci.vfio.VfioContainer)."""

    def map_dma(self, vaddr: int, iova: int, size: int, flags: int = ...) -> None: ...
    def unmap_dma(self, iova: int, size: int) -> None: ...


@dataclass
class Mapping:
    """A prepared buffer: its bus address and how many prepares hold it."""

    buffer: DMABuffer
    iova: int
    size: int
    count: int = 1


class DMAMapper:
    """prepare()/complete() through one container, with IOVAs from one allocator.

    Args:
        container: the VFIO container the device's group is attached to.
        allocator: the container's IOVA allocator.
        address_bits: the device's DMA address width (edu: 28; NVMe: 64).
    """

    def __init__(
        self, container: Container, allocator: IOVAAllocator, address_bits: int = 64
    ) -> None:
        self.container = container
        self.allocator = allocator
        self.address_bits = address_bits
        self._maps: dict[int, Mapping] = {}  # id(buffer) -> mapping
        self.closed = False

    def prepare(self, buffer: DMABuffer, direction: Direction = Direction.BOTH) -> Mapping:
        """Map `buffer` for the device (or count one more prepare); return its mapping."""
        if self.closed:
            raise ClosedResourceError("DMA mapper used after close")
        if (mapping := self._maps.get(id(buffer))) is not None:
            mapping.count += 1
            return mapping
        iova = self.allocator.allocate(buffer.size, self.address_bits)
        # The device reading memory needs READ permission at the IOMMU, writing WRITE.
        flags = (1 if direction & Direction.OUT else 0) | (2 if direction & Direction.IN else 0)
        try:
            self.container.map_dma(buffer.address, iova, buffer.size, flags)
        except BaseException:
            self.allocator.free(iova)
            raise
        mapping = self._maps[id(buffer)] = Mapping(buffer, iova, buffer.size)
        return mapping

    def complete(self, buffer: DMABuffer) -> None:
        """Balance one prepare; the last one unmaps the buffer and frees its IOVA."""
        mapping = self._maps.get(id(buffer))
        if mapping is None:
            raise BadArgument(f"complete() of DMA buffer {buffer.name!r} without a prepare()")
        mapping.count -= 1
        if mapping.count == 0:
            del self._maps[id(buffer)]
            self.container.unmap_dma(mapping.iova, mapping.size)
            self.allocator.free(mapping.iova)

    def iova(self, buffer: DMABuffer, offset: int = 0) -> int:
        mapping = self._maps.get(id(buffer))
        if mapping is None:
            raise BadArgument(f"DMA buffer {buffer.name!r} is not prepared")
        return mapping.iova + offset

    def close(self) -> None:
        """Unmap everything still prepared: no mapping outlives its driver."""
        for mapping in list(self._maps.values()):
            mapping.count = 1
            self.complete(mapping.buffer)
        self.closed = True


@dataclass(frozen=True)
class DMACommand:
    """How a device wants its scatter list: segment size, boundaries, alignment.

    Args:
        max_segment_size: the most bytes one segment may cover.
        boundary: no segment may cross a multiple of this (0: none), e.g. a page.
        alignment: every segment address must be a multiple of this.
    """

    max_segment_size: int = 1 << 32
    boundary: int = 0
    alignment: int = 1

    def segments(self, mapping: Mapping, offset: int, length: int) -> list[tuple[int, int]]:
        """(bus address, length) pairs covering `length` bytes at `offset` of a mapping."""
        if offset < 0 or length <= 0 or offset + length > mapping.size:
            raise BadArgument(
                f"DMA range {offset}+{length} is outside the {mapping.size}-byte mapping"
            )
        address = mapping.iova + offset
        if address % self.alignment:
            raise BadArgument(f"DMA address 0x{address:x} is not {self.alignment}-byte aligned")
        out = []
        end = address + length
        while address < end:
            step = min(end - address, self.max_segment_size)
            if self.boundary:
                step = min(step, self.boundary - address % self.boundary)
            out.append((address, step))
            address += step
        return out


def nvme_prps(
    mapping: Mapping,
    offset: int,
    length: int,
    list_page: np.ndarray,
    list_iova: int,
    page_size: int = 4096,
    where: str = "DMA",
) -> tuple[int, int]:
    """PRP1 and PRP2 for a transfer (NVMe 1.4 §4.3), filling `list_page` when needed.

    PRP1 is the first byte's address (it may have a page offset, but must be dword
    aligned); the other entries are page-aligned. A transfer within two pages puts the
    second page in PRP2; a longer one puts the page addresses in a PRP list and PRP2
    points at it. `list_page` is a uint64 view of DMA memory at bus address `list_iova`
    with room for every entry (chaining of several list pages is not needed within one
    list page: 512 entries = 2 MiB). A mapping is one range of bus addresses, so the list
    is an arithmetic progression, written by one NumPy operation however long the
    transfer (a Python loop over pages cost ~1 ms per 128 KiB command under the lab's
    emulation). `where` starts the error messages (a queue's name, say).

    Raises:
        BadArgument: the range is outside the mapping, PRP1 is not dword aligned, or the
            transfer needs more entries than `list_page` holds.
    """
    address = mapping.iova + offset
    first = page_size - address % page_size  # bytes in the first page
    if offset < 0 or length <= 0 or offset + length > mapping.size or address % 4:
        raise BadArgument(
            f"{where}: a transfer of {length} bytes at offset {offset} is outside the "
            f"{mapping.size}-byte mapping or not dword aligned (NVMe §4.3)"
        )
    if length <= first + page_size:  # one or two pages: no list
        return address, (address + first if length > first else 0)
    entries = -(-(length - first) // page_size)
    if entries > len(list_page):
        raise BadArgument(
            f"{where}: {length} bytes need {entries} PRP entries, a list page holds "
            f"{len(list_page)}: split it into smaller transfers"
        )
    start = address + first
    list_page[:entries] = np.arange(start, start + entries * page_size, page_size, np.uint64)
    return address, list_iova
