"""The daemon's other modes and the client's other flavours: --in-process, SIGHUP, asyncio,
and I/O Kit's arming rule for matching notifications."""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import time
from pathlib import Path

import numpy as np

from hwkit import client

from .conftest import CONFIG, SAMPLE_PLIST, wait_for

SAMPLE = {"IOProviderClass": "SampleDriver"}


def test_in_process_mode_runs_the_driver_in_the_daemon(start_daemon):
    daemon = start_daemon("--in-process")
    daemon.add_personality(SAMPLE_PLIST)
    with client.connect(daemon.socket) as hub:
        [service] = wait_for(lambda: hub.find(SAMPLE), 15, "the sample driver")
        assert "HWHostPID" not in service.properties
        tree = hub.registry()
        [driver] = tree["children"][0]["children"]
        assert driver["state"] == "started" and "pid" not in driver
        with hub.open(service) as conn:
            assert conn.call("add", 20, 22).scalars == (42,)
            [connection] = hub.registry()["children"][0]["children"][0]["children"]
            assert connection["class"] == "SampleUserClient"
            status = conn.map_memory(0)
            conn.call("fill", 9)
            assert status[64] == 9
            queue = conn.open_queue(1)
            assert queue.wait_for_data(5) and queue.drain()
            queue.close()
        wait_for(lambda: not hub.registry()["children"][0]["children"][0]["children"], 5,
                 "the connection to leave the registry")  # fmt: skip
    assert daemon.stop() == 0


def test_sighup_reloads_personalities(start_daemon):
    daemon = start_daemon(config=CONFIG.replace("rescan_interval = 0.2", "rescan_interval = 3600"))
    daemon.add_personality(SAMPLE_PLIST)
    with client.connect(daemon.socket) as hub:
        time.sleep(0.5)
        assert hub.find(SAMPLE) == []  # not rescanned yet
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: hub.find(SAMPLE), 15, "the driver after SIGHUP")
        (daemon.personalities / SAMPLE_PLIST.name).unlink()
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: not hub.find(SAMPLE), 15, "the driver to stop after SIGHUP")
    assert "SIGHUP: rescanning personalities" in daemon.log()


def test_matching_notifications_fire_only_once_armed(start_daemon):
    daemon = start_daemon()
    plist = daemon.add_personality(SAMPLE_PLIST)
    with client.connect(daemon.socket) as hub:
        [first] = wait_for(lambda: hub.find(SAMPLE), 15, "the sample driver")
        calls: list[client.ServiceInfo] = []
        note = hub.add_matching_notification("matched", SAMPLE, calls.append)
        plist.unlink()  # the driver goes, then comes back: a new match
        wait_for(lambda: not hub.find(SAMPLE), 15, "the driver to stop")
        daemon.add_personality(SAMPLE_PLIST)
        wait_for(lambda: hub.find(SAMPLE), 15, "the driver to come back")
        hub.dispatch(0.3)
        assert calls == []  # not armed: the new service waits in the iterator
        drained = list(note)
        assert drained[0].id == first.id and len(drained) == 2  # existing ones first
        assert drained[1].id != first.id
        os.kill(drained[1].properties["HWHostPID"], 9)  # restarted after backoff
        wait_for(lambda: (hub.dispatch(0.1), calls)[1], 15, "the callback once armed")
        assert calls[0].id not in (first.id, drained[1].id)


def test_asyncio_client(start_daemon):
    daemon = start_daemon()
    daemon.add_personality(SAMPLE_PLIST)

    async def use() -> None:
        async with await client.connect_async(daemon.socket) as hub:
            arrived = asyncio.Event()
            note = await hub.add_matching_notification("matched", SAMPLE, lambda s: arrived.set())
            existing = list(note)
            if not existing:
                await asyncio.wait_for(arrived.wait(), 15)
            [service] = await hub.find(SAMPLE)
            assert (await hub.get_properties(service))["IOMatchCategory"] == "SampleDriver"
            async with await hub.open(service) as conn:
                assert (await conn.call("add", 5, 6)).scalars == (11,)
                assert (await conn.call_async("delay", 10)).scalars == (10,)
                data = struct.pack("<QQ", 7, 8)
                assert (await conn.call("swap", struct=data)).struct == struct.pack("<QQ", 8, 7)
                status = await conn.map_memory(0, np.uint8)
                await conn.call("fill", 3)
                assert status[64] == 3
                queue = await conn.open_queue(1)
                await asyncio.wait_for(queue.wait_for_data_async(), 5)
                assert len(queue.drain()[0]) == 16
                queue.close()

    asyncio.run(asyncio.wait_for(use(), 60))


def test_the_daemon_and_its_driver_hosts_run_on_uvloop_when_it_is_installed(start_daemon):
    """Both start through hwkit.workloop.run (asyncio.run would leave uvloop unused)."""
    import importlib.util

    daemon = start_daemon()
    daemon.add_personality(SAMPLE_PLIST)
    with client.connect(daemon.socket) as hub:
        [service] = wait_for(lambda: hub.find(SAMPLE), 15, "the sample driver")
        host = service.properties["HWHostPID"]
    installed = importlib.util.find_spec("uvloop") is not None
    for pid in (daemon.proc.pid, host):
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert ("uvloop" in maps) == installed, f"process {pid}: uvloop loaded is not {installed}"
