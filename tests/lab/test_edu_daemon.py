"""edu through hwkit-daemon: matched by the shipped personality, started in a driver
host of its own, reached by applications through its user client (hwkit call, the client
library: factorials, DMA through a mapped buffer, interrupt notes in a data queue).

The daemon runs as root and its driver hosts as ``nobody`` (``[hosts] user``): the
daemon binds the function to vfio-pci and passes the VFIO descriptors, so every test
here also shows an unprivileged driver doing MMIO, interrupts and IOMMU DMA.
"""

import json
import os
import pwd
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hwkit.drivers.edu import INTERRUPT_NOTE

from hwkit import client
from hwkit.lab import inventory, profiles
from hwkit.pci import vfio

pytestmark = pytest.mark.lab("pci")
HWKIT = [sys.executable, "-m", "hwkit.tools.cli"]
HOST_MEMLOCK = 64 << 20


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, hosted_daemon):
    tmp = tmp_path_factory.mktemp("daemon")
    previous = vfio.current_driver(edu_bdf())
    with hosted_daemon(tmp, HOST_MEMLOCK) as (proc, env):
        yield proc, env, tmp
    assert proc.returncode == 0, (tmp / "daemon.log").read_text()[-3000:]
    # The daemon bound the function for the host; it gives it back.
    assert vfio.current_driver(edu_bdf()) == previous, (tmp / "daemon.log").read_text()


def edu_bdf() -> str:
    return inventory.pci_functions(inventory.Roots(), profiles.EDU_ID)[0].name


def started(env) -> dict:
    done = subprocess.run([*HWKIT, "ioreg", "--json"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_daemon_binds_edu_in_a_driver_host(daemon) -> None:
    _, env, _ = daemon
    deadline = time.monotonic() + 180  # matching and a driver host under emulation
    while "EduDriver" not in json.dumps(started(env)):
        assert time.monotonic() < deadline, "EduDriver did not start"
        time.sleep(0.5)
    assert vfio.current_driver(edu_bdf()) == "vfio-pci"


def host_pid() -> int:
    with client.connect() as hwkitd:
        (service,) = hwkitd.find({"IOProviderClass": "EduDriver"})
        return int(service.properties["HWHostPID"])


def test_the_driver_host_runs_as_nobody_without_capabilities(daemon) -> None:
    pid = host_pid()
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    nobody = pwd.getpwnam("nobody")
    assert status["Uid"].split() == [str(nobody.pw_uid)] * 4
    assert status["Gid"].split()[0] == str(nobody.pw_gid)
    assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0
    assert resource.prlimit(pid, resource.RLIMIT_MEMLOCK) == (HOST_MEMLOCK, HOST_MEMLOCK)
    # It holds the VFIO container, group and device the daemon opened for it...
    targets = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    assert "/dev/vfio/vfio" in targets
    assert "anon_inode:[vfio-device]" in targets, targets
    assert any(t.startswith("/dev/vfio/") and t[10:].isdigit() for t in targets), targets
    # ...and the daemon keeps none of them (the device resets when the host closes them).
    daemon_pid = daemon[0].pid
    ours = {
        os.readlink(f"/proc/{daemon_pid}/fd/{fd}") for fd in os.listdir(f"/proc/{daemon_pid}/fd")
    }
    assert not any("vfio" in t for t in ours), ours


def test_hwkit_call_factorial(daemon) -> None:
    _, env, _ = daemon
    for n, expected in ((5, 120), (10, 3628800), (12, 479001600)):
        done = subprocess.run([*HWKIT, "call", "--json", "EduDriver", "factorial", str(n)],
                              capture_output=True, text=True, env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert expected in json.loads(done.stdout)["scalars"], done.stdout


def test_dma_through_the_mapped_buffer_and_interrupt_notes(daemon) -> None:
    with client.connect() as hwkitd:
        (service,) = hwkitd.find({"IOProviderClass": "EduDriver"})
        with hwkitd.open(service) as conn:
            buffer = conn.map_memory(0)
            queue = conn.open_queue(1)
            data = os.urandom(3000)
            buffer[:3000] = memoryview(data)  # straight into the driver's DMA buffer
            conn.call("dma_to_device", 3000, 0)
            buffer[:3000] = 0
            conn.call("dma_from_device", 3000, 0)
            assert bytes(buffer[:3000]) == data
            before = conn.call("interrupts").scalars[0]
            conn.call("factorial", 6)
            assert conn.call("interrupts").scalars[0] == before + 1
            assert queue.wait_for_data(5.0)
            notes = [INTERRUPT_NOTE.unpack(entry) for entry in queue.drain()]
            assert notes and notes[-1][1] == before + 1  # the driver's count at that interrupt
            del buffer


def test_a_bad_call_is_refused_and_the_driver_goes_on(daemon) -> None:
    with client.connect() as hwkitd:
        (service,) = hwkitd.find({"IOProviderClass": "EduDriver"})
        with hwkitd.open(service) as conn:
            with pytest.raises(Exception, match="strictly inside"):
                conn.call("dma_to_device", 4096, 0)  # would abort QEMU's edu: refused first
            with pytest.raises(Exception, match="factorial"):
                conn.call("factorial", 1, 2)  # wrong scalar count
            assert conn.call("factorial", 4).scalars == (24,)
