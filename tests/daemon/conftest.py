"""Fixtures for tests that run a real hwkit-daemon process.

Every daemon gets its own socket, config and personality folder under tmp_path, fast
health checks and restart backoff, and ``$NOTIFY_SOCKET`` pointed at the test, which
waits for ``READY=1`` as systemd would. The folder of this file is on the daemon's
``PYTHONPATH`` so the test drivers in ``faulty.py`` can be loaded by driver hosts.
Every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SAMPLE_PLIST = ROOT / "drivers" / "sample.plist"
READY_TIMEOUT = 20.0

CONFIG = """\
rescan_interval = 0.2
shipped_drivers = false
[restart]
limit = 2
backoff = 0.3
backoff_max = 2.0
[health]
interval = 0.3
timeout = 1.0
"""


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> object:
    """Poll `predicate` until it returns something true; fail the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class DaemonProcess:
    """A running hwkit-daemon and the paths around it."""

    def __init__(
        self, tmp: Path, extra_args: list[str], config: str, socket_path: str | None = None
    ) -> None:
        self.dir = tmp
        self.socket = socket_path or str(tmp / "hwkit.sock")
        self.personalities = tmp / "personalities"
        self.personalities.mkdir(exist_ok=True)
        self.config = tmp / "daemon.toml"
        self.config.write_text(config)
        self.log_path = tmp / "daemon.log"
        notify_path = tmp / "notify.sock"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(str(notify_path))
        env = dict(os.environ, NOTIFY_SOCKET=str(notify_path), HWKIT_SOCKET=self.socket)
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
        self.env = env
        command = [sys.executable, "-m", "hwkit.tools.daemon", "--config", str(self.config),
                   "--socket", self.socket, "--personalities", str(self.personalities),
                   *extra_args]  # fmt: skip
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(command, stderr=self._log, stdout=self._log, env=env)
        self.notify.settimeout(0.2)
        deadline = time.monotonic() + READY_TIMEOUT
        message = ""
        while "READY=1" not in message:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"daemon not ready (status {self.proc.returncode}):\n"
                                     f"{self.log()}")  # fmt: skip
            try:
                message = self.notify.recv(4096).decode()
            except TimeoutError:
                continue

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def add_personality(self, source: Path, name: str | None = None) -> Path:
        """Drop a personality file in (written then renamed, as an installer would)."""
        target = self.personalities / (name or source.name)
        partial = self.dir / (target.name + ".partial")
        shutil.copyfile(source, partial)
        partial.rename(target)
        return target

    def write_personality(self, name: str, text: str) -> Path:
        partial = self.dir / (name + ".partial")
        partial.write_text(text)
        target = self.personalities / name
        partial.rename(target)
        return target

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait; returns the exit status (kills after `timeout`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.notify.close()
        self._log.close()
        return self.proc.returncode


@pytest.fixture
def start_daemon(tmp_path: Path) -> Iterator[Callable[..., DaemonProcess]]:
    """Start daemons (``start_daemon(*args, config=...)``); all are stopped at the end."""
    started: list[DaemonProcess] = []

    def start(*args: str, config: str = CONFIG, socket_path: str | None = None) -> DaemonProcess:
        folder = tmp_path / f"daemon{len(started)}"
        folder.mkdir()
        daemon = DaemonProcess(folder, list(args), config, socket_path)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.stop()


def personality(name: str, io_class: str, **extra: object) -> str:
    """A personality file matching IOResources, as XML text."""
    import plistlib

    table = {"IOClass": io_class, "IOProviderClass": "IOResources",
             "IOResourceMatch": "IOKit", "IOMatchCategory": "Sample", **extra}  # fmt: skip
    return plistlib.dumps({"IOKitPersonalities": {name: table}}).decode()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:  # a zombie is gone for our purposes
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
