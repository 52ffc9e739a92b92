"""DMA bookkeeping: IOVA allocation, balanced prepare/complete, segments and PRP lists.

The VFIO side (map_dma pinning real pages) is exercised in the lab; here the container is
a recorder, since what is checked is hwkit's own accounting.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit.dma import (
    DMABuffer,
    DMACommand,
    DMAMapper,
    IOVAAllocator,
    IOVASpaceExhausted,
    Mapping,
    nvme_prps,
)
from hwkit.errors import BadArgument

PAGE = 4096


def test_allocations_are_page_multiples_and_skip_zero() -> None:
    alloc = IOVAAllocator([(0, (1 << 32) - 1)])
    first = alloc.allocate(1)
    second = alloc.allocate(PAGE + 1)
    assert first == PAGE and second == 2 * PAGE
    assert alloc.allocate(PAGE) == 4 * PAGE


def test_address_bits_limit_is_honoured() -> None:
    alloc = IOVAAllocator([(0, (1 << 40) - 1)])
    with pytest.raises(IOVASpaceExhausted, match=r"below 2\*\*12"):
        alloc.allocate(PAGE, address_bits=12)
    assert alloc.allocate(PAGE, address_bits=28) < 1 << 28


def test_reserved_holes_between_ranges_are_never_used() -> None:
    # Intel IOMMU reports the MSI window 0xfee00000-0xfeefffff as a hole.
    alloc = IOVAAllocator([(0, 0xFEDFFFFF), (0xFEF00000, (1 << 39) - 1)])
    big = alloc.allocate(0xFEDFF000)  # fills the first range
    nxt = alloc.allocate(PAGE)
    assert big == PAGE and nxt == 0xFEF00000


def test_alignment() -> None:
    alloc = IOVAAllocator([(0, (1 << 32) - 1)])
    alloc.allocate(PAGE)
    assert alloc.allocate(PAGE, alignment=1 << 21) % (1 << 21) == 0


def test_free_merges_and_double_free_is_refused() -> None:
    alloc = IOVAAllocator([(0, 16 * PAGE - 1)])
    a, b, c = alloc.allocate(PAGE), alloc.allocate(PAGE), alloc.allocate(PAGE)
    for iova in (b, a, c):
        alloc.free(iova)
    assert alloc.statistics() == {"allocations": 0, "bytes_allocated": 0, "bytes_free": 15 * PAGE}
    assert alloc.allocate(15 * PAGE) == PAGE
    with pytest.raises(BadArgument, match="not allocated"):
        alloc.free(a + PAGE * 100)


def test_exhaustion_says_what_to_do() -> None:
    alloc = IOVAAllocator([(0, 4 * PAGE - 1)])
    alloc.allocate(3 * PAGE)
    with pytest.raises(IOVASpaceExhausted, match=r"complete\(\) mappings you no longer need"):
        alloc.allocate(PAGE)


@settings(max_examples=200)
@given(st.lists(st.tuples(st.booleans(), st.integers(1, 8 * PAGE)), max_size=60))
def test_random_alloc_free_never_overlaps(ops: list[tuple[bool, int]]) -> None:
    alloc = IOVAAllocator([(0, 64 * PAGE - 1), (80 * PAGE, 200 * PAGE - 1)])
    held: dict[int, int] = {}
    for do_free, size in ops:
        if do_free and held:
            iova = sorted(held)[size % len(held)]
            alloc.free(iova)
            del held[iova]
            continue
        try:
            iova = alloc.allocate(size)
        except IOVASpaceExhausted:
            continue
        length = -(-size // PAGE) * PAGE
        assert (iova >= PAGE and iova + length <= 64 * PAGE) or (
            iova >= 80 * PAGE and iova + length <= 200 * PAGE
        )
        for other, other_len in held.items():
            assert iova + length <= other or other + other_len <= iova
        held[iova] = length
    free = alloc.statistics()["bytes_free"]
    assert free + sum(held.values()) == (63 + 120) * PAGE


class Recorder:
    def __init__(self) -> None:
        self.mapped: dict[int, tuple[int, int, int]] = {}

    def map_dma(self, vaddr: int, iova: int, size: int, flags: int = 3) -> None:
        self.mapped[iova] = (vaddr, size, flags)

    def unmap_dma(self, iova: int, size: int) -> None:
        assert self.mapped.pop(iova)[1] == size


def test_prepare_is_counted_and_complete_balances_it() -> None:
    container = Recorder()
    mapper = DMAMapper(container, IOVAAllocator([(0, (1 << 28) - 1)]), address_bits=28)
    buf = DMABuffer(10000)
    try:
        first = mapper.prepare(buf)
        again = mapper.prepare(buf)
        assert first is again and first.count == 2 and first.size == 3 * PAGE
        assert container.mapped[first.iova] == (buf.address, 3 * PAGE, 3)
        mapper.complete(buf)
        assert first.iova in container.mapped
        mapper.complete(buf)
        assert container.mapped == {}
        with pytest.raises(BadArgument, match="without a prepare"):
            mapper.complete(buf)
    finally:
        buf.close()


def test_direction_sets_iommu_permissions() -> None:
    from hwkit.dma import Direction

    container = Recorder()
    mapper = DMAMapper(container, IOVAAllocator([(0, (1 << 32) - 1)]))
    a, b = DMABuffer(1), DMABuffer(1)
    try:
        assert container.mapped == {}
        ma = mapper.prepare(a, Direction.OUT)  # device reads: READ only
        mb = mapper.prepare(b, Direction.IN)  # device writes: WRITE only
        assert container.mapped[ma.iova][2] == 1 and container.mapped[mb.iova][2] == 2
        mapper.close()
        assert container.mapped == {}
    finally:
        a.close()
        b.close()


def test_buffer_views_share_memory_and_close_needs_views_gone() -> None:
    buf = DMABuffer(PAGE)
    view = buf.array(np.uint32)
    view[:4] = [1, 2, 3, 4]
    assert bytes(buf.mmap[:8]) == b"\x01\0\0\0\x02\0\0\0"
    with pytest.raises(BadArgument, match="dropping its NumPy views"):
        buf.close()
    del view
    buf.close()


def test_segments_respect_size_and_boundary() -> None:
    mapping = Mapping(buffer=None, iova=0x10000, size=0x10000)  # type: ignore[arg-type]
    command = DMACommand(max_segment_size=0x1800, boundary=0x1000)
    assert command.segments(mapping, 0x800, 0x2000) == [
        (0x10800, 0x800),
        (0x11000, 0x1000),
        (0x12000, 0x800),
    ]
    assert DMACommand(max_segment_size=0x1800).segments(mapping, 0, 0x3000) == [
        (0x10000, 0x1800),
        (0x11800, 0x1800),
    ]
    with pytest.raises(BadArgument, match="outside"):
        command.segments(mapping, 0xF000, 0x2000)
    with pytest.raises(BadArgument, match="aligned"):
        DMACommand(alignment=4).segments(mapping, 2, 8)


def test_nvme_prps_one_two_and_many_pages() -> None:
    mapping = Mapping(buffer=None, iova=0x100000, size=0x100000)  # type: ignore[arg-type]
    page = np.zeros(512, dtype=np.uint64)
    # within one page: PRP2 unused
    assert nvme_prps(mapping, 0x200, 0x200, page, 0x9000) == (0x100200, 0)
    # two pages: PRP2 is the second page
    assert nvme_prps(mapping, 0x800, 0x1000, page, 0x9000) == (0x100800, 0x101000)
    # 16 KiB from a page boundary: PRP2 points at a list of the 3 following pages
    assert nvme_prps(mapping, 0, 0x4000, page, 0x9000) == (0x100000, 0x9000)
    assert list(page[:3]) == [0x101000, 0x102000, 0x103000]


def test_nvme_prps_too_long_for_one_list_page() -> None:
    mapping = Mapping(buffer=None, iova=0, size=1 << 30)  # type: ignore[arg-type]
    with pytest.raises(BadArgument, match="split it"):
        nvme_prps(mapping, 0, 4 << 20, np.zeros(512, dtype=np.uint64), 0x9000)
