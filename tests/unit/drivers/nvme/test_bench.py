"""The benchmark's hwkit side against the spec model (the figures come from the lab)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hwkit.drivers.nvme import NVMeController, bench, spec
from hwkit.drivers.nvme.spec import IOOpcode

from hwkit.errors import BadArgument

HERE = Path(__file__).parent


@pytest.fixture
def ctrl(nub):
    controller = NVMeController(nub, polled=True, queue_depth=16)
    controller.start()
    yield controller
    controller.close()


@pytest.mark.parametrize(
    ("depth", "unit", "sequential"), [(1, 4096, False), (8, 4096, False), (4, 128 << 10, True)]
)
def test_reads_keep_the_depth_and_read_what_the_disk_holds(ctrl, model, depth, unit,
                                                          sequential) -> None:  # fmt: skip
    model.disk[:] = np.random.default_rng(3).integers(0, 256, len(model.disk), np.uint8).tobytes()
    rate = bench._hwkit_reads(ctrl, ctrl.namespace(1), depth, unit, 0.3, sequential)
    reads = [c for c in model.commands if c == (1, IOOpcode.READ)]
    assert rate > 0 and len(reads) >= 1
    assert ctrl.io_queues[0].statistics()["in_flight"] == 0  # every read was reaped


def test_commands_are_built_at_once_and_checked() -> None:
    class Ctrl:
        address = "pci:0000:00:05.0"
        max_transfer = 512 << 10

    ident = spec.IdentifyNamespace.parse(
        (HERE / "data" / "qemu-7.2-identify-namespace-1.bin").read_bytes()
    )
    from hwkit.drivers.nvme.namespace import Namespace

    ns = Namespace(Ctrl(), 1, ident)  # type: ignore[arg-type]
    with pytest.raises(BadArgument, match="lba 131064 \\+ 16 blocks runs past the end"):
        ns.commands(IOOpcode.READ, np.array([131064]), 16)
    ns.blocks = 1 << 40  # a big namespace: an lba past 32 bits goes to CDW11
    entries = ns.commands(IOOpcode.READ, np.array([0, 8, (1 << 32) + 5]), 8)
    assert entries["opc"].tolist() == [2, 2, 2] and set(entries["nsid"].tolist()) == {1}
    assert entries["cdw10"].tolist() == [0, 8, 5] and entries["cdw11"].tolist() == [0, 0, 1]
    assert entries["cdw12"].tolist() == [7, 7, 7]
    with pytest.raises(BadArgument, match=r"outside 1\.\.65536"):
        ns.commands(IOOpcode.READ, np.array([0]), 0)


def test_report_puts_each_figure_next_to_the_kernels() -> None:
    rows = [("4 KiB random read QD1, IOPS", 1000.0, 4000.0), ("x", 5.0, 0.0)]
    text = bench.report(rows, "pci:0000:00:05.0", 3, polled=True)
    assert "hwkit (polled) vs the kernel's nvme driver (fio" in text
    assert "4 KiB random read QD1, IOPS" in text and "0.25x" in text and "nanx" in text
