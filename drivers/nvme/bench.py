"""NVMe throughput, hwkit's driver against the kernel's nvme driver on the same namespace.

Four figures, each measured both ways in the same run and printed as hwkit / kernel:
4 KiB random reads at queue depth 1 and 32 (IOPS), 128 KiB sequential reads at depth 4
(MB/s), and sequential reads at depth 1 in the largest transfer the kernel makes on the
namespace (``max_hw_sectors_kb``, the controller's MDTS: 512 KiB on QEMU's). The kernel
runs first, while nvme holds the function: fio (Debian's ``fio``, installed by
tools/setup.sh) with libaio and O_DIRECT on the namespace's block device, so it gets the
same depths as hwkit and no page cache. Then hwkit takes the function and drives the
same reads through one I/O queue from its own DMA memory, keeping `depth` commands in
flight, polled (as SPDK does) unless ``--msix``; the function goes back to nvme after.

    hwkit lab run --profile pci -- hwkit bench pci          # with the edu figures
    hwkit lab run --profile pci -- python -m hwkit.drivers.nvme.bench [--seconds 3] [--msix]

Figures in the lab (QEMU 7.2 under TCG, 2 vCPUs on a 2-core host that another
engineer's guests shared, host load average 0.5-2.3; 2-3 s per figure, four runs in
three boots). Both sides move by tens of percent from run to run with the host's load;
fio's own 4 KiB QD32 figure went from 5011 to 8882 IOPS between boots. Polled:

    hwkit / kernel       range        one run
    4 KiB random QD1     0.47-0.87x   3086 vs 3606 IOPS
    4 KiB random QD32    1.25-1.85x   10489 vs 5679 IOPS
    128 KiB seq. QD4     0.75-1.21x   641 vs 603 MB/s
    512 KiB seq. QD1     0.85-1.24x   995 vs 805 MB/s

With MSI-X completions on the work loop: QD1 0.16-0.17x, QD32 0.57-0.96x, 128 KiB QD4
0.23-0.32x. Before fixes 1 and 3 below (same fio reference): polled 128 KiB QD4
0.22-0.34x; MSI-X completions ~3.6 ms each (p50) on a busy host.

Where the time went, and what was done:

1. Python per command, the big one. A 128 KiB read's 31-entry PRP list was built by a
   Python loop over segments (``hwkit.dma.nvme_prps``), about 1 ms per command under
   TCG, where Python runs ~50x slower than natively: 128 KiB sequential ran at ~1100
   commands/s whatever the depth (QD4 no faster than QD1), 512 KiB at 450/s. A mapping
   is one range of bus addresses, so the list is an arithmetic progression: one NumPy
   operation writes it now (in ``nvme_prps`` itself), and 128 KiB QD4 went to ~4800/s.
   Commands are built before the clock starts (``Namespace.commands``), several go in
   per doorbell write (``QueuePair.submit_batch``) and the CQ's phase tags are scanned
   with NumPy when eight or more completions wait. NumPy is not free either: about
   50 us per call under TCG, so a batch of a few commands through NumPy made 4 KiB
   sequential QD4 slower than QD1 (1380 vs 2543/s); batches and CQ runs under eight
   go entry by entry. Natively a command now costs ~8-10 us of Python (submit + reap);
   under TCG that is most of what QD1 still lacks (a polled read takes ~0.32 ms, fio's
   ~0.26 ms), while at QD32 it is amortised over batches and the device is the limit.
2. The clock. Under TCG the guest's clocksource is the HPET, so every
   ``time.monotonic()`` is an MMIO read: a VM exit into QEMU, under the lock the NVMe
   model also needs. The polling loop looked at the clock on every turn; every 64th
   turn now (:data:`CLOCK_EVERY`): 4 KiB QD1 from ~2150 to ~2960 IOPS.
3. Interrupts (``--msix``, the ~4 ms per completion). Histograms of QD1 completions
   (interrupt to a thread waiting for it) on a host at load 2.3: work loop free to
   run on either vCPU, p50 3.63 ms with the mass between 3.5 and 8 ms (the guest's
   tick is 4 ms at HZ 250); work loop and waiter on the vCPU the vector is delivered
   to, p50 1.04 ms, p99 3.1 ms. On a quiet host both were ~1 ms. So the 4 ms is a
   wake-up of the other, idle vCPU (an IPI it takes until about the next tick to act
   on when the host's cores are busy), not the interrupt itself; the old work loop
   (an epoll re-arm per interrupt) showed it too (p50 2.87 ms). The kernel's nvme
   never pays it: each CPU has a queue whose vector it receives. hwkit now moves the
   work loop to the CPU that receives the first I/O queue's vector and gives later
   queues free vectors delivered to that CPU (``NVMeController._follow_interrupt``);
   the bench's own thread moves there too, as fio's I/O completes where it was
   submitted. What is left, ~1 ms per completion, is the Python of the loop's reader
   callback, the eventfd read and the hand-off, each ~50x slower under TCG.
4. The IOMMU, which is not tuned away. hwkit's DMA (SQ entries, PRP lists, data, CQ
   entries) goes through the emulated VT-d, translated by QEMU page by page, while the
   lab's kernel runs with ``iommu=pt`` (``KERNEL_ARGS`` in hwkit/lab/machine.py), so
   the nvme driver's DMA is untranslated. Measured once, before fix 1: 2 MiB huge-page
   buffers (one IOMMU page each) changed nothing (128 KiB QD4 107 with vs 112 MB/s
   without, 4 KiB QD32 6878 vs 7219 IOPS), so translation was not the bottleneck then;
   it is still a difference between the two sides, not re-measured since, and it stays
   in the figures.
5. Polling costs a vCPU, which here is one of the host's two cores, shared with QEMU's
   I/O thread and the other guest: under load it shows in every polled figure. Sleeping
   50 or 200 us when a look at the CQ finds nothing was tried and is worse everywhere
   (128 KiB QD4 348-531 vs 588-614 MB/s, QD1 halves): a guest wake-up costs more than
   the spin it saves.

Threading: the functions block the calling thread for the measurement.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwkit.dma import Direction, DMABuffer
from hwkit.errors import HwkitError, MissingDependency, NotFoundError
from hwkit.pci.discovery import parse_address

from .controller import NVMeController
from .namespace import Namespace
from .spec import Completion, IOOpcode

RANDOM = 4096
SEQUENTIAL = 128 * 1024
RANDOM_DEPTHS = (1, 32)
SEQUENTIAL_DEPTH = 4
#: Loop turns between two looks at the clock (see "Where the rest goes").
CLOCK_EVERY = 64


@dataclass
class Figures:
    """Reads per second at QD1 and QD32 (4 KiB random); MB/s sequential in 128 KiB
    reads at QD4, and in reads of the largest transfer (`large` bytes) at QD1."""

    qd1_iops: float
    qd32_iops: float
    seq_mbps: float
    large_mbps: float
    large: int


def _offsets(size: int, unit: int, count: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, size // unit, count) * unit


# --- the kernel's nvme driver ------------------------------------------------------------


def block_device(bdf: str, timeout: float = 30.0) -> Path:
    """/dev/nvmeXn1 of the controller at `bdf` once the kernel has bound it.

    Raises:
        NotFoundError: no namespace block device appeared within `timeout`.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ctrl in Path(f"/sys/bus/pci/devices/{bdf}/nvme").glob("nvme*"):
            dev = Path("/dev") / f"{ctrl.name}n1"
            if dev.exists():
                return dev
        time.sleep(0.2)
    raise NotFoundError(f"pci:{bdf}: no nvme namespace block device (is nvme bound to it?)")


def fio(dev: Path, rw: str, block: int, depth: int, seconds: float) -> float:
    """I/Os per second of one fio job (libaio, O_DIRECT) on `dev`.

    Raises:
        MissingDependency: fio is not installed.
        HwkitError: fio failed (its message is included).
    """
    binary = shutil.which("fio")
    if binary is None:
        raise MissingDependency("the kernel reference needs fio: apt-get install fio "
                                "(tools/setup.sh does)")  # fmt: skip
    argv = [binary, "--name=kernel", f"--filename={dev}", "--direct=1", "--ioengine=libaio",
            f"--rw={rw}", f"--bs={block}", f"--iodepth={depth}", f"--runtime={seconds:g}",
            "--time_based", "--randseed=7", "--output-format=json"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise HwkitError(f"fio on {dev} failed: {done.stderr.strip() or done.stdout[-500:]}")
    report = json.loads(done.stdout[done.stdout.index("{") :])
    return float(report["jobs"][0]["read"]["iops"])


def largest_transfer(bdf: str) -> int:
    """The kernel's largest request on the controller's namespace (max_hw_sectors_kb:
    MDTS as the kernel applies it), so both drivers use the same command size."""
    dev = block_device(bdf)
    return int(Path(f"/sys/class/block/{dev.name}/queue/max_hw_sectors_kb").read_text()) << 10


def kernel_figures(bdf: str, seconds: float, large: int) -> Figures:
    """The figures through the kernel's nvme driver (fio, libaio, O_DIRECT)."""
    dev = block_device(bdf)
    qd1, qd32 = (fio(dev, "randread", RANDOM, depth, seconds) for depth in RANDOM_DEPTHS)
    seq = fio(dev, "read", SEQUENTIAL, SEQUENTIAL_DEPTH, seconds)
    big = fio(dev, "read", large, 1, seconds)
    return Figures(qd1, qd32, seq * SEQUENTIAL / 1e6, big * large / 1e6, large)


# --- hwkit ---------------------------------------------------------------------------------


def _buffer(size: int) -> DMABuffer:
    """Huge pages when some are free (one IOMMU entry for the whole buffer), else 4 KiB."""
    try:
        free = int(Path("/proc/sys/vm/nr_hugepages").read_text())
    except OSError:
        free = 0
    if free:
        try:
            return DMABuffer(size, name="nvme bench", hugepages=True)
        except HwkitError:
            pass
    return DMABuffer(size, name="nvme bench")


@contextlib.contextmanager
def _on_cpu(cpu: int | None) -> Iterator[None]:
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


class _Counter:
    """The one completion callback of every read: counts, keeps failures, wakes the
    submitting thread when completions come on the work loop (MSI-X)."""

    __slots__ = ("done", "failures", "wake")

    def __init__(self, wake: threading.Event | None) -> None:
        self.done = 0
        self.failures: list[object] = []
        self.wake = wake

    def __call__(self, result: Completion | Exception) -> None:
        self.done += 1
        if type(result) is not Completion or result.status & 0x7FF:
            self.failures.append(result)
        if self.wake is not None:
            self.wake.set()


def _hwkit_reads(
    ctrl: NVMeController, ns: Namespace, depth: int, unit: int, seconds: float, sequential: bool
) -> float:
    """Reads per second keeping `depth` reads of `unit` bytes in flight on queue 0.

    Every command is built before the clock starts (:meth:`Namespace.commands`); each
    turn submits as many as there are free slots in one batch (one doorbell write) and
    reaps what completed. Each command reads into its own region of the buffer, chosen
    by its command identifier, so nothing is tracked per command. At depth 1 a batch
    would be all overhead: the single-command path is used.
    """
    queue = ctrl.io_queues[0]
    blocks = unit // ns.block_size
    buffer = _buffer(queue.depth * unit)
    mapping = ctrl.mapper.prepare(buffer, Direction.IN)
    lbas = (
        np.arange(0, ns.size - unit + 1, unit) if sequential else _offsets(ns.size, unit, 1 << 14)
    ) // ns.block_size
    entries = ns.commands(IOOpcode.READ, lbas, blocks)
    single = lbas.tolist()
    polled = queue.vector is None
    counter = _Counter(None if polled else threading.Event())
    position = submitted = turns = 0
    ending = False
    start = time.monotonic()
    stop = start + seconds
    try:
        while True:
            turns += 1
            if turns % CLOCK_EVERY == 0:  # the guest's clock is an HPET read: a VM exit
                ending = time.monotonic() > stop
            free = depth - (submitted - counter.done)
            if free and not ending:
                if depth == 1:
                    ns.submit(IOOpcode.READ, single[position], blocks, (mapping, 0), counter,
                              queue)  # fmt: skip
                else:
                    if position + free > len(entries):
                        position = 0
                    batch = entries[position : position + free]
                    queue.submit_batch(batch, counter, "READ", (mapping, None, unit))
                position = (position + free) % len(entries)
                submitted += free
            elif ending and submitted == counter.done:
                break
            if polled:
                queue.process_completions()
            else:
                assert counter.wake is not None
                counter.wake.wait(1.0)
                counter.wake.clear()
            if counter.failures:
                raise HwkitError(f"bench read failed on {ctrl.address}: {counter.failures[0]}")
        return submitted / (time.monotonic() - start)
    finally:
        ctrl.mapper.complete(buffer)
        buffer.close()


def hwkit_figures(bdf: str, seconds: float, large: int, polled: bool = True) -> Figures:
    """The figures through hwkit (the function is taken from nvme and given back).

    With MSI-X the measuring thread moves to the CPU the work loop moved to (the one
    that receives the queue's vector), as fio's threads complete their I/O on the CPU
    that submitted it under the kernel's nvme; it moves back afterwards.
    """
    with (
        NVMeController.open(bdf, queue_depth=64, polled=polled) as ctrl,
        _on_cpu(ctrl.interrupt_cpu),
    ):
        ns = ctrl.namespace(1)
        qd1 = _hwkit_reads(ctrl, ns, 1, RANDOM, seconds, sequential=False)
        qd32 = _hwkit_reads(ctrl, ns, 32, RANDOM, seconds, sequential=False)
        seq = _hwkit_reads(ctrl, ns, SEQUENTIAL_DEPTH, SEQUENTIAL, seconds, sequential=True)
        large = min(large, ctrl.max_transfer)
        big = _hwkit_reads(ctrl, ns, 1, large, seconds, sequential=True)
    return Figures(qd1, qd32, seq * SEQUENTIAL / 1e6, big * large / 1e6, large)


def compare(address: str, seconds: float = 3.0, polled: bool = True) -> list[tuple]:
    """Measure both drivers on the controller at `address`; return the table's rows:
    (name and unit, hwkit figure, kernel figure).

    Raises:
        NotFoundError: the kernel has no block device for the controller.
        MissingDependency: fio is not installed.
        HwkitError: hwkit could not open the controller, or a read failed.
    """
    bdf = parse_address(address)
    large = largest_transfer(bdf)
    kernel = kernel_figures(bdf, seconds, large)
    hwkit = hwkit_figures(bdf, seconds, large, polled)
    block_device(bdf)  # wait for nvme to have it back
    return [
        ("4 KiB random read QD1, IOPS", hwkit.qd1_iops, kernel.qd1_iops),
        ("4 KiB random read QD32, IOPS", hwkit.qd32_iops, kernel.qd32_iops),
        (f"128 KiB seq. read QD{SEQUENTIAL_DEPTH}, MB/s", hwkit.seq_mbps, kernel.seq_mbps),
        (f"{hwkit.large >> 10} KiB (MDTS) seq. QD1, MB/s", hwkit.large_mbps,
         kernel.large_mbps if kernel.large == hwkit.large else float("nan")),
    ]  # fmt: skip


def report(rows: list[tuple], address: str, seconds: float, polled: bool) -> str:
    """The rows as a table, each figure next to the kernel's and the ratio."""
    mode = "polled" if polled else "MSI-X"
    lines = [f"NVMe {address}: hwkit ({mode}) vs the kernel's nvme driver (fio, libaio, "
             f"O_DIRECT), {seconds:g} s per figure",
             f"{'':32} {'hwkit':>10} {'kernel':>10} {'hwkit/kernel':>12}"]  # fmt: skip
    for name, ours, theirs in rows:
        ratio = ours / theirs if theirs else float("nan")
        lines.append(f"{name:32} {ours:10.0f} {theirs:10.0f} {ratio:11.2f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hwkit.drivers.nvme.bench",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("address", nargs="?", default="pci:0000:00:05.0")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--msix", action="store_true", help="MSI-X completions, not polling")
    args = parser.parse_args(argv)
    rows = compare(args.address, args.seconds, polled=not args.msix)
    print(report(rows, args.address, args.seconds, not args.msix))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
