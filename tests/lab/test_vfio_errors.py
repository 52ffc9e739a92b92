"""VFIO's refusals, provoked for real, give errors that say what to do and leave nothing
half bound."""

import subprocess
import sys

import pytest

from hwkit.errors import BusyResourceError
from hwkit.lab import inventory, profiles
from hwkit.pci import vfio

pytestmark = pytest.mark.lab("pci")


def test_a_group_that_is_not_viable_names_the_device_holding_it() -> None:
    first, second = (
        p.name for p in inventory.pci_functions(inventory.Roots(), profiles.VIRTIO_RNG_ID)
    )
    before = vfio.current_driver(first)
    assert before == "virtio-pci"
    with pytest.raises(BusyResourceError) as caught:
        vfio.open_device(first)
    message = str(caught.value)
    assert f"{second} is still bound to virtio-pci" in message
    assert f"/sys/bus/pci/devices/{second}/driver_override" in message
    assert vfio.current_driver(first) == before  # the failed open gave it back


# Run in a child: it drops CAP_IPC_LOCK (root's exemption from the locked-memory limit)
# and lowers RLIMIT_MEMLOCK, then asks to pin more than that for DMA.
MEMLOCK_CHILD = r"""
import ctypes, resource, sys
from hwkit.dma import DMABuffer
from hwkit.errors import HwkitError
from hwkit.lab import inventory, profiles
from hwkit.pci import discovery
from hwkit.pci.nubs import PCIDevice

CAP_IPC_LOCK = 14
class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
class Data(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]
libc = ctypes.CDLL(None, use_errno=True)
header, data = Header(0x20080522, 0), (Data * 2)()
assert libc.capget(ctypes.byref(header), data) == 0
data[0].effective &= ~(1 << CAP_IPC_LOCK)
data[0].permitted &= ~(1 << CAP_IPC_LOCK)
assert libc.capset(ctypes.byref(header), data) == 0, ctypes.get_errno()
resource.setrlimit(resource.RLIMIT_MEMLOCK, (64 << 10, 64 << 10))

edu = inventory.pci_functions(inventory.Roots(), profiles.EDU_ID)[0]
nub = PCIDevice(discovery.read_function(edu))
buffer = DMABuffer(1 << 20)
try:
    nub.dma_mapper(28).prepare(buffer)
except HwkitError as exc:
    print(exc)
    sys.exit(0)
finally:
    nub.close_device()
sys.exit("pinning 1 MiB under a 64 KiB RLIMIT_MEMLOCK succeeded")
"""


def test_rlimit_memlock_exhaustion_is_explained() -> None:
    done = subprocess.run([sys.executable, "-c", MEMLOCK_CHILD], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "RLIMIT_MEMLOCK is too small" in done.stdout
    assert "ulimit -l" in done.stdout


def test_nubs_say_whether_their_group_is_viable() -> None:
    from hwkit.inprocess import pci_nubs

    nubs = {n.bdf: n for n in pci_nubs()}
    first, second = (
        p.name for p in inventory.pci_functions(inventory.Roots(), profiles.VIRTIO_RNG_ID)
    )
    assert nubs[first].get_property("HWIOMMUGroupViable") is False
    assert nubs[first].get_property("HWIOMMUGroupBlockers") == [f"{second} (virtio-pci)"]
    edu = inventory.pci_functions(inventory.Roots(), profiles.EDU_ID)[0].name
    assert nubs[edu].get_property("HWIOMMUGroupViable") is True
