import contextlib
import select
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwkit.errors import BadArgument
from hwkit.uevent import UeventMonitor, parse

# As the kernel sends it when QEMU hot-adds an edu behind a pcie-root-port.
PCI_ADD = (
    b"add@/devices/pci0000:00/0000:00:06.0/0000:01:00.0\0ACTION=add\0"
    b"DEVPATH=/devices/pci0000:00/0000:00:06.0/0000:01:00.0\0SUBSYSTEM=pci\0"
    b"PCI_CLASS=FF00\0PCI_ID=1234:11E8\0PCI_SUBSYS_ID=1AF4:1100\0"
    b"PCI_SLOT_NAME=0000:01:00.0\0MODALIAS=pci:v00001234d000011E8sv00001AF4sd00001100bcFFsc00i00\0"
    b"SEQNUM=2042\0"
)


def test_a_pci_add() -> None:
    event = parse(PCI_ADD)
    assert event is not None
    assert (event.action, event.subsystem, event.sys_name) == ("add", "pci", "0000:01:00.0")
    assert event.env["PCI_ID"] == "1234:11E8" and event.env["SEQNUM"] == "2042"


def test_a_bind_carries_the_driver() -> None:
    event = parse(b"bind@/devices/x/0000:01:00.0\0ACTION=bind\0SUBSYSTEM=pci\0DRIVER=vfio-pci\0")
    assert event is not None and event.env["DRIVER"] == "vfio-pci"


def test_udevd_copies_are_ignored() -> None:
    assert parse(b"libudev\0\xfe\xed\xca\xfe...") is None


@pytest.mark.parametrize(
    "message",
    [b"", b"hello", b"explode@/devices/x\0", b"add@relative\0", b"add@/a\0ACTION=remove\0"],
)
def test_non_uevents_are_refused_with_the_bytes(message: bytes) -> None:
    with pytest.raises(BadArgument, match="uevent"):
        parse(message)


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_are_refused_cleanly(data: bytes) -> None:
    with contextlib.suppress(BadArgument):
        parse(data)


def test_the_monitor_is_non_blocking_and_closes() -> None:
    try:
        monitor = UeventMonitor(subsystems={"pci"})
    except (PermissionError, OSError) as exc:  # some sandboxes forbid netlink
        pytest.skip(f"no netlink here: {exc}")
    with monitor:
        assert monitor.receive() == [] or all(e.subsystem == "pci" for e in monitor.receive())
        assert monitor.fileno() >= 0
    with pytest.raises(Exception, match="closed"):
        monitor.receive()


def test_only_the_kernel_is_believed() -> None:
    """A forged uevent from a user-space sender (port id != 0) is dropped."""
    try:
        monitor = UeventMonitor()
        sender = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 15)
        sender.bind((0, 0))
        address = (monitor.sock.getsockname()[0], 0)
        sender.sendto(PCI_ADD, address)
    except OSError as exc:
        pytest.skip(f"no netlink here: {exc}")
    with monitor, sender:
        select.select([monitor], [], [], 1)
        data, (port, _) = monitor.sock.recvfrom(65536)  # it did arrive, from a process
        assert data == PCI_ADD and port != 0
        sender.sendto(PCI_ADD, address)
        select.select([monitor], [], [], 1)
        assert [e for e in monitor.receive() if e.sys_name == "0000:01:00.0"] == []
