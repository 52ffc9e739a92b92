"""Device memory access: fixed-width, aligned reads and writes, never byte slices.

A device decodes every MMIO access by its width: a 32-bit register read as four bytes
is four different reads (QEMU's edu answers a 1-byte read of its ID register with
all-ones). :class:`Registers` wraps a BAR mapping with the small accessor set drivers
use: read32 / write32 / read64 / write64 / set_bits / clear_bits / wait_set /
wait_clear. Each access is a single load or store of its width through a
``memoryview`` cast.

A read of all-ones is the first sign of a surprise removal (PCIe returns all-ones for a
function that is gone). When one comes back, the accessor asks `is_present` (usually
"does config space still show a vendor ID?"); if the device is gone it latches that and
raises :class:`~hwkit.errors.DeviceGoneError` on this and every later access.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import numpy as np

from hwkit.errors import BadArgument, ClosedResourceError, DeviceGoneError, HwkitError

ALL_ONES_32 = 0xFFFF_FFFF
ALL_ONES_64 = 0xFFFF_FFFF_FFFF_FFFF


class RegisterTimeout(HwkitError):
    """A wait on a register bit ran out of time; the message names the register and value."""


class Registers:
    """Aligned, fixed-width access to one device memory region.

    Args:
        buffer: the region's mapping (an ``mmap`` of a BAR), writable.
        where: the device address for messages, e.g. ``pci:0000:00:03.0 BAR0``.
        names: register names by offset, for messages (``{0x1c: "CSTS"}``).
        is_present: called after an all-ones read; False means the device is gone.

    Threading: no locks; one work loop owns a device's registers.
    """

    def __init__(
        self,
        buffer: object,
        where: str,
        names: Mapping[int, str] | None = None,
        is_present: Callable[[], bool] | None = None,
    ) -> None:
        view = memoryview(buffer)  # type: ignore[arg-type]
        self.size = view.nbytes
        self._u32 = view.cast("B").cast("I")
        self._u64 = view.cast("B").cast("Q") if self.size % 8 == 0 else None
        self.where = where
        self.names = dict(names or {})
        self.is_present = is_present
        self._last32 = self.size - 4
        self.gone = False
        self.closed = False
        self._blocked = False  # closed or gone: checked on every access, so one flag

    def name(self, offset: int) -> str:
        label = self.names.get(offset)
        return f"{label} (0x{offset:x})" if label else f"register 0x{offset:x}"

    def _refuse(self, offset: int, width: int) -> None:
        """Raise the error an access that failed the fast checks deserves."""
        if self.closed:
            raise ClosedResourceError(f"{self.where}: registers used after close")
        if self.gone:
            raise DeviceGoneError(f"{self.where} is gone (an earlier read returned all-ones)")
        raise BadArgument(
            f"{self.where}: {width * 8}-bit access at 0x{offset:x} is "
            f"{'unaligned' if offset % width else 'outside the region'} (size 0x{self.size:x})"
        )

    def _all_ones(self, offset: int) -> None:
        if self.is_present is not None and not self.is_present():
            self.gone = self._blocked = True
            raise DeviceGoneError(
                f"{self.where}: {self.name(offset)} read all-ones and the device no longer "
                "answers config reads: it was removed"
            )

    # The accessors are the hot path: one combined test, then a single load or store.

    def read32(self, offset: int) -> int:
        if offset & 3 or not 0 <= offset <= self._last32 or self._blocked:
            self._refuse(offset, 4)
        value = self._u32[offset >> 2]
        if value == ALL_ONES_32:
            self._all_ones(offset)
        return value

    def write32(self, offset: int, value: int) -> None:
        if offset & 3 or not 0 <= offset <= self._last32 or self._blocked:
            self._refuse(offset, 4)
        self._u32[offset >> 2] = value

    def read64(self, offset: int) -> int:
        if self._u64 is None:
            raise BadArgument(f"{self.where}: region size 0x{self.size:x} allows no 64-bit access")
        if offset & 7 or not 0 <= offset <= self.size - 8 or self._blocked:
            self._refuse(offset, 8)
        value = self._u64[offset >> 3]
        if value == ALL_ONES_64:
            self._all_ones(offset)
        return value

    def write64(self, offset: int, value: int) -> None:
        if self._u64 is None:
            raise BadArgument(f"{self.where}: region size 0x{self.size:x} allows no 64-bit access")
        if offset & 7 or not 0 <= offset <= self.size - 8 or self._blocked:
            self._refuse(offset, 8)
        self._u64[offset >> 3] = value

    def set_bits(self, offset: int, mask: int) -> None:
        self.write32(offset, self.read32(offset) | mask)

    def clear_bits(self, offset: int, mask: int) -> None:
        self.write32(offset, self.read32(offset) & ~mask & ALL_ONES_32)

    def _wait(self, offset: int, mask: int, want_set: bool, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        pause = 1e-5
        while True:
            value = self.read32(offset)
            if ((value & mask) == mask) if want_set else not (value & mask):
                return value
            if time.monotonic() > deadline:
                state = "set" if want_set else "clear"
                raise RegisterTimeout(
                    f"{self.where}: {self.name(offset)} bits 0x{mask:x} not {state} after "
                    f"{timeout:g} s (last value 0x{value:08x})"
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.01)

    def wait_set(self, offset: int, mask: int, timeout: float) -> int:
        """Poll until every bit of `mask` is set; return the value read."""
        return self._wait(offset, mask, True, timeout)

    def wait_clear(self, offset: int, mask: int, timeout: float) -> int:
        """Poll until every bit of `mask` is clear; return the value read."""
        return self._wait(offset, mask, False, timeout)

    def array(self, dtype: str = "<u4") -> np.ndarray:
        """A NumPy view of the region, for bulk access to memory-like areas (not registers)."""
        return np.frombuffer(self._u32, dtype=dtype)

    def close(self) -> None:
        self.closed = self._blocked = True
        self._u32.release()
        if self._u64 is not None:
            self._u64.release()
