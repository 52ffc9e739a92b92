"""PCI hot-plug with drivers bound: a hot-added edu is matched and started; pulling it
makes the kernel ask for it back (VFIO's request interrupt), hwkit's driver stops and
releases it, and only then can QEMU finish the removal."""

import queue
import re
import signal
import sys

import pytest

from hwkit.lab import profiles
from hwkit.lab.machine import Lab


class Lines:
    """Output of a guest command, as lines, waited for by pattern."""

    def __init__(self) -> None:
        self.queue: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.everything: list[str] = []
        self._partial = b""

    def feed(self, data: bytes) -> None:
        self._partial += data
        *complete, self._partial = self._partial.split(b"\n")
        for line in complete:
            self.queue.put(line.decode(errors="replace"))
            self.everything.append(line.decode(errors="replace"))

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        try:
            while True:
                line = self.queue.get(timeout=timeout)
                self.seen.append(line)
                if match := re.search(pattern, line):
                    return match
        except queue.Empty:
            seen = "\n".join(self.seen)
            raise AssertionError(f"no line matching {pattern!r}; saw:\n{seen}") from None


@pytest.mark.lab("pci", host=True)
def test_hot_added_edu_is_started_and_surprise_removal_releases_it(lab: Lab) -> None:
    lines = Lines()
    session = lab.spawn([sys.executable, "-m", "hwkit.inprocess", "--follow"], stdout=lines.feed,
                        stderr=lines.feed)  # fmt: skip
    try:
        lines.wait_for("following hot-plug", 120)
        lab.qmp.device_add("edu", bus=profiles.HOTPLUG_PORT, id="edu-hotplug")
        bdf = lines.wait_for(r"started EduDriver on pci:(\S+)", 60)[1]
        assert not bdf.startswith("0000:00:")  # behind the root port, not the boot edu
        # QEMU completes device_del only once the guest released the function
        lab.qmp.device_del("edu-hotplug", wait=60)
        lines.wait_for(rf"terminated pci:{re.escape(bdf)}", 30)
    finally:
        session.signal(signal.SIGTERM)
        result = session.wait(60)
    assert result.status == 0, "\n".join(lines.seen)


HOSTS_AS_NOBODY = '[hosts]\nuser = "nobody"\nmemory_lock = 67108864\n'


@pytest.mark.lab("pci", host=True)
def test_the_daemon_survives_a_surprise_removal_of_a_hosted_driver(lab: Lab) -> None:
    """Through hwkit-daemon, hosts unprivileged: the host holds the VFIO descriptors the
    daemon passed, so it is the host that must let go for device_del to complete; then
    the daemon stops the host, finds the function gone and keeps serving the rest."""
    lines = Lines()
    script = (
        'chmod 711 /root && printf \'%s\' "$1" > /tmp/hwkitd.toml && exec "$2" -m '
        "hwkit.tools.daemon --socket /tmp/hwkitd.sock --config /tmp/hwkitd.toml"
    )
    daemon = lab.spawn(["sh", "-c", script, "sh", HOSTS_AS_NOBODY, sys.executable],
                       stdout=lines.feed, stderr=lines.feed)  # fmt: skip
    try:
        lines.wait_for(r"EduDriver started on IOService:/pci1234,11e8@0000:00:", 240)
        lab.qmp.device_add("edu", bus=profiles.HOTPLUG_PORT, id="edu-hotplug")
        started = r"hwkit-host\[(\d+)\].*EduDriver started on IOService:/pci1234,11e8@0000:0[1-9]"
        host = lines.wait_for(started, 120)[1]  # behind the root port: the hot-added one
        lab.qmp.device_del("edu-hotplug", wait=60)  # completes only once the host let go
        lines.wait_for(rf"host {host} exited with status 0", 60)
        call = [sys.executable, "-m", "hwkit.tools.cli", "call", "--socket", "/tmp/hwkitd.sock",
                "EduDriver", "factorial", "7"]  # fmt: skip
        done = lab.run(call, timeout=120)  # the boot edu's driver still serves
        assert done.status == 0 and "5040" in done.stdout.decode(), done
    finally:
        daemon.signal(signal.SIGTERM)
        result = daemon.wait(90)
    log = "\n".join(lines.everything)
    assert result.status == 0, log
    assert "cannot return the function" not in log, log
