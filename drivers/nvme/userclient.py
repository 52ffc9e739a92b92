"""The NVMe driver's user client: namespaces and raw block I/O for applications.

What an application may do through hwkit-daemon (``IOUserClientClass`` of
``NVMeDriver.plist``):

========  ==============  ===========================================================
selector  name            what
========  ==============  ===========================================================
0         namespaces      1 scalar out (how many), structure out: the active namespace
                          IDs as little-endian u32
1         namespace_info  1 scalar in (nsid); 3 out (block size, block count, capacity
                          in bytes); structure out: :data:`IDENTITY` (model, serial,
                          firmware of the controller, as Identify Controller spells them)
2         read            4 scalars in (nsid, lba, blocks, buffer offset): the device
                          DMAs the blocks straight into the shared buffer
3         write           4 scalars in (nsid, lba, blocks, buffer offset): the device
                          DMAs the blocks straight out of the shared buffer
4         flush           1 scalar in (nsid): the volatile write cache to media
5         buffer_size     1 scalar out: bytes of this connection's shared buffer
========  ==============  ===========================================================

Memory type 0 is this connection's DMA buffer (``NVMeClientBufferSize`` bytes, default
2 MiB, read-write), mapped for the device when the client first maps it: there is no
copy between the device and the application. Each connection has its own buffer, so
two applications never see each other's data.

Every call is checked before a command is built, and a refusal names what is wrong:
the namespace must be active, the blocks must lie inside it (``lba + blocks <= block
count``), the byte range ``offset .. offset + blocks * block size`` inside the shared
buffer, and the offset dword aligned (NVMe 1.4 §4.3: PRP entries have bits 1:0
cleared). A transfer longer than the controller's maximum (MDTS) is cut into several
commands, all in flight at once. The commands run on a queue pair of the user clients'
own, so they never wait behind the driver's synchronous API.

Who may open it: the personality lets in root and group ``disk`` only
(``HWUserClientUIDs`` / ``HWUserClientGroups``), the owner and group Debian gives
``/dev/nvme*n*``: raw block access bypasses every file system permission, so it gets
no wider access than the kernel's own block device node.

Threading: every method runs on the driver's work loop, where the queue's MSI-X
completions are reaped too.
"""

from __future__ import annotations

import asyncio
import struct
import time
from typing import TYPE_CHECKING

import numpy as np

from hwkit.dma import Direction, DMABuffer, Mapping
from hwkit.errors import BadArgument
from hwkit.userclient import VARIABLE, UserClient, external_method

from .errors import NVMeStatusError
from .spec import IOOpcode, Status

if TYPE_CHECKING:
    from .controller import IOQueue
    from .driver import NVMeDriver
    from .namespace import Namespace

#: namespace_info's structure: model (40), serial (20) and firmware (8) of the
#: controller, ASCII padded with spaces as Identify Controller has them.
IDENTITY = struct.Struct("<40s20s8s")
DEFAULT_BUFFER = 2 << 20
PRP_ALIGNMENT = 4  # NVMe 1.4 §4.3: a PRP entry's bits 1:0 are zero


class ClientBuffer:
    """One connection's DMA buffer and its mapping, freed once no command uses it."""

    def __init__(self, driver: NVMeDriver, size: int, owner: str) -> None:
        self.driver = driver
        self.buffer = DMABuffer(size, name=f"nvme {driver.controller.nub.bdf} client {owner}")
        self.size = self.buffer.size
        self.mapping: Mapping | None = driver.controller.mapper.prepare(self.buffer, Direction.BOTH)
        self.in_flight = 0
        self.closing = False
        driver.client_buffers.add(self)

    def close(self) -> None:
        """Unmap and free now, or after the last command in flight ends."""
        self.closing = True
        if self.in_flight == 0 and self.mapping is not None:
            self.mapping = None
            self.driver.client_buffers.discard(self)
            self.driver.controller.mapper.complete(self.buffer)
            self.buffer.close()


class NVMeUserClient(UserClient):
    """Namespaces, block read / write through a shared buffer, and flush (see module)."""

    provider: NVMeDriver

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.shared: ClientBuffer | None = None

    # --- information -------------------------------------------------------------------

    @external_method(0, scalar_out=1, struct_out=VARIABLE)
    def namespaces(self) -> tuple[int, bytes]:
        active = self.provider.controller.active_namespaces
        return len(active), np.asarray(active, dtype="<u4").tobytes()

    @external_method(1, scalar_in=1, scalar_out=3, struct_out=IDENTITY.size)
    def namespace_info(self, nsid: int) -> tuple[int, int, int, bytes]:
        ns = self.provider.namespace(nsid)
        ident = self.provider.controller.identity
        identity = IDENTITY.pack(ident.model.encode().ljust(40), ident.serial.encode().ljust(20),
                                 ident.firmware.encode().ljust(8))  # fmt: skip
        return ns.block_size, ns.blocks, ns.size, identity

    @external_method(5, scalar_out=1)
    def buffer_size(self) -> int:
        return self._buffer("buffer_size").size

    # --- I/O ---------------------------------------------------------------------------

    @external_method(2, scalar_in=4)
    async def read(self, nsid: int, lba: int, blocks: int, offset: int) -> None:
        await self._transfer(IOOpcode.READ, nsid, lba, blocks, offset)

    @external_method(3, scalar_in=4)
    async def write(self, nsid: int, lba: int, blocks: int, offset: int) -> None:
        await self._transfer(IOOpcode.WRITE, nsid, lba, blocks, offset)

    @external_method(4, scalar_in=1)
    async def flush(self, nsid: int) -> None:
        ns = self.provider.namespace(nsid)
        await self.provider.run_commands(ns, IOOpcode.FLUSH, [(0, 0, 0)], None)

    def _buffer(self, what: str) -> ClientBuffer:
        if self.shared is None or self.shared.mapping is None:
            raise BadArgument(f"{what} on {self.provider.controller.address}: map the shared "
                              "buffer first (map_memory(0))")  # fmt: skip
        return self.shared

    async def _transfer(self, opc: IOOpcode, nsid: int, lba: int, blocks: int, offset: int):
        ns = self.provider.namespace(nsid)
        name = opc.name
        if blocks < 1:
            raise BadArgument(f"{name} of {blocks} blocks on {ns.where}: at least 1 block")
        if lba + blocks > ns.blocks:
            raise BadArgument(f"{name} of {blocks} blocks at lba {lba} runs past the end "
                              f"of {ns.where} ({ns.blocks} blocks of {ns.block_size} "
                              "bytes)")  # fmt: skip
        shared = self._buffer(name)
        length = blocks * ns.block_size
        if offset % PRP_ALIGNMENT:
            raise BadArgument(f"{name} on {ns.where}: buffer offset {offset} is not a multiple "
                              "of 4 (NVMe PRP entries are dword aligned)")  # fmt: skip
        if offset + length > shared.size:
            raise BadArgument(f"{name} of {blocks} blocks ({length} bytes) at buffer offset "
                              f"{offset} runs past the end of the {shared.size}-byte shared "
                              f"buffer of {ns.where}")  # fmt: skip
        per = ns.blocks_per_command
        pieces = [(lba + done, min(per, blocks - done), offset + done * ns.block_size)
                  for done in range(0, blocks, per)]  # fmt: skip
        shared.in_flight += 1
        try:
            assert shared.mapping is not None
            await self.provider.run_commands(ns, opc, pieces, shared.mapping)
        finally:
            shared.in_flight -= 1
            if shared.closing:
                shared.close()

    # --- memory and lifetime -----------------------------------------------------------

    def client_memory_for_type(self, memory_type: int) -> object:
        if memory_type != 0:
            raise BadArgument(f"NVMe user client: no memory type {memory_type} "
                              "(0: the shared DMA buffer)")  # fmt: skip
        if self.shared is None:
            size = int(self.provider.get_property("NVMeClientBufferSize") or DEFAULT_BUFFER)
            self.shared = ClientBuffer(self.provider, size, f"pid {self.credentials.pid}")
        return self.shared.buffer

    def client_close(self) -> None:
        if self.shared is not None:
            self.shared.close()


async def run_commands(
    ns: Namespace,
    queue: IOQueue,
    slots: asyncio.Semaphore,
    opc: IOOpcode,
    pieces: list[tuple[int, int, int]],
    mapping: Mapping | None,
    timeout: float,
) -> None:
    """Submit one command per (lba, blocks, buffer offset) and wait for all of them.

    Runs on the work loop that reaps `queue` (MSI-X), or polls a polled queue itself
    between yields. `slots` bounds the commands in flight to what the queue holds.

    Raises:
        NVMeStatusError: a command failed (the first one, by lba).
        NVMeTimeout: not all completed within `timeout` (the controller was reset).
        ControllerResetError: a reset ended a command.
    """
    loop = asyncio.get_running_loop()
    results: list[asyncio.Future[object]] = []
    for lba, blocks, offset in pieces:
        if slots.locked():
            queue.ring()  # what is queued must start before waiting for a slot
        await slots.acquire()
        result: asyncio.Future[object] = loop.create_future()

        def done(outcome: object, result: asyncio.Future[object] = result) -> None:
            slots.release()
            if not result.done():
                result.set_result(outcome)

        try:
            if opc is IOOpcode.FLUSH:
                ns.submit_flush(done, queue, ring=False)
            else:
                assert mapping is not None
                ns.submit(opc, lba, blocks, (mapping, offset), done, queue, ring=False)
        except BaseException:
            slots.release()
            raise
        results.append(result)
    queue.ring()
    await _wait_all(ns, queue, results, f"{opc.name} on {ns.where}", timeout)
    for (lba, _, _), result in zip(pieces, results, strict=True):
        outcome = result.result()
        if isinstance(outcome, Exception):
            raise outcome
        if not outcome.ok:  # type: ignore[attr-defined]
            where = ns.where if opc is IOOpcode.FLUSH else f"{ns.where} lba {lba}"
            raise NVMeStatusError(opc.name, where, Status.decode(outcome.status))  # type: ignore[attr-defined]


async def _wait_all(
    ns: Namespace, queue: IOQueue, results: list[asyncio.Future[object]], what: str, timeout: float
) -> None:
    ctrl = ns.controller
    if queue.vector is None:  # polled: reap here, letting other clients in between
        deadline = time.monotonic() + timeout
        while not all(r.done() for r in results):
            queue.process_completions()
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0)
        finished = all(r.done() for r in results)
    else:
        finished = not (await asyncio.wait(results, timeout=timeout))[1]
    if not finished:
        queue.process_completions()  # an interrupt may have been lost
        if not all(r.done() for r in results):
            ctrl.recover(queue, what, timeout)  # resets, raises NVMeTimeout
