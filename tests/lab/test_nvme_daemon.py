"""NVMe through hwkit-daemon: matched by the shipped personality, started in a driver
host running as ``nobody``, shown by ``hwkit ioreg``, asked by ``hwkit call``, and used
by an application through its user client: random data written from the shared DMA
buffer and read back into it. When the daemon stops, the function goes back to the
kernel's nvme driver, which reads the same bytes from the disk.
"""

import json
import mmap
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hwkit.drivers.nvme import NVMeClient
from hwkit.drivers.nvme.userclient import IDENTITY

from hwkit.errors import BadArgument
from hwkit.lab import inventory, profiles
from hwkit.pci import vfio

pytestmark = pytest.mark.lab("pci")
HWKIT = [sys.executable, "-m", "hwkit.tools.cli"]
LBA = 20480  # 10 MiB into the 64 MiB scratch disk, away from test_nvme.py's patterns
BLOCKS = 512  # 256 KiB


def nvme_bdf() -> str:
    return inventory.pci_functions(inventory.Roots(), profiles.NVME_ID)[0].name


@pytest.fixture(scope="module")
def daemon(tmp_path_factory, hosted_daemon):
    tmp = tmp_path_factory.mktemp("nvme-daemon")
    assert vfio.current_driver(nvme_bdf()) == "nvme"
    with hosted_daemon(tmp, 64 << 20) as (proc, env):
        yield {"proc": proc, "env": env, "log": tmp / "daemon.log"}


def hwkit(env: dict, *args: str) -> str:
    done = subprocess.run([*HWKIT, *args], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_daemon_binds_nvme_and_ioreg_shows_it(daemon) -> None:
    # matching and a driver host under emulation: up to 180 s
    hwkit(daemon["env"], "ioreg", "-w", "NVMeDriver", "--timeout", "180")
    assert "NVMeDriver" in hwkit(daemon["env"], "ioreg")
    tree = hwkit(daemon["env"], "ioreg", "--json")
    assert profiles.NVME_SERIAL in tree and "HWNVMeModel" in tree
    assert vfio.current_driver(nvme_bdf()) == "vfio-pci"


def test_hwkit_call_namespace_info(daemon) -> None:
    out = json.loads(hwkit(daemon["env"], "call", "--json", "NVMeDriver", "namespace_info", "1"))
    assert out["scalars"] == [512, 131072, 64 << 20]
    model, serial, _ = IDENTITY.unpack(bytes.fromhex(out["struct"]))
    assert serial.decode().rstrip() == profiles.NVME_SERIAL
    assert model.decode().rstrip() == "QEMU NVMe Ctrl"
    listed = json.loads(hwkit(daemon["env"], "call", "--json", "NVMeDriver", "namespaces"))
    assert listed["scalars"] == [1] and listed["struct"] == "01000000"


def test_random_data_through_the_shared_buffer_and_back(daemon) -> None:
    data = np.frombuffer(os.urandom(BLOCKS * 512), np.uint8)
    with NVMeClient.open(serial=profiles.NVME_SERIAL) as disk:
        assert disk.namespaces() == [1]
        disk.buffer[: data.size] = data  # straight into the DMA buffer the device reads
        disk.write(1, LBA, count=BLOCKS)
        disk.flush(1)
        disk.buffer[:] = 0
        back = disk.read(1, LBA, BLOCKS, offset=1 << 20)  # into another part of it
        assert np.array_equal(back, data)
        assert not disk.buffer[: data.size].any()  # the first half was left alone
        with pytest.raises(BadArgument, match=r"runs past the end of pci:.* nsid 1"):
            disk.read(1, 131072 - 1, 2)
        with pytest.raises(BadArgument, match="has no active namespace 2"):
            disk.namespace_info(2)
        assert np.array_equal(disk.read(1, LBA, 8), data[: 8 * 512])  # still serving
    daemon["pattern"] = data.tobytes()


def test_after_the_daemon_stops_the_kernel_reads_the_same_bytes(daemon) -> None:
    proc = daemon["proc"]
    proc.send_signal(signal.SIGTERM)
    status = proc.wait(60)
    assert status == 0, daemon["log"].read_text()[-3000:]
    bdf = nvme_bdf()
    assert vfio.current_driver(bdf) == "nvme", daemon["log"].read_text()[-3000:]
    deadline = time.monotonic() + 30
    dev = None
    while dev is None:
        for ns in Path(f"/sys/bus/pci/devices/{bdf}/nvme").glob("nvme*/nvme*n1"):
            if (Path("/dev") / ns.name).exists() and int((ns / "size").read_text()) > 0:
                dev = Path("/dev") / ns.name
        assert dev is not None or time.monotonic() < deadline, "no nvme block device came back"
        time.sleep(0.2)
    buf = mmap.mmap(-1, BLOCKS * 512)  # page aligned, as O_DIRECT wants
    fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
    try:
        assert os.preadv(fd, [buf], LBA * 512) == BLOCKS * 512
        assert bytes(buf) == daemon["pattern"]
    finally:
        os.close(fd)
        buf.close()
