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
        self._partial = b""

    def feed(self, data: bytes) -> None:
        self._partial += data
        *complete, self._partial = self._partial.split(b"\n")
        for line in complete:
            self.queue.put(line.decode(errors="replace"))

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
