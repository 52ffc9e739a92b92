"""`hwkit ioreg -w CLASS`: wait for the daemon, then for a driver to publish itself."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from .conftest import SAMPLE_PLIST

IOREG = [sys.executable, "-m", "hwkit.tools.cli", "ioreg"]


def test_wait_covers_a_daemon_not_yet_listening_and_a_driver_not_yet_started(start_daemon):
    daemon = start_daemon()
    daemon.stop()  # its socket is gone: the waiter must wait for the next one
    sock = daemon.socket
    waiter = subprocess.Popen(
        [*IOREG, "--socket", sock, "-w", "SampleDriver", "--timeout", "60", "--json",
         "-c", "SampleDriver"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.0)
        assert waiter.poll() is None, waiter.communicate()
        again = start_daemon(socket_path=sock)
        time.sleep(0.5)
        assert waiter.poll() is None, "returned before the driver existed"
        again.add_personality(SAMPLE_PLIST)
        out, err = waiter.communicate(timeout=60)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert waiter.returncode == 0, err
    [node] = json.loads(out)
    assert node["class"] == "SampleDriver" and node["state"] == "started"


def test_wait_times_out_naming_what_never_came(start_daemon):
    daemon = start_daemon()
    done = subprocess.run(
        [*IOREG, "--socket", daemon.socket, "-w", "SampleDriver", "-w", "NoSuchDriver",
         "--timeout", "1.5"],
        capture_output=True, text=True, timeout=30, env=daemon.env,
    )  # fmt: skip
    assert done.returncode == 1
    assert "after 1.5 s still no NoSuchDriver, SampleDriver" in done.stderr
    nodaemon = subprocess.run(
        [*IOREG, "--socket", daemon.dir / "none.sock", "-w", "X", "--timeout", "0.5"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert nodaemon.returncode == 1 and "the daemon (nothing listens" in nodaemon.stderr
