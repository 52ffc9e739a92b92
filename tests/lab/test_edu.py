"""The edu driver, bound by hwkit's matching to QEMU's edu behind the real vfio-pci.

Runs in the pci guest: the registry, catalogue (the shipped drivers/) and matching
engine run in this process, as `hwkit` does a driver in-process without the daemon.
"""

import os

import pytest

from hwkit.dma import DMABuffer
from hwkit.inprocess import Session, pci_nubs
from hwkit.lab import profiles
from hwkit.pci import discovery, vfio
from hwkit.pci.nubs import PCIDevice

pytestmark = pytest.mark.lab("pci")


@pytest.fixture(scope="module")
def bound():
    """Every PCI function published; the edu driver instance that matching started."""
    with Session() as session:
        session.publish_all(pci_nubs())
        edu_nub = next(n for n in session.nubs if n.function.vendor_id == 0x1234)
        drivers = [c for c in edu_nub.clients() if type(c).__name__ == "EduDriver"]
        yield session, edu_nub, drivers


def test_matching_binds_the_edu_driver_and_only_it(bound) -> None:
    _, nub, drivers = bound
    assert len(drivers) == 1
    assert drivers[0].get_property("IOProbeScore") is not None
    assert vfio.current_driver(nub.bdf) == "vfio-pci"


def test_identity_and_interrupt_kind(bound) -> None:
    _, _, (edu,) = bound
    assert edu.version == "1.0"
    assert edu.get_property("HWInterruptType") in ("MSI", "INTX")


@pytest.mark.parametrize(
    ("n", "expected"), [(0, 1), (1, 1), (5, 120), (10, 3628800), (12, 479001600)]
)
def test_factorial_completes_by_interrupt(bound, n: int, expected: int) -> None:
    _, _, (edu,) = bound
    before = edu.interrupts
    assert edu.factorial(n) == expected
    assert edu.interrupts == before + 1


@pytest.mark.parametrize("length", [1, 64, 1000, 4095])
def test_dma_round_trip_of_random_data(bound, length: int) -> None:
    _, _, (edu,) = bound
    data = os.urandom(length)
    before = edu.interrupts
    edu.write(data)
    edu.buffer.mmap[:length] = bytes(length)  # so the read must really come back
    assert edu.read(length) == data
    assert edu.interrupts == before + 2


def test_dma_at_an_offset(bound) -> None:
    _, _, (edu,) = bound
    edu.write(b"hwkit" * 10, device_offset=100)
    assert edu.read(50, device_offset=100) == b"hwkit" * 10


def test_dma_reaching_the_buffer_end_is_refused_before_the_device_sees_it(bound) -> None:
    _, _, (edu,) = bound
    with pytest.raises(Exception, match="strictly inside"):
        edu.write(b"x" * 4096)
    with pytest.raises(Exception, match="strictly inside"):
        edu.read(10, device_offset=4090)


def test_hugepage_buffers_map_through_the_iommu(bound) -> None:
    _, nub, (edu,) = bound
    with open("/proc/sys/vm/nr_hugepages", "w") as f:
        f.write("4")
    buffer = DMABuffer(2 << 20, name="huge", hugepages=True)
    try:
        mapping = edu.dma.prepare(buffer)
        assert mapping.size == 2 << 20 and mapping.iova + mapping.size <= 1 << 28
        assert nub.opened.container.mappings[mapping.iova] == 2 << 20
        edu.dma.complete(buffer)
        assert mapping.iova not in nub.opened.container.mappings
    finally:
        buffer.close()


def test_terminating_the_nub_returns_the_function_to_its_previous_driver(bound) -> None:
    """Terminate (as a removal does): the driver stops and the function goes back."""
    session, nub, drivers = bound
    previous = nub.function.driver  # what sysfs showed before hwkit bound it
    session.terminate(nub)
    assert not drivers[0].is_started
    assert vfio.current_driver(nub.bdf) == previous
    again = PCIDevice(discovery.read_function(nub.function.sysfs_path))
    assert again.map_bar(0).read32(0) & 0xFF == 0xED
    assert vfio.current_driver(nub.bdf) == "vfio-pci"
    again.close_device()
    assert vfio.current_driver(nub.bdf) == previous
    assert f"{nub.function.vendor_id:04x}:{nub.function.device_id:04x}" == profiles.EDU_ID


def test_intx_is_unmasked_after_each_handler() -> None:
    """VFIO automasks INTx when it fires: without the unmask the second one never comes."""
    import threading

    from hwkit.workloop import WorkLoop

    fn = next(f for f in discovery.list_functions() if f.vendor_id == 0x1234)
    nub = PCIDevice(fn)
    loop = WorkLoop("intx")
    nub.use_work_loop(loop)
    fired = threading.Semaphore(0)
    try:
        regs = nub.map_bar(0)
        nub.set_command(memory=True, bus_master=True)

        def handler(source: object, count: int) -> None:
            regs.write32(0x64, regs.read32(0x24))  # acknowledge at the device first
            fired.release()

        source = nub.interrupt_source(None, handler, vfio.PciIrq.INTX)
        loop.add_event_source(source)
        source.enable()
        for _ in range(3):
            regs.write32(0x60, 1)  # edu.rst: raise an interrupt
            assert fired.acquire(timeout=5), "INTx did not fire (was it unmasked?)"
        loop.remove_event_source(source)
    finally:
        nub.close_device()
        loop.close()
