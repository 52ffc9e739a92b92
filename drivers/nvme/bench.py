"""NVMe throughput, hwkit's driver against the kernel's nvme driver on the same namespace.

Three figures, each measured both ways in the same run and printed as hwkit / kernel:
4 KiB random reads at queue depth 1 and 32 (IOPS) and 128 KiB sequential reads (MB/s).
The kernel side runs first while nvme holds the function, with O_DIRECT on its block
device (no page cache): single-threaded ``preadv`` for QD1, 32 threads of ``preadv``
for QD32 (what fio's psync engine does with numjobs=32), and ``dd iflag=direct`` for the
sequential read. Then hwkit takes the function and drives the same reads from caller
memory (no bounce copy) through one I/O queue, keeping `depth` commands in flight.

In the lab (the guest is emulated: absolute figures are small, the ratios are the point):

    hwkit lab run --profile pci -- python -m hwkit.drivers.nvme.bench [--seconds 3] [--msix]

Figures seen in the lab (QEMU 7.2 under TCG, 3 s each, four boots; both sides vary by
tens of percent from boot to boot with the host's load): polled, 4 KiB QD1 0.52-0.68x
(e.g. 1176 vs 2269 IOPS), QD32 0.73-1.77x, 128 KiB sequential 0.53-0.75x (e.g. 108 vs
144 MB/s); with MSI-X completions on the work loop, QD1 0.09-0.14x, QD32 0.93-1.33x,
sequential 0.22-0.60x.

Where the rest goes: (1) Python per command, about 12 us natively for submit + reap
(command packing, PRPs, the lock, the doorbell), ten times that under TCG; (2) every DMA
of hwkit's (SQ entry fetch, PRPs, data, CQ entry) is translated by the emulated VT-d,
while the lab's kernel runs iommu=pt and its own driver's DMA is untranslated; (3) with
MSI-X each completion costs an eventfd wake-up of the work loop, a re-arm of its fd
watch and a thread hand-off to the waiter: about 4 ms per command in the guest (one
250 Hz tick; pinning to one CPU does not change it), which is why polling is the fast
path. The QD32 reference is 32 Python threads in preadv, which the GIL and the
emulated CPUs hold near the QD1 rate: fio with libaio/io_uring would be a stronger one.

Threading: the functions block the calling thread for the measurement.
"""

from __future__ import annotations

import argparse
import collections
import mmap
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwkit.dma import Direction, DMABuffer
from hwkit.errors import HwkitError, NotFoundError
from hwkit.pci.discovery import parse_address

from .controller import NVMeController
from .namespace import Namespace
from .spec import Completion, IOOpcode

RANDOM = 4096
SEQUENTIAL = 128 * 1024


@dataclass
class Figures:
    """Reads per second at QD1 and QD32 (4 KiB random), MB/s sequential (128 KiB)."""

    qd1_iops: float
    qd32_iops: float
    seq_mbps: float


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


def _kernel_random(dev: Path, size: int, threads: int, seconds: float) -> float:
    """Reads per second of `threads` threads doing 4 KiB O_DIRECT preadv each; the clock
    starts once every thread has its fd, buffer and offsets (a barrier)."""
    done = [0] * threads
    ready = threading.Barrier(threads + 1)
    window: list[float] = []

    def worker(i: int) -> None:
        buf = mmap.mmap(-1, RANDOM)
        fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
        offsets = _offsets(size, RANDOM, 1 << 14, seed=i).tolist()
        try:
            ready.wait()
            stop = window[0] + seconds
            while time.monotonic() < stop:
                os.preadv(fd, [buf], offsets[done[i] % len(offsets)])
                done[i] += 1
        finally:
            os.close(fd)
            buf.close()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    window.append(time.monotonic())
    ready.wait()
    for w in workers:
        w.join()
    return sum(done) / (time.monotonic() - window[0])


def kernel_figures(bdf: str, seconds: float) -> Figures:
    """The three figures through the kernel's nvme driver (O_DIRECT on its block device)."""
    dev = block_device(bdf)
    size = int(Path(f"/sys/class/block/{dev.name}/size").read_text()) * 512
    qd1 = _kernel_random(dev, size, 1, seconds)
    qd32 = _kernel_random(dev, size, 32, seconds)
    count = size // SEQUENTIAL
    start = time.monotonic()
    subprocess.run(["dd", f"if={dev}", "of=/dev/null", "bs=128k", f"count={count}",
                    "iflag=direct", "status=none"], check=True)  # fmt: skip
    seq = count * SEQUENTIAL / (time.monotonic() - start) / 1e6
    return Figures(qd1, qd32, seq)


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


def _hwkit_reads(
    ctrl: NVMeController, ns: Namespace, depth: int, unit: int, seconds: float, sequential: bool
) -> float:
    """Reads per second keeping `depth` reads of `unit` bytes in flight on queue 0."""
    queue = ctrl.io_queues[0]
    buffer = _buffer(depth * unit)
    mapping = ctrl.mapper.prepare(buffer, Direction.IN)
    blocks = unit // ns.block_size
    offsets = (
        np.arange(0, ns.size, unit) if sequential else _offsets(ns.size, unit, 1 << 16)
    ) // ns.block_size
    lbas = offsets.tolist()
    free = collections.deque(range(depth))
    errors: list[object] = []
    wake = threading.Event()
    polled = queue.vector is None

    def completed(slot: int) -> object:
        def callback(result: Completion | Exception) -> None:
            if isinstance(result, Exception) or not result.ok:
                errors.append(result)
            free.append(slot)
            wake.set()

        return callback

    callbacks = [completed(slot) for slot in range(depth)]
    submitted = rung = 0
    start = time.monotonic()
    stop = start + seconds
    try:
        while True:
            ending = time.monotonic() > stop
            while free and not ending:
                slot = free.popleft()
                lba = lbas[submitted % len(lbas)]
                ns.submit(IOOpcode.READ, lba, blocks, (mapping, slot * unit), callbacks[slot],
                          queue, ring=False)  # fmt: skip
                submitted += 1
            if submitted != rung:  # a doorbell write is an exit to the device: only when new
                queue.ring()
                rung = submitted
            if ending and len(free) == depth:
                break
            if polled:
                queue.process_completions()
            else:
                wake.wait(1.0)
                wake.clear()
            if errors:
                raise HwkitError(f"bench read failed: {errors[0]}")
        return submitted / (time.monotonic() - start)
    finally:
        ctrl.mapper.complete(buffer)
        buffer.close()


def hwkit_figures(bdf: str, seconds: float, polled: bool = True) -> Figures:
    """The three figures through hwkit (the function is taken from nvme and given back)."""
    with NVMeController.open(bdf, queue_depth=64, polled=polled) as ctrl:
        ns = ctrl.namespace(1)
        qd1 = _hwkit_reads(ctrl, ns, 1, RANDOM, seconds, sequential=False)
        qd32 = _hwkit_reads(ctrl, ns, 32, RANDOM, seconds, sequential=False)
        seq = _hwkit_reads(ctrl, ns, 1, SEQUENTIAL, seconds, sequential=True)
    return Figures(qd1, qd32, seq * SEQUENTIAL / 1e6)


def compare(address: str = "pci:0000:00:05.0", seconds: float = 3.0, polled: bool = True) -> dict:
    """Measure both drivers on the controller at `address` and print the ratios.

    Returns {"hwkit": Figures, "kernel": Figures, "ratios": {...}}.

    Raises:
        NotFoundError: the kernel has no block device for the controller.
        HwkitError: hwkit could not open the controller, or a read failed.
    """
    bdf = parse_address(address)
    kernel = kernel_figures(bdf, seconds)
    hwkit = hwkit_figures(bdf, seconds, polled)
    block_device(bdf)  # wait for nvme to have it back
    rows = [
        ("4 KiB random read, QD1", "IOPS", hwkit.qd1_iops, kernel.qd1_iops),
        ("4 KiB random read, QD32", "IOPS", hwkit.qd32_iops, kernel.qd32_iops),
        ("128 KiB sequential read", "MB/s", hwkit.seq_mbps, kernel.seq_mbps),
    ]
    mode = "polled" if polled else "MSI-X"
    print(f"NVMe pci:{bdf}: hwkit ({mode}) vs the kernel's nvme driver (O_DIRECT), "
          f"{seconds:g} s per figure")  # fmt: skip
    print(f"{'':26} {'hwkit':>12} {'kernel':>12}  ratio")
    ratios = {}
    for name, unit, ours, theirs in rows:
        ratio = ours / theirs if theirs else float("nan")
        ratios[name] = ratio
        print(f"{name:26} {ours:8.0f} {unit} {theirs:8.0f} {unit}  {ratio:.2f}x")
    return {"hwkit": hwkit, "kernel": kernel, "ratios": ratios}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hwkit.drivers.nvme.bench",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("address", nargs="?", default="pci:0000:00:05.0")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--msix", action="store_true", help="MSI-X completions, not polling")
    args = parser.parse_args(argv)
    compare(args.address, args.seconds, polled=not args.msix)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
