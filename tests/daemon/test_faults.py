"""Faults with a real daemon: killed and hung driver hosts, a driver raising in start."""

from __future__ import annotations

import os
import plistlib
import signal
import time

from hwkit import client
from hwkit.service import Message

from .conftest import SAMPLE_PLIST, pid_alive, wait_for

SAMPLE = {"IOProviderClass": "SampleDriver"}


def _next_driver(hub: client.DaemonConnection, matched: list, known: int) -> client.ServiceInfo:
    wait_for(lambda: (hub.dispatch(0.1), len(matched) > known)[1], 15, "a (re)started driver")
    return matched[known]


def _watch_then_add_sample(hub: client.DaemonConnection, daemon) -> list[client.ServiceInfo]:
    """Arm a 'matched' notification for the sample driver, then drop its personality in."""
    matched: list[client.ServiceInfo] = []
    list(hub.add_matching_notification("matched", SAMPLE, matched.append))
    daemon.add_personality(SAMPLE_PLIST)
    return matched


def test_killed_host_is_restarted_with_backoff_then_marked_failed(start_daemon):
    daemon = start_daemon()
    with client.connect(daemon.socket) as hub:
        matched = _watch_then_add_sample(hub, daemon)
        service = _next_driver(hub, matched, 0)
        interest: list[tuple[int, int]] = []
        hub.add_interest_notification(service, lambda sid, msg, arg: interest.append((sid, msg)))
        conn = hub.open(service)
        assert conn.call("add", 1, 1).scalars == (2,)

        gaps = []
        for restart in (1, 2):
            pid = service.properties["HWHostPID"]
            killed = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            if restart == 1:
                assert conn.wait_terminated(5)  # the client learns its driver is gone
                wait_for(lambda: (hub.dispatch(0.1), interest)[1], 5, "the interest message")
                assert interest == [(service.id, Message.SERVICE_IS_TERMINATED)]
            service = _next_driver(hub, matched, restart)
            gaps.append(time.monotonic() - killed)
            assert service.properties["HWHostPID"] != pid
            assert daemon.proc.poll() is None
            resources = hub.lookup(path="IOService:/IOResources")
            assert resources.properties["HWRestartCount"] == restart
        assert gaps[0] >= 0.3 and gaps[1] >= 0.6  # backoff 0.3 s, doubling

        os.kill(service.properties["HWHostPID"], signal.SIGKILL)  # third failure: limit is 2
        resources = wait_for(
            lambda: hub.lookup(path="IOService:/IOResources").properties.get("HWState") == "failed"
            and hub.lookup(path="IOService:/IOResources"), 10, "the failed state")  # fmt: skip
        reason = resources.properties["HWFailureReason"]
        assert "killed by SIGKILL" in reason and "restart limit 2 reached" in reason
        time.sleep(1.5)  # longer than the next backoff would be
        assert hub.find(SAMPLE) == []  # not restarted
        conn.close()
    # The daemon still serves new clients; reinstalling the personality clears the failure.
    with client.connect(daemon.socket) as hub:
        assert hub.lookup(path="IOService:/IOResources").properties["HWState"] == "failed"
        (daemon.personalities / SAMPLE_PLIST.name).unlink()
        daemon.add_personality(SAMPLE_PLIST)
        wait_for(lambda: hub.find(SAMPLE), 15, "the driver after its personality was reloaded")
        assert "HWState" not in hub.lookup(path="IOService:/IOResources").properties
    assert daemon.stop() == 0


def test_hung_host_is_detected_by_health_checks(start_daemon):
    daemon = start_daemon()
    with client.connect(daemon.socket) as hub:
        matched = _watch_then_add_sample(hub, daemon)
        pid = _next_driver(hub, matched, 0).properties["HWHostPID"]
        os.kill(pid, signal.SIGSTOP)  # alive, but answers nothing
        restarted = _next_driver(hub, matched, 1)
        assert restarted.properties["HWHostPID"] != pid
        wait_for(lambda: not pid_alive(pid), 5, "the hung host to be killed")
    assert "stopped answering health checks" in daemon.log()


def test_driver_raising_in_start_lets_the_next_candidate_start(start_daemon):
    daemon = start_daemon()
    table = {
        "IOProviderClass": "IOResources", "IOResourceMatch": "IOKit",
        "IOMatchCategory": "Sample",
    }  # fmt: skip
    document = {"IOKitPersonalities": {
        "Raising": {**table, "IOClass": "faulty.RaisingDriver", "IOProbeScore": 20},
        "Declining": {**table, "IOClass": "faulty.DecliningDriver", "IOProbeScore": 10},
        "Sample": {**table, "IOClass": "hwkit.drivers.sample.SampleDriver",
                   "IOUserClientClass": "hwkit.drivers.sample.SampleUserClient"},
    }}  # fmt: skip
    daemon.write_personality("three.plist", plistlib.dumps(document).decode())
    with client.connect(daemon.socket) as hub:
        [service] = wait_for(lambda: hub.find(SAMPLE), 15, "the sample driver")
        with hub.open(service) as conn:
            assert conn.call("add", 40, 2).scalars == (42,)
        running = hub.find({"IOProviderClass": "IOService",
                            "IOPropertyMatch": {"IOMatchCategory": "Sample"}})  # fmt: skip
        assert [s.class_name for s in running] == ["SampleDriver"]
    log = daemon.log()
    assert "start() raised RuntimeError: simulated start failure" in log
    assert "probe() declined the device" in log


def test_child_nubs_published_in_a_host_are_matched_and_go_with_their_parent(start_daemon):
    daemon = start_daemon()
    table = {"IOProviderClass": "IOResources", "IOResourceMatch": "IOKit",
             "IOClass": "faulty.ParentDriver", "IOMatchCategory": "Parent"}  # fmt: skip
    child = {"IOProviderClass": "HWTestChild", "IOClass": "faulty.ChildDriver"}
    parent_file = daemon.write_personality(
        "parent.plist", plistlib.dumps({"IOKitPersonalities": {"Parent": table}}).decode()
    )
    daemon.write_personality(
        "child.plist", plistlib.dumps({"IOKitPersonalities": {"Child": child}}).decode()
    )
    with client.connect(daemon.socket) as hub:
        [driver] = wait_for(lambda: hub.find({"IOProviderClass": "ChildDriver"}), 20, "child")
        assert driver.path == "IOService:/IOResources/ParentDriver/child@7/ChildDriver"
        assert driver.properties["HWSeenUnit"] == 7
        [parent] = hub.find({"IOProviderClass": "ParentDriver"})
        pids = {parent.properties["HWHostPID"], driver.properties["HWHostPID"]}
        assert len(pids) == 2  # one host per driver
        published = hub.add_matching_notification("published", {"IOProviderClass": "HWTestChild"})
        assert [s.path for s in published] == ["IOService:/IOResources/ParentDriver/child@7"]
        parent_file.unlink()
        wait_for(lambda: not hub.find({"IOProviderClass": "ChildDriver"}), 15, "the subtree")
        wait_for(lambda: not any(pid_alive(p) for p in pids), 10, "both hosts to exit")


def test_sigterm_stops_drivers_leaves_first_and_exits_0(start_daemon):
    daemon = start_daemon()
    tables = {
        "Parent": {"IOProviderClass": "IOResources", "IOResourceMatch": "IOKit",
                   "IOClass": "faulty.ParentDriver", "IOMatchCategory": "Parent"},
        "Child": {"IOProviderClass": "HWTestChild", "IOClass": "faulty.ChildDriver"},
    }  # fmt: skip
    daemon.write_personality("tree.plist", plistlib.dumps({"IOKitPersonalities": tables}).decode())
    with client.connect(daemon.socket) as hub:
        wait_for(lambda: hub.find({"IOProviderClass": "ChildDriver"}), 20, "the child driver")
    assert daemon.stop() == 0
    lines = daemon.log().splitlines()

    def stopped(path: str) -> int:
        return next(i for i, line in enumerate(lines)
                    if line.startswith(f"<6>hwkit-daemon: hwkit.service: {path} (")
                    and line.endswith("-> stopped"))  # fmt: skip

    child = stopped("IOService:/IOResources/ParentDriver/child@7/ChildDriver")
    assert child < stopped("IOService:/IOResources/ParentDriver")
