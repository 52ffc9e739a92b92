"""The whole path with a real daemon: drop a personality in, use the driver, take it out."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys

import numpy as np

from hwkit import client
from hwkit.errors import BadArgument
from hwkit.service import Message

from .conftest import SAMPLE_PLIST, pid_alive, wait_for

SAMPLE = {"IOProviderClass": "SampleDriver"}


def ioreg_json(daemon, *args: str) -> object:
    out = subprocess.run(
        [sys.executable, "-m", "hwkit.tools.cli", "ioreg", "--json", *args],
        env=daemon.env, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return json.loads(out.stdout)


def test_personality_dropped_in_runs_in_its_own_host_and_serves_a_client(start_daemon):
    daemon = start_daemon()
    with client.connect(daemon.socket) as hub:
        assert hub.find(SAMPLE) == []
        matched, terminated = [], []
        arrivals = hub.add_matching_notification("matched", SAMPLE, matched.append)
        assert list(arrivals) == []  # drained: armed
        gone = hub.add_matching_notification("terminated", SAMPLE, terminated.append)
        assert list(gone) == []  # arm it (I/O Kit: drain the iterator)

        daemon.add_personality(SAMPLE_PLIST)
        wait_for(lambda: (hub.dispatch(0.2), matched)[1], 15, "the matched notification")
        service = matched[0]
        pid = service.properties["HWHostPID"]
        assert pid not in (os.getpid(), daemon.proc.pid) and pid_alive(pid)

        # hwkit ioreg --json shows it, in its own process, with its personality.
        [node] = ioreg_json(daemon, "-c", "SampleDriver")
        assert (node["state"], node["personality"], node["pid"]) == ("started", "SampleDriver", pid)
        assert node["path"] == "IOService:/IOResources/SampleDriver"
        tree = ioreg_json(daemon)
        assert [c["name"] for c in tree["children"][0]["children"]] == ["SampleDriver"]

        interest = []
        hub.add_interest_notification(service, lambda *message: interest.append(message))
        with hub.open(service) as conn:
            [uc] = ioreg_json(daemon, "-c", "IOUserClient")  # the connection, as in I/O Kit
            assert uc["class"] == "SampleUserClient" and uc["path"].startswith(node["path"])
            assert uc["properties"]["IOUserClientCreator"].startswith(f"pid {os.getpid()},")
            _use_every_kind_of_method(conn)
            _shared_memory_is_shared(conn)
            _drain_the_data_queue(conn)
            hub.set_properties(service, {"TickIntervalMS": 5})
            assert wait_for(lambda: hub.get_properties(service).get("TickIntervalMS") == 5, 5,
                            "the driver's property to come back")  # fmt: skip

            with hub.open(service):
                pass  # a connection closed at once leaves the registry
            wait_for(lambda: len(ioreg_json(daemon, "-c", "IOUserClient")) == 1, 10, "one left")
            # Personality removed: the driver stops; the client is told three ways.
            (daemon.personalities / SAMPLE_PLIST.name).unlink()
            assert conn.wait_terminated(15)
            gone_message = (service.id, Message.SERVICE_IS_TERMINATED, None)
            wait_for(lambda: (hub.dispatch(0.2), terminated and gone_message in interest)[1], 15,
                     "notifications")  # fmt: skip
            assert terminated[0].id == service.id
            # The interval set above reached the client as a property change, with its key.
            assert interest == [
                (service.id, Message.SERVICE_PROPERTY_CHANGE, ("TickIntervalMS",)), gone_message,
            ]  # fmt: skip
            wait_for(lambda: not pid_alive(pid), 10, "the driver host to exit")
        assert hub.find(SAMPLE) == []
    assert daemon.stop() == 0
    assert not os.path.exists(daemon.socket)
    assert "SampleDriver: personality file changed or removed" in daemon.log()
    assert "Traceback" not in daemon.log()


def _use_every_kind_of_method(conn: client.Connection) -> None:
    assert set(conn.methods) >= {"add", "digest", "swap", "fill", "delay", "produce", "stats"}
    assert conn.call("add", 2, 2**64 - 1).scalars == (1,)
    data = bytes(range(256)) * 40  # 10 KiB: over 4096 bytes, so it travels as a memfd
    result = conn.call("digest", struct=data)
    assert result == ((len(data),), hashlib.sha256(data).digest())
    assert conn.call("swap", struct=struct.pack("<QQ", 1, 2)).struct == struct.pack("<QQ", 2, 1)
    pending = conn.call_async("delay", 30)
    assert pending.immediate.scalars == ()
    assert pending.wait(5).scalars == (30,)
    for bad, expected in [
        (
            lambda: conn.call("add", 1),
            "SampleUserClient.add (selector 0) expects 2 scalar inputs, got 1",
        ),
        (lambda: conn.call("add", -1, 2), "scalar -1 is not an integer in 0..2**64-1"),
        (lambda: conn.call("add", True, 2), "scalar True is not an integer in 0..2**64-1"),
        (
            lambda: conn.call("swap", struct=b"x" * 15),
            "SampleUserClient.swap (selector 2) expects a 16-byte structure input, got 15",
        ),
        (
            lambda: conn.call("digest", struct=b"x", struct_out=31),
            "SampleUserClient.digest (selector 1) expects a 32-byte structure output",
        ),
    ]:
        try:
            bad()
        except BadArgument as exc:
            assert expected in str(exc)
        else:
            raise AssertionError(f"no BadArgument for {expected}")


def _shared_memory_is_shared(conn: client.Connection) -> None:
    status = conn.map_memory(0, np.uint8)
    assert not status.flags.writeable  # the driver shares it read-only (sealed)
    conn.call("fill", 0xA5)
    assert (status[64:] == 0xA5).all()  # the driver's write, seen through the mapping
    ticks = status[:8].view("<u8")
    first = int(ticks[0])
    wait_for(lambda: int(ticks[0]) > first, 5, "the timer's writes to appear with no call")
    scratch = conn.map_memory(2)
    scratch[:4] = [1, 2, 3, 4]
    assert conn.map_memory(2)[:4].tolist() == [1, 2, 3, 4]  # one buffer, two mappings


def _drain_the_data_queue(conn: client.Connection) -> None:
    queue = conn.open_queue(1)
    assert queue.wait_for_data(5)
    seen = []
    while len(seen) < 5:
        assert queue.wait_for_data(5)
        seen += [struct.unpack("<QQ", item)[0] for item in queue.drain()]
    assert seen == sorted(seen) and len(set(seen)) == len(seen)
    done = conn.call_async("produce", 2000, 64)
    received = 0
    while received < 2000:
        assert queue.wait_for_data(5)
        received += sum(len(item) == 64 for item in queue.drain())
    count, _refused = done.wait(10).scalars
    assert (count, received) == (2000, 2000)
    queue.close()
