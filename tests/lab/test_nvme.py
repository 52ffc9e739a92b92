"""The NVMe driver against QEMU's NVMe model behind the real vfio-pci, in the pci guest.

The order matters and is the file's: the kernel writes a pattern first, matching binds
the driver and reads it, then one controller (module fixture) serves the data, error,
timeout and reset tests, and the last test closes it and has the kernel read back what
hwkit wrote.
"""

from __future__ import annotations

import mmap
import os
import time
from pathlib import Path

import numpy as np
import pytest
from hwkit.drivers.nvme import NVMeController, NVMeStatusError, NVMeTimeout, spec

from hwkit.errors import BadArgument
from hwkit.inprocess import Session, pci_nubs
from hwkit.lab import inventory, profiles
from hwkit.pci import vfio

pytestmark = pytest.mark.lab("pci")

KERNEL_LBA = 2048  # blocks of 512 bytes: the kernel's pattern at 1 MiB
HWKIT_LBA = 4096  # hwkit's pattern at 2 MiB
PATTERN = 64 * 1024


def _bdf() -> str:
    return inventory.pci_functions(inventory.Roots(), profiles.NVME_ID)[0].name


def _block_device(bdf: str, timeout: float = 30.0) -> Path:
    """The kernel's namespace device of `bdf` once the nvme driver has it again."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ctrl in Path(f"/sys/bus/pci/devices/{bdf}/nvme").glob("nvme*"):
            for ns in ctrl.glob(f"{ctrl.name}n1"):
                dev = Path("/dev") / ns.name
                if dev.exists() and int((ns / "size").read_text()) > 0:
                    return dev
        time.sleep(0.2)
    raise AssertionError(f"no namespace block device for {bdf} after {timeout} s")


def _direct_io(dev: Path, offset: int, data: bytes | None = None, size: int = 0) -> bytes:
    """O_DIRECT read or write (an aligned anonymous mapping as the buffer)."""
    flags = (os.O_RDWR if data is not None else os.O_RDONLY) | os.O_DIRECT
    length = len(data) if data is not None else size
    buf = mmap.mmap(-1, length)
    fd = os.open(dev, flags)
    try:
        if data is not None:
            buf[:] = data
            assert os.pwritev(fd, [buf], offset) == length
            os.fsync(fd)
            return data
        assert os.preadv(fd, [buf], offset) == length
        return bytes(buf)
    finally:
        os.close(fd)
        buf.close()


@pytest.fixture(scope="module")
def kernel_side() -> dict:
    """Before hwkit takes the function: identity as the kernel saw it, and a pattern
    the kernel wrote (O_DIRECT, so it is on the device, not in a cache)."""
    bdf = _bdf()
    assert vfio.current_driver(bdf) == "nvme"
    sysfs = next(Path(f"/sys/bus/pci/devices/{bdf}/nvme").glob("nvme*"))
    pattern = np.random.default_rng(1).integers(0, 256, PATTERN, dtype=np.uint8).tobytes()
    _direct_io(_block_device(bdf), KERNEL_LBA * 512, pattern)
    return {
        "bdf": bdf,
        "model": (sysfs / "model").read_text().strip(),
        "firmware": (sysfs / "firmware_rev").read_text().strip(),
        "serial": (sysfs / "serial").read_text().strip(),
        "pattern": pattern,
    }


def test_matching_binds_the_nvme_driver_and_it_reads_what_the_kernel_wrote(kernel_side):
    bdf = kernel_side["bdf"]
    with Session() as session:
        session.publish_all(pci_nubs())
        (driver,) = session.drivers("NVMeDriver")
        assert driver.provider.bdf == bdf
        assert vfio.current_driver(bdf) == "vfio-pci"
        assert driver.get_property("HWNVMeSerial") == profiles.NVME_SERIAL
        ns = driver.namespace(1)
        data = ns.read(KERNEL_LBA, PATTERN // ns.block_size)
        assert data.tobytes() == kernel_side["pattern"]
    assert vfio.current_driver(bdf) == "nvme"


@pytest.fixture(scope="module")
def ctrl(kernel_side):
    with NVMeController.open(f"pci:{kernel_side['bdf']}", queue_depth=32) as controller:
        yield controller


def test_identify_strings_are_what_the_lab_set(ctrl, kernel_side) -> None:
    ident = ctrl.identity
    assert ident.serial == profiles.NVME_SERIAL == kernel_side["serial"]
    assert ident.model == "QEMU NVMe Ctrl" == kernel_side["model"]
    assert ident.firmware == kernel_side["firmware"]
    assert (ident.vid, ident.ssvid) == (0x1B36, 0x1AF4)
    assert ident.subnqn == f"nqn.2019-08.org.qemu:{profiles.NVME_SERIAL}"
    assert ctrl.active_namespaces == [1]


def test_namespace_is_the_64_mib_scratch_disk(ctrl) -> None:
    ns = ctrl.namespace(1)
    assert ns.size == 64 << 20
    assert ns.block_size == 512


def test_write_then_read_with_msix_completions(ctrl) -> None:
    ns = ctrl.namespace(1)
    queue = ctrl.io_queues[0]
    assert queue.vector == 1
    before = queue.statistics()["interrupts"]
    data = np.random.default_rng(2).integers(0, 256, 8 * 512, dtype=np.uint8)
    ns.write(100, data)
    assert np.array_equal(ns.read(100, 8), data)
    ns.flush()
    assert queue.statistics()["interrupts"] >= before + 3


def test_polled_queue_reads_and_writes(ctrl) -> None:
    ns = ctrl.namespace(1)
    polled = ctrl.create_io_queue(8, polled=True)
    try:
        data = np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)
        ns.write(200, data, queue=polled)
        assert np.array_equal(ns.read(200, 8, queue=polled), data)
        assert polled.statistics()["interrupts"] == 0
        assert polled.statistics()["completed"] == 2
    finally:
        ctrl.delete_io_queue(polled)


def test_transfers_beyond_mdts_are_split_and_use_prp_lists(ctrl) -> None:
    ns = ctrl.namespace(1)
    data = np.random.default_rng(4).integers(0, 256, 3 << 20, dtype=np.uint8)
    ns.write(8192, data)
    assert np.array_equal(ns.read(8192, data.size // 512), data)


def test_bad_input_gives_clear_errors(ctrl) -> None:
    ns = ctrl.namespace(1)
    where = f"pci:{ctrl.nub.bdf} nsid 1"
    with pytest.raises(NVMeStatusError) as info:
        ns.read(ns.blocks, 1)
    assert str(info.value) == (
        f"READ failed on {where} lba {ns.blocks}: LBA OUT OF RANGE (sct 0, sc 0x80)"
    )
    assert info.value.status.sc == 0x80
    with pytest.raises(NVMeStatusError, match=r"WRITE failed .* LBA OUT OF RANGE"):
        ns.write(ns.blocks - 1, bytes(1024))  # runs one block past the end
    with pytest.raises(BadArgument, match="count must be at least 1"):
        ns.read(12, 0)
    with pytest.raises(BadArgument, match="not a multiple of the 512-byte block"):
        ns.write(12, b"abc")
    with pytest.raises(BadArgument, match="count must be at least 1"):
        ns.write(12, b"")
    with pytest.raises(BadArgument, match="no active namespace 7"):
        ctrl.namespace(7)
    assert np.array_equal(ns.read(100, 1), ns.read(100, 1))  # still working


@pytest.mark.parametrize("polled", [True, False], ids=["polled", "msix"])
def test_command_to_a_deleted_queue_times_out_and_the_reset_recovers(ctrl, polled) -> None:
    """The device deletes the queue (a real admin command); the host still submits to
    it: the doorbell write is ignored by the controller, so nothing ever completes."""
    ns = ctrl.namespace(1)
    victim = ctrl.create_io_queue(8, polled=polled)
    ctrl.admin_command(spec.delete_io_sq(victim.qid), "DELETE IO SQ")
    ctrl.admin_command(spec.delete_io_cq(victim.qid), "DELETE IO CQ")
    resets = ctrl.resets
    ctrl.command_timeout = 1.0
    try:
        with pytest.raises(NVMeTimeout, match=r"READ of 1 blocks at lba 0 timed out .* reset"):
            ns.read(0, 1, queue=victim)
    finally:
        ctrl.command_timeout = 5.0
    assert ctrl.resets == resets + 1
    assert ctrl.state.value == "ready"
    # every queue the host had was recreated, the victim included
    data = np.arange(512, dtype=np.uint16).view(np.uint8)[:512].copy()
    ns.write(300, data, queue=victim)
    assert np.array_equal(ns.read(300, 1), data)  # on the MSI-X queue
    ctrl.delete_io_queue(victim)


def test_an_admin_command_the_controller_holds_times_out_and_the_reset_recovers(ctrl) -> None:
    """An Asynchronous Event Request completes only when an event happens (NVMe 1.4
    §5.2), and nothing happens here: a real admin command the device keeps, not a
    doorbell left unrung. The admin queue times out, the reset recovers both queues."""
    ns = ctrl.namespace(1)
    before = ns.read(100, 8)
    resets = ctrl.resets
    aer = spec.Command(spec.AdminOpcode.ASYNC_EVENT_REQUEST)
    with pytest.raises(NVMeTimeout, match=r"ASYNC EVENT REQUEST timed out .* after 0.5 s "
                       r"\(queue 0, .*the controller was reset"):  # fmt: skip
        ctrl.admin_command(aer, "ASYNC EVENT REQUEST", timeout=0.5)
    assert ctrl.resets == resets + 1
    assert ctrl.state.value == "ready"
    assert ctrl.identify_namespace(1).nsze == ns.blocks  # the admin queue answers again
    assert np.array_equal(ns.read(100, 8), before)  # and the I/O queue


def test_a_requested_reset_keeps_the_data_and_queues(ctrl) -> None:
    ns = ctrl.namespace(1)
    before = ns.read(100, 8)
    ctrl.reset()
    assert np.array_equal(ns.read(100, 8), before)


def test_hwkit_writes_then_the_kernel_reads_after_release(ctrl, kernel_side) -> None:
    """Last: closes the module's controller (clean shutdown) and hands the function back."""
    ns = ctrl.namespace(1)
    pattern = np.random.default_rng(5).integers(0, 256, PATTERN, dtype=np.uint8)
    ns.write(HWKIT_LBA, pattern)
    ns.flush()
    ctrl.close()
    assert ctrl.state.value == "closed"
    bdf = kernel_side["bdf"]
    dev = _block_device(bdf)
    assert vfio.current_driver(bdf) == "nvme"
    assert _direct_io(dev, HWKIT_LBA * 512, size=PATTERN) == pattern.tobytes()
