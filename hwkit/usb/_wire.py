"""The framing every USB descriptor shares: the bLength/bDescriptorType header.

Private to hwkit.usb: the descriptor modules check each header here, so every
malformed input becomes a :class:`hwkit.errors.DescriptorError` naming its offset.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from hwkit.errors import DescriptorError


def check_header(data: bytes, offset: int, what: str, expected: int | None, size: int) -> int:
    """Check the two-byte header of the descriptor at ``offset``; return its bLength.

    Raises:
        DescriptorError: truncated header, bLength 0/1, bLength past the end of
            ``data``, a bDescriptorType other than ``expected``, or bLength below
            ``size`` (the fixed part of this descriptor type).
    """
    left = len(data) - offset
    if offset < 0 or left < 2:
        raise DescriptorError(
            f"{what} at offset {offset}: truncated, need a 2-byte header and {max(left, 0)} "
            "byte(s) are left",
            offset,
        )
    length, dtype = data[offset], data[offset + 1]
    if length < 2:
        raise DescriptorError(
            f"{what} at offset {offset}: bLength is {length}, a descriptor is at least 2 bytes",
            offset,
        )
    if length > left:
        raise DescriptorError(
            f"{what} at offset {offset}: bLength {length} runs past the end of the data "
            f"({left} byte(s) left)",
            offset,
        )
    if expected is not None and dtype != expected:
        raise DescriptorError(
            f"{what} at offset {offset}: bDescriptorType is 0x{dtype:02x}, expected "
            f"0x{expected:02x}",
            offset,
        )
    if length < size:
        raise DescriptorError(
            f"{what} at offset {offset}: bLength {length} is shorter than the {size} bytes "
            "of this descriptor type",
            offset,
        )
    return length


def unpack(cls: Any, fmt: str, data: bytes, offset: int, what: str, dtype: int | None) -> Any:
    """Check the header, then build ``cls`` from the fixed fields in ``fmt``."""
    check_header(data, offset, what, dtype, struct.calcsize(fmt))
    return cls(*struct.unpack_from(fmt, data, offset))


def iter_descriptors(
    data: bytes, offset: int = 0, end: int | None = None
) -> Iterator[tuple[int, int, int]]:
    """Yield ``(offset, bLength, bDescriptorType)`` for each descriptor in a stream.

    Raises:
        DescriptorError: a descriptor with bLength 0/1 or one running past ``end``.
    """
    end = len(data) if end is None else end
    view = bytes(data[:end])
    while offset < end:
        length = check_header(view, offset, "descriptor", None, 2)
        yield offset, length, view[offset + 1]
        offset += length


def total_end(what: str, desc: Any, data: bytes, offset: int) -> int:
    """Where a descriptor with a wTotalLength (configuration, BOS) ends in ``data``.

    Raises:
        DescriptorError: wTotalLength is shorter than the header or runs past the end.
    """
    total = desc.wTotalLength
    if total < desc.bLength or offset + total > len(data):
        raise DescriptorError(
            f"{what} at offset {offset}: wTotalLength {total} does not fit "
            f"(bLength {desc.bLength}, {len(data) - offset} byte(s) available)",
            offset,
        )
    return offset + total
