"""The MMIO accessor's rules, on ordinary memory (the lab runs them on real BARs)."""

import mmap

import pytest

from hwkit.errors import BadArgument, ClosedResourceError, DeviceGoneError
from hwkit.mmio import Registers, RegisterTimeout


@pytest.fixture
def memory():
    m = mmap.mmap(-1, 4096)
    yield m


def test_fixed_width_access_round_trips(memory) -> None:
    regs = Registers(memory, "test BAR0")
    regs.write32(0x10, 0xDEADBEEF)
    regs.write64(0x18, 0x0123456789ABCDEF)
    assert regs.read32(0x10) == 0xDEADBEEF
    assert memory[0x10:0x14] == b"\xef\xbe\xad\xde"
    assert regs.read64(0x18) == 0x0123456789ABCDEF
    regs.set_bits(0x10, 0x1)
    regs.clear_bits(0x10, 0xF0000000)
    assert regs.read32(0x10) == 0x0EADBEEF


@pytest.mark.parametrize(("offset", "why"), [(2, "unaligned"), (4096, "outside"), (-4, "outside")])
def test_bad_offsets_are_refused_with_the_reason(memory, offset: int, why: str) -> None:
    regs = Registers(memory, "test BAR0")
    with pytest.raises(BadArgument, match=f"test BAR0: 32-bit access at .* is {why}"):
        regs.read32(offset)
    with pytest.raises(BadArgument, match=why):
        regs.write32(offset, 1)


def test_64_bit_access_needs_8_byte_alignment(memory) -> None:
    regs = Registers(memory, "test BAR0")
    with pytest.raises(BadArgument, match="64-bit access at 0x4 is unaligned"):
        regs.read64(4)


def test_all_ones_from_a_present_device_is_just_a_value(memory) -> None:
    regs = Registers(memory, "dev", is_present=lambda: True)
    regs.write32(0, 0xFFFFFFFF)
    assert regs.read32(0) == 0xFFFFFFFF


def test_all_ones_from_a_gone_device_latches_removal(memory) -> None:
    regs = Registers(
        memory, "pci:0000:00:04.0 BAR0", names={0x8: "STATUS"}, is_present=lambda: False
    )
    regs.write32(8, 0xFFFFFFFF)
    with pytest.raises(DeviceGoneError, match=r"STATUS \(0x8\) read all-ones .* removed"):
        regs.read32(8)
    with pytest.raises(DeviceGoneError, match="is gone"):  # every later access fails too
        regs.write32(0, 1)
    with pytest.raises(DeviceGoneError, match="is gone"):
        regs.read32(0)


def test_wait_names_the_register_and_last_value(memory) -> None:
    regs = Registers(memory, "nvme BAR0", names={0x1C: "CSTS"})
    regs.write32(0x1C, 0x2)
    assert regs.wait_set(0x1C, 0x2, timeout=0.1) == 0x2
    with pytest.raises(
        RegisterTimeout,
        match=r"CSTS \(0x1c\) bits 0x1 not set after 0.05 s \(last value 0x00000002\)",
    ):
        regs.wait_set(0x1C, 0x1, timeout=0.05)
    with pytest.raises(RegisterTimeout, match="not clear"):
        regs.wait_clear(0x1C, 0x2, timeout=0.05)


def test_closed_registers_refuse_use(memory) -> None:
    regs = Registers(memory, "dev")
    regs.close()
    with pytest.raises(ClosedResourceError, match="after close"):
        regs.read32(0)
    memory.close()  # no view is left holding the mapping
