"""edu through hwkit-daemon: matched by the shipped personality, started in a driver
host of its own, reached by applications through its user client (hwkit call, the client
library: factorials, DMA through a mapped buffer, interrupt notes in a data queue)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from hwkit.drivers.edu import INTERRUPT_NOTE

from hwkit import client
from hwkit.lab import inventory, profiles
from hwkit.pci import vfio

pytestmark = pytest.mark.lab("pci")
HWKIT = [sys.executable, "-m", "hwkit.tools.cli"]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("daemon")
    sock = str(tmp / "hwkit.sock")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp / "notify.sock"))
    notify.settimeout(120)
    env = dict(os.environ, HWKIT_SOCKET=sock, NOTIFY_SOCKET=str(tmp / "notify.sock"))
    log = (tmp / "daemon.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "hwkit.tools.daemon", "--socket", sock],
                            stdout=log, stderr=log, env=env)  # fmt: skip
    try:
        message = b""
        while b"READY=1" not in message:
            message = notify.recv(4096)
        os.environ["HWKIT_SOCKET"] = sock
        yield proc, env, tmp
    finally:
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(60)
        notify.close()
        assert status == 0, (tmp / "daemon.log").read_text()[-3000:]


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
