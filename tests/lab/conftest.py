"""What the lab tests of drivers under hwkit-daemon share."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

#: Seconds the daemon gets to report READY=1 and, later, to stop.
DAEMON_TIMEOUT = 120


@contextmanager
def _hosted_daemon(tmp: Path, memory_lock: int) -> Iterator[tuple[subprocess.Popen, dict]]:
    """A hwkit-daemon whose driver hosts run as ``nobody``, once it is ready.

    It logs to ``tmp/daemon.log``, listens on ``tmp/hwkit.sock`` (also put in
    ``$HWKIT_SOCKET``) and is ready when it sends systemd's READY=1. It yields the
    process and the environment for commands that talk to it; on exit it gets SIGTERM
    unless it has already ended, so ``proc.returncode`` is its exit status after.
    """
    sock = str(tmp / "hwkit.sock")
    (tmp / "daemon.toml").write_text(f'[hosts]\nuser = "nobody"\nmemory_lock = {memory_lock}\n')
    # The lab's Python lives under /root (0700 on the host's disk): let other users in,
    # in the guest's overlay only, so a host running as nobody can start.
    os.chmod("/root", 0o711)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp / "notify.sock"))
    notify.settimeout(DAEMON_TIMEOUT)
    env = dict(os.environ, HWKIT_SOCKET=sock, NOTIFY_SOCKET=str(tmp / "notify.sock"))
    with (tmp / "daemon.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "hwkit.tools.daemon", "--socket", sock,
                                 "--config", str(tmp / "daemon.toml")],
                                stdout=log, stderr=log, env=env)  # fmt: skip
    try:
        message = b""
        while b"READY=1" not in message:
            message = notify.recv(4096)
        os.environ["HWKIT_SOCKET"] = sock
        yield proc, env
    finally:
        notify.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(DAEMON_TIMEOUT // 2)


@pytest.fixture(scope="session")
def hosted_daemon() -> Callable[[Path, int], AbstractContextManager]:
    """``with hosted_daemon(tmp, memory_lock) as (proc, env):`` (see :func:`_hosted_daemon`)."""
    return _hosted_daemon
