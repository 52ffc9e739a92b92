"""Shared memory between a driver and its clients: memfd buffers mapped as NumPy arrays.

I/O Kit's ``clientMemoryForType`` hands a client a mapping of a driver's buffer; hwkit
passes the buffer's memfd over the user-client socket and the client maps it. Nothing
is copied: what the driver writes, the client sees.

Read-only buffers (I/O Kit's ``kIOUserClientMemoryReadOnly``) are sealed with
``F_SEAL_FUTURE_WRITE`` (no new writable mapping can be made, the driver's own stays
writable) and the client is given an ``O_RDONLY`` descriptor, so it can neither map the
buffer writable nor resize it.

Threading: a buffer may be read and written from any thread; ordering between writer
and reader is the application's business (as with any shared memory).
"""

from __future__ import annotations

import fcntl
import mmap
import os
from typing import Any

import numpy as np

from hwkit.dma import close_memfd
from hwkit.errors import BadArgument, ClosedResourceError, HwkitError

PAGE_SIZE = mmap.PAGESIZE
F_ADD_SEALS = getattr(fcntl, "F_ADD_SEALS", 1033)
F_GET_SEALS = getattr(fcntl, "F_GET_SEALS", 1034)
F_SEAL_SHRINK = getattr(fcntl, "F_SEAL_SHRINK", 0x0002)
F_SEAL_GROW = getattr(fcntl, "F_SEAL_GROW", 0x0004)
F_SEAL_FUTURE_WRITE = 0x0010  # Linux 5.1; not in every Python's fcntl


def round_to_page(size: int) -> int:
    """Round up to a whole number of pages (mappings are page-granular)."""
    return -(-size // PAGE_SIZE) * PAGE_SIZE


class SharedMemory:
    """A memfd buffer a driver owns and shares with user clients.

    Args:
        size: bytes wanted; the buffer is a whole number of pages.
        name: shown in ``/proc/<pid>/maps``.
        read_only: clients get a read-only mapping (the file is sealed once
            :meth:`seal` runs, which :meth:`client_fd` does on first use).

    Raises:
        BadArgument: size is not positive.
        HwkitError: the memfd could not be made (the message says why).
    """

    def __init__(self, size: int, name: str = "hwkit-shared", read_only: bool = False) -> None:
        if size <= 0:
            raise BadArgument(f"shared memory {name!r}: size must be positive, not {size}")
        self.size = round_to_page(size)
        self.name = name
        self.read_only = read_only
        try:
            self.fd: int | None = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            os.ftruncate(self.fd, self.size)
            self.mmap = mmap.mmap(self.fd, self.size, mmap.MAP_SHARED)
        except OSError as exc:
            raise HwkitError(
                f"cannot make shared memory {name!r} of {self.size} bytes: {exc}"
            ) from exc
        self._sealed = False

    def array(self, dtype: Any = np.uint8, offset: int = 0, count: int = -1) -> np.ndarray:
        """A writable NumPy view (no copy) for the driver."""
        return np.frombuffer(self.mmap, dtype=dtype, offset=offset, count=count)

    def seal(self) -> None:
        """Forbid resizing, and for read-only buffers any new writable mapping.

        Raises:
            HwkitError: the kernel refused the seals (older than 5.1 for read-only).
        """
        if self._sealed or self.fd is None:
            return
        seals = F_SEAL_SHRINK | F_SEAL_GROW | (F_SEAL_FUTURE_WRITE if self.read_only else 0)
        try:
            fcntl.fcntl(self.fd, F_ADD_SEALS, seals)
        except OSError as exc:
            raise HwkitError(f"cannot seal shared memory {self.name!r}: {exc}") from exc
        self._sealed = True

    def client_fd(self) -> int:
        """A new descriptor to send to a client (the caller closes it after sending).

        Read-only buffers give an ``O_RDONLY`` descriptor of the sealed file.

        Raises:
            ClosedResourceError: the buffer was closed.
        """
        if self.fd is None:
            raise ClosedResourceError(f"shared memory {self.name!r} is closed")
        self.seal()
        if not self.read_only:
            return os.dup(self.fd)
        return os.open(f"/proc/self/fd/{self.fd}", os.O_RDONLY | os.O_CLOEXEC)

    def close(self) -> None:
        """Unmap and close (clients keep their own mappings)."""
        if self.fd is not None:
            close_memfd(self.mmap, self.fd, f"shared memory {self.name!r}")
            self.fd = None


def buffer_client_fd(buffer: Any) -> tuple[int, int, bool]:
    """(descriptor, size, read_only) to send for a SharedMemory or a DMABuffer.

    Raises:
        BadArgument: the object is neither, or is closed.
    """
    if isinstance(buffer, SharedMemory):
        return buffer.client_fd(), buffer.size, buffer.read_only
    fd, size = getattr(buffer, "fd", None), getattr(buffer, "size", None)
    if isinstance(fd, int) and isinstance(size, int):  # hwkit.dma.DMABuffer: writable
        return os.dup(fd), size, False
    raise BadArgument(
        f"client_memory_for_type returned {buffer!r}: return a SharedMemory, DMABuffer or DataQueue"
    )


def map_fd(fd: int, size: int, read_only: bool, dtype: Any = np.uint8) -> np.ndarray:
    """Map a received descriptor as a NumPy array (the client side); closes `fd`.

    Raises:
        HwkitError: the mapping failed (the size does not match the file, say).
    """
    try:
        prot = mmap.PROT_READ | (0 if read_only else mmap.PROT_WRITE)
        mapping = mmap.mmap(fd, size, mmap.MAP_SHARED, prot)
    except (OSError, ValueError) as exc:
        raise HwkitError(f"cannot map shared memory of {size} bytes: {exc}") from exc
    finally:
        os.close(fd)
    view = np.frombuffer(mapping, dtype=dtype)
    if read_only:
        view.flags.writeable = False
    return view
