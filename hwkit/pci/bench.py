"""`hwkit bench pci`: the cost of hwkit's PCI path next to C doing the same I/O.

On an edu function (QEMU's; in the lab: ``hwkit lab run --profile pci -- hwkit bench
pci``), in one run:

- MMIO read and write cost per 32-bit access: :class:`hwkit.mmio.Registers` against
  a C program that mmaps the same BAR through the same VFIO calls (``edu_ref.c``,
  compiled on first use);
- interrupt-to-handler latency: edu raises MSI on a register write; hwkit's figure is
  from the write until the handler runs on the driver's work loop (eventfd, epoll,
  loop thread, then a wake-up of the waiting thread), C's until its blocking read of the
  eventfd returns.

- on QEMU's NVMe controller (1b36:0010, or the function named by ``--nvme``), in the
  same run: 4 KiB random reads at queue depth 1 and 32 (IOPS) and 128 KiB sequential
  reads (MB/s), hwkit's NVMe driver against the kernel's nvme driver on the same
  namespace, measured by fio (see :mod:`hwkit.drivers.nvme.bench`, whose docstring
  says where the difference goes). The function is taken from nvme for hwkit's part
  and given back. Real NVMe drives are never picked on their own: they hold file
  systems.

Each figure is printed next to its reference as a ratio: hwkit / C for the edu
latencies (1.0 is C's speed, lower is better), hwkit / kernel for the NVMe throughputs
(higher is better). Under the lab's software emulation an MMIO access costs
microseconds in QEMU itself, so the ratios there say how much Python adds to a trap,
not what real hardware shows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import threading
import time
from importlib import resources
from pathlib import Path

from hwkit.errors import MissingDependency, NotFoundError
from hwkit.pci import discovery, vfio

EDU = (0x1234, 0x11E8)
QEMU_NVME = (0x1B36, 0x0010)
REG_ID, REG_LIVENESS, REG_IRQ_STATUS, REG_IRQ_RAISE, REG_IRQ_ACK = 0x00, 0x04, 0x24, 0x60, 0x64


def reference_binary() -> Path:
    """Compile edu_ref.c (once per source version) into the cache; return its path."""
    from hwkit.lab.assets import cache_dir

    source = resources.files("hwkit.pci").joinpath("edu_ref.c").read_bytes()
    target = cache_dir() / "bench" / f"edu_ref-{hashlib.sha256(source).hexdigest()[:12]}"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise MissingDependency("no C compiler: install Debian packages gcc and linux-libc-dev")
    target.parent.mkdir(parents=True, exist_ok=True)
    src = target.with_suffix(".c")
    src.write_bytes(source)
    done = subprocess.run(
        [compiler, "-O2", "-o", str(target), str(src)], capture_output=True, text=True
    )
    if done.returncode != 0:
        why = done.stderr.strip()
        raise MissingDependency(f"compiling the C reference failed (linux-libc-dev?): {why}")
    return target


def find_edu(address: str | None) -> discovery.PCIFunction:
    if address:
        return discovery.find_function(address)
    for fn in discovery.list_functions():
        if (fn.vendor_id, fn.device_id) == EDU:
            return fn
    raise NotFoundError("no edu function (1234:11e8) here: run in the lab (--profile pci)")


def find_nvme(address: str | None) -> discovery.PCIFunction | None:
    """The NVMe function to measure: `address`, else QEMU's NVMe if nvme drives it."""
    if address:
        return discovery.find_function(address)
    for fn in discovery.list_functions():
        if (fn.vendor_id, fn.device_id) == QEMU_NVME and vfio.current_driver(fn.bdf) == "nvme":
            return fn
    return None


def bench_hwkit(fn: discovery.PCIFunction, mmio_n: int, irq_n: int) -> dict[str, object]:
    """hwkit's figures: Registers accessors, and an interrupt source on a work loop."""
    from hwkit.pci.nubs import PCIDevice
    from hwkit.workloop import WorkLoop

    nub = PCIDevice(fn)
    loop = WorkLoop("bench")
    nub.use_work_loop(loop)
    try:
        regs = nub.map_bar(0)
        nub.set_command(memory=True, bus_master=True)
        read32, write32 = regs.read32, regs.write32
        start = time.perf_counter_ns()
        for _ in range(mmio_n):
            read32(REG_ID)
        middle = time.perf_counter_ns()
        for i in range(mmio_n):
            write32(REG_LIVENESS, i)
        end = time.perf_counter_ns()

        handled = threading.Event()
        stamps: list[int] = []

        def handler(source: object, count: int) -> None:
            stamps.append(time.perf_counter_ns())
            regs.write32(REG_IRQ_ACK, regs.read32(REG_IRQ_STATUS))
            handled.set()

        source = nub.interrupt_source(None, handler, vfio.PciIrq.MSI)
        loop.add_event_source(source)
        source.enable()
        latencies = []
        for _ in range(irq_n):
            handled.clear()
            raised = time.perf_counter_ns()
            regs.write32(REG_IRQ_RAISE, 1)
            if not handled.wait(5):
                raise NotFoundError(f"{nub.address}: no interrupt within 5 s of raising one")
            latencies.append((stamps[-1] - raised) / 1000)
        loop.remove_event_source(source)
        return {
            "read_ns": (middle - start) / mmio_n,
            "write_ns": (end - middle) / mmio_n,
            "irq_us": latencies,
        }
    finally:
        nub.close_device()
        loop.close()


def bench_c(fn: discovery.PCIFunction, mmio_n: int, irq_n: int) -> dict[str, object]:
    binary = reference_binary()
    previous = vfio.bind(fn.bdf)
    try:
        group = vfio.iommu_group(fn.bdf)
        done = subprocess.run(
            [str(binary), fn.bdf, str(group), str(mmio_n), str(irq_n)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if done.returncode != 0:
            raise NotFoundError(f"the C reference failed on {fn.address}: {done.stderr.strip()}")
        return json.loads(done.stdout)
    finally:
        vfio.release(fn.bdf, previous)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(mine: dict, ref: dict, fn: discovery.PCIFunction, mmio_n: int, irq_n: int) -> str:
    irq, ref_irq = mine["irq_us"], ref["irq_us"]
    rows = [
        ("MMIO read32, ns/access", mine["read_ns"], ref["read_ns"]),
        ("MMIO write32, ns/access", mine["write_ns"], ref["write_ns"]),
        ("interrupt -> handler p50, us", statistics.median(irq), statistics.median(ref_irq)),
        ("interrupt -> handler p99, us", percentile(irq, 0.99), percentile(ref_irq, 0.99)),
    ]
    lines = [
        f"hwkit bench pci on {fn.address} (edu), {mmio_n} MMIO accesses, {irq_n} interrupts each",
        f"{'':32} {'hwkit':>10} {'C (VFIO)':>10} {'hwkit/C':>8}",
    ]
    for name, a, b in rows:
        lines.append(f"{name:32} {a:10.1f} {b:10.1f} {a / b:7.2f}x")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("hwkit bench pci: needs root (VFIO and sysfs binding)")
        return 1
    fn = find_edu(args.address)
    mine = bench_hwkit(fn, args.mmio, args.irqs)
    ref = bench_c(fn, args.mmio, args.irqs)
    print(report(mine, ref, fn, args.mmio, args.irqs))
    nvme = None if args.no_nvme else find_nvme(args.nvme)
    if nvme is None:
        if not args.no_nvme:
            print("\nno QEMU NVMe driven by nvme here: NVMe figures skipped (--nvme ADDRESS)")
        return 0
    from hwkit.drivers.nvme import bench as nvme_bench

    rows = nvme_bench.compare(nvme.address, args.seconds, polled=not args.msix)
    print()
    print(nvme_bench.report(rows, nvme.address, args.seconds, polled=not args.msix))
    return 0


def register_bench(benches: argparse._SubParsersAction) -> None:
    p = benches.add_parser(
        "pci", help="MMIO, interrupts (vs C) and NVMe throughput (vs the kernel's nvme)"
    )
    p.add_argument("address", nargs="?", help="an edu function (default: the first found)")
    p.add_argument("--mmio", type=int, default=20000, help="MMIO accesses per figure")
    p.add_argument("--irqs", type=int, default=500, help="interrupts per figure")
    p.add_argument(
        "--nvme",
        metavar="ADDRESS",
        help="NVMe function to measure (default: QEMU's, if nvme drives it)",
    )
    p.add_argument("--no-nvme", action="store_true", help="skip the NVMe figures")
    p.add_argument("--seconds", type=float, default=3.0, help="seconds per NVMe figure")
    p.add_argument(
        "--msix",
        action="store_true",
        help="NVMe completions by MSI-X on the work loop instead of polling",
    )
    p.set_defaults(func=run)
