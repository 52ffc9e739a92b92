"""The NVMe controller: bring-up, admin queue, identify, I/O queues, reset, shutdown.

:meth:`NVMeController.start` follows the initialisation sequence of NVMe 1.4 §7.6.1
step by step; :meth:`NVMeController.reset` repeats it after a command timed out or the
controller reported a fatal status, and recreates the I/O queues the host had;
:meth:`NVMeController.close` shuts the controller down cleanly (§7.6.2: CC.SHN, then
CSTS.SHST) and gives the function back to the kernel driver it had.

For scripts:

    with NVMeController.open("pci:0000:00:05.0") as ctrl:
        ns = ctrl.namespace(1)
        ns.write(0, np.arange(4096, dtype=np.uint8))
        data = ns.read(0, 8)       # NumPy array of 8 blocks

Threading: any thread may call the public methods. Admin commands are serialised by a
lock and polled (as SPDK does); an I/O queue is either polled by the caller or reaped
by its MSI-X handler on the work loop, chosen when it is created.
"""

from __future__ import annotations

import enum
import logging
import os
import re
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from hwkit.dma import Direction, DMABuffer, DMAMapper, Mapping
from hwkit.errors import BadArgument, ClosedResourceError, HwkitError
from hwkit.mmio import Registers, RegisterTimeout
from hwkit.pci import vfio
from hwkit.pci.nubs import PCIDevice
from hwkit.workloop import InterruptEventSource, WorkLoop

from . import spec
from .errors import ControllerFailedError, NVMeError, NVMeStatusError, NVMeTimeout
from .queue import QueuePair, Waiter
from .spec import AQA, CAP, CC, CSTS, Command, Completion, Reg, Status

if TYPE_CHECKING:
    from .namespace import Namespace

logger = logging.getLogger("hwkit.drivers.nvme")

ADMIN_DEPTH = 32
DEFAULT_DEPTH = 64
DEFAULT_TIMEOUT = 5.0  # seconds a command may take before the controller is reset
MAX_BOUNCE = 512 * 1024  # the synchronous API's per-queue transfer buffer, at most
PAGE = 4096
NVME_CLASS = 0x0108  # mass storage, non-volatile memory controller
PROC = Path("/proc")  # where interrupts' CPUs are read (tests point it elsewhere)


class State(enum.Enum):
    """Controller lifecycle, one log line per transition."""

    CLOSED = "closed"
    DISABLED = "disabled"
    READY = "ready"
    RESETTING = "resetting"
    SHUT_DOWN = "shut down"
    FAILED = "failed"


class _Prefixed(logging.LoggerAdapter):  # type: ignore[type-arg]
    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return f"{self.extra['device']}: {msg}", kwargs  # type: ignore[index]


class IOQueue(QueuePair):
    """An I/O queue pair with the bounce buffer the synchronous API transfers through.

    ``io_lock`` keeps one synchronous transfer at a time on the bounce buffer; ``source``
    is the MSI-X event source of an interrupt-driven queue.
    """

    def __init__(
        self, qid: int, depth: int, controller: NVMeController, vector: int | None
    ) -> None:
        super().__init__(qid, depth, controller.regs, controller.dstrd, controller.mapper,
                         vector, f"{controller.address} I/O queue {qid}")  # fmt: skip
        self.bounce = DMABuffer(controller.max_transfer,
                                name=f"nvme {controller.nub.bdf} q{qid} data")  # fmt: skip
        self.bounce_mapping = controller.mapper.prepare(self.bounce, Direction.BOTH)
        self.io_lock = threading.Lock()
        self.source: InterruptEventSource | None = None

    def close(self, mapper: DMAMapper) -> None:
        """Free the queue memory and the bounce buffer (the device must be done)."""
        super().close(mapper)
        mapper.complete(self.bounce)
        self.bounce.close()


class NVMeController:
    """One NVMe controller driven through VFIO.

    Args:
        nub: the function's IOPCIDevice nub (opened here).
        io_queues: I/O queue pairs to create at start.
        queue_depth: entries of each I/O queue (capped by CAP.MQES + 1).
        polled: reap I/O completions by polling instead of MSI-X on the work loop.
        command_timeout: seconds before a command counts as lost and the controller is
            reset.
        work_loop: where MSI-X handlers run (default: the nub's).
    """

    def __init__(
        self,
        nub: PCIDevice,
        *,
        io_queues: int = 1,
        queue_depth: int = DEFAULT_DEPTH,
        polled: bool = False,
        command_timeout: float = DEFAULT_TIMEOUT,
        work_loop: WorkLoop | None = None,
    ) -> None:
        if io_queues < 1:
            raise BadArgument(f"io_queues must be at least 1, not {io_queues}")
        self.nub = nub
        self.address = nub.address
        self.log = _Prefixed(logger, {"device": self.address})
        self.wanted_queues = io_queues
        self.queue_depth = queue_depth
        self.polled = polled
        self.command_timeout = command_timeout
        self.work_loop = work_loop
        self.state = State.CLOSED
        self.io_queues: list[IOQueue] = []
        self.namespaces: dict[int, Namespace] = {}
        self._admin_lock = threading.RLock()
        self._reset_lock = threading.Lock()
        self._owns_nub = False
        self._loop: WorkLoop | None = None
        self._in_reset = False
        self.resets = 0
        #: The CPU the work loop was moved to, where the I/O queues' vectors arrive.
        self.interrupt_cpu: int | None = None

    # --- opening ---------------------------------------------------------------------

    @classmethod
    def open(cls, address: str, **options: Any) -> NVMeController:
        """Open the controller at a PCI address (``pci:0000:00:05.0`` or a bare BDF).

        The function is taken from its kernel driver and given back on :meth:`close`.
        Options are those of the constructor.

        Raises:
            BadArgument, NotFoundError: no such function, or it is not an NVMe
                controller (class 0108xx: checked before it is taken from its driver).
            HwkitError: VFIO could not open it (the message says why), or bring-up failed.
        """
        from hwkit.pci.discovery import find_function

        function = find_function(address)
        if function.class_code >> 8 != NVME_CLASS:
            raise BadArgument(f"pci:{function.bdf} is not an NVMe controller (class "
                              f"0x{function.class_code:06x}, not 0x{NVME_CLASS:04x}xx): "
                              "nothing was taken from its driver")  # fmt: skip
        nub = PCIDevice(function)
        controller = cls(nub, **options)
        controller._owns_nub = True
        try:
            controller.start()
        except BaseException:
            controller._release()
            raise
        return controller

    def __enter__(self) -> NVMeController:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _set_state(self, state: State) -> None:
        if state is not self.state:
            self.log.info("%s -> %s", self.state.value, state.value)
            self.state = state

    # --- bring-up (§7.6.1) ---------------------------------------------------------------

    def start(self) -> None:
        """Initialise the controller, identify it and its namespaces, create I/O queues.

        Raises:
            RegisterTimeout: CSTS.RDY did not follow CC.EN within CAP.TO.
            NVMeStatusError: an admin command failed (decoded status).
            HwkitError: VFIO or DMA set-up failed.
        """
        nub = self.nub
        nub.open_device()
        self.regs: Registers = nub.map_bar(0)
        cap = self.regs.read64(Reg.CAP)
        self.cap = cap
        self.dstrd = CAP.DSTRD.get(cap)
        self.max_depth = CAP.MQES.get(cap) + 1
        # CAP.TO is in 500 ms units: the longest CSTS.RDY may take to follow CC.EN
        self.ready_timeout = max(CAP.TO.get(cap), 1) * 0.5 + 1.0
        if CAP.MPSMIN.get(cap) != 0:
            raise HwkitError(f"{self.address}: minimum page size 2**{12 + CAP.MPSMIN.get(cap)}"
                             " is not supported (4 KiB pages only)")  # fmt: skip
        self.regs.names.update(spec.register_names(self.dstrd, self.wanted_queues + 2))
        self.version = spec.version_text(self.regs.read32(Reg.VS))
        nub.set_command(memory=True, bus_master=True)
        self.mapper: DMAMapper = nub.dma_mapper(64)
        self.admin_buffer = DMABuffer(PAGE, name=f"nvme {nub.bdf} admin data")
        self.admin_mapping = self.mapper.prepare(self.admin_buffer, Direction.BOTH)
        self.admin = QueuePair(0, ADMIN_DEPTH, self.regs, self.dstrd, self.mapper, 0,
                               f"{self.address} admin queue")  # fmt: skip
        self._enable()
        # §7.6.1 step 6-7: identify the controller, then the active namespaces
        self.identity = spec.IdentifyController.parse(self._identify(spec.CNS.CONTROLLER))
        mdts = self.identity.mdts
        limit = (1 << mdts) * PAGE if mdts else MAX_BOUNCE
        self.max_transfer = min(limit, MAX_BOUNCE)
        self.log.info("%s, serial %s, firmware %s, NVMe %s, %d namespace(s)",
                      self.identity.model, self.identity.serial, self.identity.firmware,
                      self.version, self.identity.nn)  # fmt: skip
        # §7.6.1 step 8: ask for I/O queues, then create them (CQ before its SQ)
        granted = self.admin_command(spec.set_number_of_queues(self.wanted_queues),
                                     "SET FEATURES (number of queues)").dw0  # fmt: skip
        self.queue_limit = min((granted & 0xFFFF), granted >> 16) + 1
        for _ in range(self.wanted_queues):
            self.create_io_queue(self.queue_depth, polled=self.polled)
        self.active_namespaces = spec.parse_namespace_list(
            self._identify(spec.CNS.ACTIVE_NAMESPACES)
        )

    def _disable(self) -> None:
        """CC.EN = 0 and wait for CSTS.RDY = 0 (§7.6.1 step 1; §3.1.5)."""
        if self.regs.read32(Reg.CC) & CC.EN:
            self.regs.clear_bits(Reg.CC, CC.EN)
        self.regs.wait_clear(Reg.CSTS, CSTS.RDY, self.ready_timeout)
        self._set_state(State.DISABLED)

    def _enable(self) -> None:
        """Admin queue registers, CC, then CC.EN = 1 and wait for CSTS.RDY (§7.6.1 2-5)."""
        self._disable()
        # §7.6.1 step 2: admin queue attributes and base addresses
        depth = self.admin.depth
        self.regs.write32(Reg.AQA, AQA.ASQS.put(depth - 1) | AQA.ACQS.put(depth - 1))
        self.regs.write64(Reg.ASQ, self.admin.sq_iova)
        self.regs.write64(Reg.ACQ, self.admin.cq_iova)
        # §7.6.1 step 4: NVM command set, 4 KiB pages, round robin, entry sizes
        cc = (spec.CC_CSS.put(0) | spec.CC_MPS.put(0) | spec.CC_AMS.put(0)
              | spec.CC_IOSQES.put(spec.SQES) | spec.CC_IOCQES.put(spec.CQES))  # fmt: skip
        self.regs.write32(Reg.CC, cc)
        # §7.6.1 step 5: enable, wait for CSTS.RDY = 1
        self.regs.write32(Reg.CC, cc | CC.EN)
        try:
            self.regs.wait_set(Reg.CSTS, CSTS.RDY, self.ready_timeout)
        except RegisterTimeout:
            self._check_fatal()
            raise
        self._check_fatal()
        self._set_state(State.READY)

    def _check_fatal(self) -> None:
        csts = self.regs.read32(Reg.CSTS)
        if csts & CSTS.CFS:
            self._set_state(State.FAILED)
            raise ControllerFailedError(
                f"{self.address}: controller fatal status (CSTS 0x{csts:x}); "
                "reset it or power-cycle the device"
            )

    # --- admin commands ----------------------------------------------------------------

    def _check_open(self) -> None:
        if self.state in (State.CLOSED, State.SHUT_DOWN):
            raise ClosedResourceError(f"{self.address}: controller is {self.state.value}")

    def admin_command(
        self,
        command: Command,
        what: str,
        data: tuple[Mapping, int, int] | None = None,
        timeout: float | None = None,
    ) -> Completion:
        """Run one admin command to completion (polled) and return its completion.

        `timeout` overrides ``command_timeout`` for this command (seconds).

        Raises:
            NVMeStatusError: the controller rejected it (status decoded).
            NVMeTimeout: no completion within ``command_timeout`` (controller reset).
            ClosedResourceError: the controller is closed.
        """
        self._check_open()
        with self._admin_lock:
            return self._execute(self.admin, command, what, data, poll=True, timeout=timeout)

    def _identify(self, cns: spec.CNS, nsid: int = 0) -> bytes:
        with self._admin_lock:
            self.admin_command(spec.identify(cns, self.admin_mapping.iova, nsid),
                               f"IDENTIFY (cns {int(cns)}, nsid {nsid})")  # fmt: skip
            return bytes(self.admin_buffer.mmap[: spec.IDENTIFY_SIZE])

    def identify_namespace(self, nsid: int) -> spec.IdentifyNamespace:
        """Identify Namespace `nsid` (CNS 00h), parsed."""
        return spec.IdentifyNamespace.parse(self._identify(spec.CNS.NAMESPACE, nsid))

    def identify_data(self, cns: spec.CNS, nsid: int = 0) -> bytes:
        """Raw 4096 bytes of an Identify command (for saving and inspecting)."""
        return self._identify(cns, nsid)

    # --- executing commands ------------------------------------------------------------

    def _execute(
        self,
        queue: QueuePair,
        command: Command,
        what: str,
        data: tuple[Mapping, int, int] | None = None,
        poll: bool = True,
        ring: bool = True,
        timeout: float | None = None,
    ) -> Completion:
        """Submit, wait, and turn a bad outcome into an error naming the controller.

        `ring` False leaves the SQ tail doorbell alone (a caller batching commands, or a
        test that wants a command the controller never sees).
        """
        waiter = Waiter()
        queue.submit(command, waiter, what, data, ring=ring)
        timeout = self.command_timeout if timeout is None else timeout
        if not queue.wait(waiter, time.monotonic() + timeout, poll):
            # one last look: an interrupt may have been lost, the entry may be there
            queue.process_completions()
            if waiter.result is None:
                self.recover(queue, what, timeout)
        result = waiter.result
        if isinstance(result, Exception):
            raise result
        assert result is not None
        if not result.ok:
            raise NVMeStatusError(what, self.address, Status.decode(result.status))
        return result

    def recover(self, queue: QueuePair, what: str, timeout: float) -> NoReturn:
        """`what` on `queue` got no completion within `timeout`: reset the controller
        (unless this is a command of a reset) and raise.

        Raises:
            NVMeTimeout: always; its message says whether the reset worked.
        """
        csts = self.regs.read32(Reg.CSTS)
        message = (
            f"{what} timed out on {self.address} after {timeout:g} s "
            f"(queue {queue.qid}, CSTS 0x{csts:x})"
        )
        if self._in_reset:  # a command of the reset itself: no nesting
            raise NVMeTimeout(f"{message}, during a controller reset")
        self.log.error("%s: resetting the controller", message)
        try:
            self.reset(reason=f"{what} timed out")
        except HwkitError as exc:
            raise NVMeTimeout(f"{message}; the reset failed too: {exc}") from exc
        raise NVMeTimeout(f"{message}; the controller was reset")

    def work_loop_thread(self) -> bool:
        """True on the thread MSI-X handlers run on (a wait there must poll instead)."""
        return self._loop is not None and self._loop.in_loop_thread()

    # --- I/O queues ------------------------------------------------------------------

    def create_io_queue(self, depth: int | None = None, polled: bool | None = None) -> IOQueue:
        """Create an I/O CQ and SQ pair of `depth` entries (§5.3, §5.4).

        `polled` False: the CQ raises an MSI-X vector the kernel delivers to the work
        loop's CPU (see :meth:`_vector_for`), reaped on the work loop.

        Raises:
            BadArgument: depth outside 2 .. CAP.MQES + 1, or no queue identifier left.
            NVMeStatusError: the controller refused (e.g. INVALID QUEUE SIZE).
        """
        self._check_open()
        depth = depth or self.queue_depth
        polled = self.polled if polled is None else polled
        if not 2 <= depth <= self.max_depth:
            raise BadArgument(f"{self.address}: queue depth {depth} outside 2..{self.max_depth}"
                              " (CAP.MQES)")  # fmt: skip
        used = {q.qid for q in self.io_queues}
        qid = next((q for q in range(1, self.queue_limit + 1) if q not in used), None)
        if qid is None:
            raise BadArgument(f"{self.address}: all {self.queue_limit} I/O queues are in use")
        vector = None if polled else self._vector_for(qid)
        queue = IOQueue(qid, depth, self, vector)
        if vector is not None:
            queue.source = self._interrupt_source(queue)
        self.io_queues.append(queue)
        self._create_in_device(queue)
        self.log.info("I/O queue %d: depth %d, %s", qid, depth,
                      "polled" if polled else f"MSI-X vector {vector}")  # fmt: skip
        return queue

    def _create_in_device(self, queue: QueuePair) -> None:
        self.admin_command(
            spec.create_io_cq(queue.qid, queue.depth, queue.cq_iova, queue.vector),
            f"CREATE IO CQ {queue.qid}",
        )
        self.admin_command(spec.create_io_sq(queue.qid, queue.depth, queue.sq_iova, queue.qid),
                           f"CREATE IO SQ {queue.qid}")  # fmt: skip

    def _interrupt_source(self, queue: IOQueue) -> InterruptEventSource:
        assert queue.vector is not None

        def completions(source: Any, count: int) -> None:
            queue.statistics_counters["interrupts"] += 1
            queue.process_completions()

        # Every vector a queue could use is enabled with the first source (VFIO sets
        # MSI-X vectors as one block).
        vectors = self.queue_limit + 1
        source = self.nub.interrupt_source(self, completions, vfio.PciIrq.MSIX,
                                           vector=queue.vector, vectors=vectors)  # fmt: skip
        loop = self._loop = self.work_loop or self.nub.get_work_loop()
        loop.add_event_source(source)
        source.enable()
        if self.interrupt_cpu is None:
            self._follow_interrupt(loop, queue.vector)
        return source

    # Where interrupts go. An interrupt delivered to one CPU that wakes a thread sleeping
    # on another must wake that CPU too (an IPI); when the host is busy that wake-up
    # was measured to cost about a scheduler tick (4 ms at HZ 250) in the lab, against
    # ~1 ms on one CPU (bench.py). The kernel's nvme avoids it by giving each CPU a
    # queue whose vector it receives; a user-space driver cannot steer a vector without
    # root, but it can move its work loop to the vector's CPU, and it chooses which
    # vector each CQ raises (the IV of CREATE IO CQ is the host's choice, §5.3).

    def _vector_cpus(self) -> dict[int, int]:
        """The CPU each enabled MSI-X vector of the function is delivered to, read from
        /proc/interrupts and /proc/irq/N/effective_affinity_list (readable by anyone)."""
        label = re.compile(rf"^\s*(\d+):.*\bvfio-msix\[(\d+)\]\({re.escape(self.nub.bdf)}\)")
        cpus = {}
        try:
            lines = (PROC / "interrupts").read_text().splitlines()
            for line in lines:
                if (found := label.match(line)) is not None:
                    text = (PROC / "irq" / found[1] / "effective_affinity_list").read_text()
                    cpus[int(found[2])] = int(re.split(r"[-,]", text.strip())[0])
        except (OSError, ValueError):
            return {}
        return cpus

    def _follow_interrupt(self, loop: WorkLoop, vector: int) -> None:
        """Move the work loop's thread to the CPU that receives `vector`."""
        cpu = self._vector_cpus().get(vector)
        if cpu is None:
            return
        try:
            loop.run_sync(os.sched_setaffinity, 0, {cpu})  # 0: the calling (loop) thread
        except OSError as exc:
            self.log.warning("work loop stays where it is (CPU %d refused: %s)", cpu, exc)
            return
        self.interrupt_cpu = cpu
        self.log.info("work loop moved to CPU %d, which receives MSI-X vector %d", cpu, vector)

    def _vector_for(self, qid: int) -> int:
        """An unused MSI-X vector delivered to the work loop's CPU, else `qid`."""
        if self.interrupt_cpu is None:
            return qid
        used = {q.vector for q in self.io_queues}
        cpus = self._vector_cpus()
        return next((v for v in sorted(cpus) if v and v not in used
                     and cpus[v] == self.interrupt_cpu), qid)  # fmt: skip

    def delete_io_queue(self, queue: IOQueue) -> None:
        """Delete an I/O queue pair in the device (SQ first, §5.6) and free it."""
        self.io_queues.remove(queue)
        try:
            if self.state is State.READY:
                self.admin_command(spec.delete_io_sq(queue.qid), f"DELETE IO SQ {queue.qid}")
                self.admin_command(spec.delete_io_cq(queue.qid), f"DELETE IO CQ {queue.qid}")
        finally:
            self._free_queue(queue)

    def _free_queue(self, queue: IOQueue) -> None:
        if queue.source is not None:
            queue.source.disable()
            if queue.source.work_loop is not None:
                queue.source.work_loop.remove_event_source(queue.source)
            queue.source = None
        queue.fail_all("queue deleted")
        queue.close(self.mapper)

    # --- namespaces --------------------------------------------------------------------

    def namespace(self, nsid: int = 1) -> Namespace:
        """The :class:`~hwkit.drivers.nvme.namespace.Namespace` `nsid` (identified once).

        Raises:
            BadArgument: `nsid` is not an active namespace.
        """
        from .namespace import Namespace  # (namespace.py imports this module)

        if nsid not in self.namespaces:
            if nsid not in self.active_namespaces:
                raise BadArgument(f"{self.address} has no active namespace {nsid} "
                                  f"(active: {self.active_namespaces})")  # fmt: skip
            self.namespaces[nsid] = Namespace(self, nsid, self.identify_namespace(nsid))
        return self.namespaces[nsid]

    # --- reset and shutdown ------------------------------------------------------------

    def reset(self, reason: str = "requested") -> None:
        """Controller reset (§7.3.2): disable, fail what was in flight, re-enable, and
        recreate every I/O queue pair the host had (the namespaces stay valid).

        Raises:
            RegisterTimeout: the controller did not become ready again within CAP.TO.
            ControllerFailedError: it reports a fatal status.
            NVMeStatusError: recreating a queue failed.
        """
        with self._reset_lock, self._admin_lock:
            self._set_state(State.RESETTING)
            self.resets += 1
            self.log.warning("controller reset (%s)", reason)
            self._in_reset = True
            try:
                self._disable()
                for queue in [self.admin, *self.io_queues]:
                    queue.fail_all(reason)
                self._enable()
                for queue in self.io_queues:
                    self._create_in_device(queue)
            except BaseException:
                self._set_state(State.FAILED)  # reset() may be tried again
                raise
            finally:
                self._in_reset = False
            self.log.info("reset done; %d I/O queue(s) recreated", len(self.io_queues))

    def shutdown(self) -> None:
        """Delete the I/O queues, then a normal shutdown: CC.SHN = 01b, wait for
        CSTS.SHST = 10b (§7.6.2). The controller keeps no volatile data after it.

        Raises:
            RegisterTimeout: shutdown did not complete in time.
        """
        if self.state is State.READY:
            for queue in list(self.io_queues):
                self.delete_io_queue(queue)
        for queue in list(self.io_queues):
            self.io_queues.remove(queue)
            self._free_queue(queue)
        if self.state not in (State.CLOSED, State.FAILED, State.SHUT_DOWN):
            cc = self.regs.read32(Reg.CC) & ~spec.CC_SHN.put(3)
            self.regs.write32(Reg.CC, cc | CC.SHN_NORMAL)
            deadline = time.monotonic() + max(self.ready_timeout, 5.0)
            while spec.CSTS_SHST.get(self.regs.read32(Reg.CSTS)) != 2:
                if time.monotonic() > deadline:
                    raise RegisterTimeout(f"{self.address}: CSTS.SHST not 'complete' after "
                                          "shutdown notification")  # fmt: skip
                time.sleep(0.001)
            self._set_state(State.SHUT_DOWN)

    def close(self) -> None:
        """Shut down (best effort), free the memory, give the function back. Idempotent."""
        if self.state is State.CLOSED and not hasattr(self, "regs"):
            return
        try:
            self.shutdown()
        except (HwkitError, OSError) as exc:
            self.log.error("clean shutdown failed: %s", exc)
        self._release()

    def _release(self) -> None:
        for queue in list(self.io_queues):
            self.io_queues.remove(queue)
            self._free_queue(queue)
        if hasattr(self, "admin"):
            self.admin.close(self.mapper)
            del self.admin
        if hasattr(self, "admin_buffer"):
            self.mapper.complete(self.admin_buffer)
            self.admin_buffer.close()
            del self.admin_buffer
        if hasattr(self, "regs"):
            del self.regs
        self.state = State.CLOSED
        if self._owns_nub:
            self.nub.free()  # close_device: mappings, IRQs, VFIO; kernel driver rebound

    def statistics(self) -> dict[str, Any]:
        """Debug counters: resets, and each I/O queue's."""
        return {"resets": self.resets,
                "queues": {q.qid: q.statistics() for q in self.io_queues}}  # fmt: skip


__all__ = ["NVMeController", "NVMeError", "NVMeStatusError", "NVMeTimeout", "State"]
