"""Scripts' side of the NVMe user client: namespaces and blocks as NumPy arrays.

:class:`NVMeClient` opens the driver's user client through hwkit-daemon and maps the
connection's shared DMA buffer; :meth:`NVMeClient.read` returns a view of that buffer
(the device wrote the blocks there: no copy on the way), :meth:`NVMeClient.write`
sends what is in it (copying `data` in first when given).

    with NVMeClient.open() as disk:
        ns = disk.namespace_info(1)              # block size, count, model, serial
        blocks = disk.read(1, lba=0, count=8)    # a uint8 view of the shared buffer
        disk.write(1, lba=100, data=blocks)

Threading: one thread at a time per client (it is one connection).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwkit import client
from hwkit.errors import BadArgument, NotFoundError

from .namespace import block_bytes
from .userclient import IDENTITY


@dataclass(frozen=True)
class NamespaceInfo:
    """What namespace_info says of one namespace and its controller."""

    nsid: int
    block_size: int
    blocks: int
    capacity: int
    model: str
    serial: str
    firmware: str


class NVMeClient:
    """One connection to an NVMeDriver's user client, with its shared buffer mapped."""

    def __init__(
        self, conn: client.Connection, daemon: client.DaemonConnection | None = None
    ) -> None:
        self._daemon = daemon
        self.connection = conn
        #: The shared DMA buffer (uint8): read() returns views of it.
        self.buffer = conn.map_memory(0)
        self._block_sizes: dict[int, int] = {}

    @classmethod
    def open(cls, serial: str | None = None, socket: str | None = None) -> NVMeClient:
        """Connect to the daemon and open the first running NVMeDriver (or the one whose
        controller has `serial`).

        Raises:
            NotFoundError: no such driver is running.
            PermissionDenied: the personality does not let this user in (root and group
                ``disk`` by default).
            ClosedResourceError: no daemon.
        """
        daemon = client.connect(socket)
        try:
            found = [s for s in daemon.find({"IOProviderClass": "NVMeDriver"})
                     if serial is None or s.properties.get("HWNVMeSerial") == serial]  # fmt: skip
            if not found:
                which = f"with serial {serial}" if serial else "at all"
                raise NotFoundError(f"no NVMeDriver {which} is running (see hwkit ioreg -c "
                                    "NVMeDriver)")  # fmt: skip
            return cls(daemon.open(found[0]), daemon)
        except BaseException:
            daemon.close()
            raise

    def __enter__(self) -> NVMeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (the driver frees the buffer; views of it stay readable)."""
        self.connection.close()
        if self._daemon is not None:
            self._daemon.close()

    def namespaces(self) -> list[int]:
        """The active namespace IDs."""
        result = self.connection.call("namespaces")
        return np.frombuffer(result.struct, dtype="<u4").tolist()

    def namespace_info(self, nsid: int = 1) -> NamespaceInfo:
        """Block size and count of `nsid`, and the controller's model, serial, firmware.

        Raises:
            BadArgument: no active namespace `nsid`.
        """
        result = self.connection.call("namespace_info", nsid)
        model, serial, firmware = (s.decode("ascii", "replace").rstrip()
                                   for s in IDENTITY.unpack(result.struct))  # fmt: skip
        return NamespaceInfo(nsid, *result.scalars, model, serial, firmware)

    def read(self, nsid: int, lba: int, count: int, offset: int = 0) -> np.ndarray:
        """Read `count` blocks at `lba` into the shared buffer at `offset`; return that
        part of the buffer (a view: the next read there replaces it; copy to keep it).

        Raises:
            BadArgument: outside the namespace or the buffer, or a misaligned offset.
            NVMeStatusError: as text, if the device refused (a HwkitError here).
        """
        block_size = self._block_size(nsid)
        self.connection.call("read", nsid, lba, count, offset)
        return self.buffer[offset : offset + count * block_size]

    def write(
        self, nsid: int, lba: int, data: np.ndarray | bytes | None = None,
        count: int | None = None, offset: int = 0,
    ) -> None:  # fmt: skip
        """Write blocks at `lba` from the shared buffer at `offset`: `data` is copied
        there first when given (else `count` blocks already there are written). Data
        that is a view of the shared buffer (what read returned) is written from where
        it is, without a copy.

        Raises:
            BadArgument: neither or both of data and count; data not whole blocks;
                outside the namespace or the buffer.
        """
        block_size = self._block_size(nsid)
        if (data is None) == (count is None):
            raise BadArgument("write: give either data or count")
        if data is not None:
            raw = block_bytes(data, block_size, "write")
            count = raw.size // block_size
            if np.shares_memory(raw, self.buffer):
                offset = raw.ctypes.data - self.buffer.ctypes.data
            else:
                if offset + raw.size > self.buffer.size:
                    raise BadArgument(f"write of {raw.size} bytes at buffer offset {offset}: "
                                      f"the shared buffer has {self.buffer.size}")  # fmt: skip
                self.buffer[offset : offset + raw.size] = raw
        assert count is not None
        self.connection.call("write", nsid, lba, count, offset)

    def flush(self, nsid: int = 1) -> None:
        """Commit the controller's volatile write cache for `nsid`."""
        self.connection.call("flush", nsid)

    def _block_size(self, nsid: int) -> int:
        if nsid not in self._block_sizes:
            self._block_sizes[nsid] = self.namespace_info(nsid).block_size
        return self._block_sizes[nsid]
