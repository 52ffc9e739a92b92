"""The NVMe user client against the spec model: served over a socket pair on the
driver's work loop as a driver host serves it, called through the script API."""

from __future__ import annotations

import grp
import os
from pathlib import Path

import numpy as np
import pytest
from hwkit.drivers.nvme import NVMeClient, NVMeDriver, NVMeUserClient
from hwkit.drivers.nvme.spec import IOOpcode
from hwkit.matching.personality import load_file

from hwkit.broker import check_user_client_access
from hwkit.client import Connection
from hwkit.errors import BadArgument, HwkitError, PermissionDenied
from hwkit.ipc import Credentials, seqpacket_pair
from hwkit.registry import RegistryEntry
from hwkit.userclient import UserClientServer

HERE = Path(__file__).parent

PLIST = HERE.parents[3] / "drivers" / "nvme" / "NVMeDriver.plist"
BUFFER = 1 << 20


@pytest.fixture
def driver(nub):
    nvme = NVMeDriver()
    nvme.init({"NVMePolled": True, "NVMeQueueDepth": 8, "NVMeClientBufferSize": BUFFER})
    assert nvme.start(nub)
    nvme.controller.command_timeout = 0.5
    yield nvme
    nvme.stop(nvme.controller.nub)
    nvme.get_work_loop().close()


def serve(driver: NVMeDriver) -> Connection:
    ours, theirs = seqpacket_pair()
    creds = Credentials(os.getpid(), os.getuid(), os.getgid())

    async def start() -> None:
        UserClientServer(theirs, NVMeUserClient(driver, creds, 0))

    driver.get_work_loop().submit(start).result(5)
    return Connection(ours, timeout=5)


@pytest.fixture
def disk(driver):
    with NVMeClient(serve(driver)) as client:
        yield client


def test_namespaces_and_their_identity(disk) -> None:
    assert disk.namespaces() == [1]
    info = disk.namespace_info(1)
    assert (info.block_size, info.blocks, info.capacity) == (512, 131072, 64 << 20)
    assert info.model == "QEMU NVMe Ctrl"
    assert info.serial and info.firmware
    assert disk.buffer.size == BUFFER
    assert disk.connection.call("buffer_size").scalars == (BUFFER,)


def test_the_device_moves_blocks_straight_between_disk_and_the_shared_buffer(
    disk, model, driver
) -> None:
    data = np.random.default_rng(1).integers(0, 256, 8 * 512, dtype=np.uint8)
    disk.buffer[4096 : 4096 + data.size] = data
    disk.write(1, lba=40, count=8, offset=4096)
    assert bytes(model.disk[40 * 512 : 48 * 512]) == data.tobytes()
    # The client queue, not the synchronous API's: nothing went through a bounce buffer.
    qid = driver.client_queue.qid
    assert (qid, IOOpcode.WRITE) in model.commands
    model.disk[48 * 512 : 50 * 512] = b"\xa5" * 1024
    view = disk.read(1, lba=48, count=2, offset=12)
    assert view.base is not None and np.shares_memory(view, disk.buffer)
    assert view.tobytes() == b"\xa5" * 1024 and int(disk.buffer[12]) == 0xA5
    disk.flush(1)
    assert (qid, IOOpcode.FLUSH) in model.commands


def test_a_transfer_beyond_mdts_is_cut_into_commands(disk, model, driver) -> None:
    per = driver.namespace(1).blocks_per_command
    blocks = BUFFER // 512
    assert blocks > per  # QEMU's MDTS (512 KiB) is less than the buffer
    data = np.random.default_rng(2).integers(0, 256, BUFFER, dtype=np.uint8)
    model.disk[:BUFFER] = data.tobytes()
    before = len(model.commands)
    assert np.array_equal(disk.read(1, 0, blocks), data)
    assert len(model.commands) - before == -(-blocks // per)


def test_data_from_elsewhere_is_copied_in_and_a_view_is_written_in_place(disk, model) -> None:
    disk.write(1, lba=7, data=bytes(range(256)) * 2)
    assert bytes(model.disk[7 * 512 : 8 * 512]) == bytes(range(256)) * 2
    view = disk.read(1, lba=7, count=1, offset=2048)
    disk.write(1, lba=9, data=view)  # from offset 2048, where it is
    assert bytes(model.disk[9 * 512 : 10 * 512]) == bytes(range(256)) * 2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (("read", 7, 0, 1, 0), r"has no active namespace 7 \(active: \[1\]\)"),
        (("namespace_info", 2), r"has no active namespace 2"),
        (("flush", 0), r"has no active namespace 0"),
        (
            ("read", 1, 131071, 2, 0),
            r"READ of 2 blocks at lba 131071 runs past the end of "
            r"pci:0000:00:05.0 nsid 1 \(131072 blocks of 512 bytes\)",
        ),
        (
            ("write", 1, 2**64 - 1, 1, 0),
            r"WRITE of 1 blocks at lba 18446744073709551615 runs "
            r"past the end",
        ),
        (("read", 1, 0, 0, 0), r"READ of 0 blocks on pci:0000:00:05.0 nsid 1: at least 1"),
        (("read", 1, 0, 1, 6), r"buffer offset 6 is not a multiple of 4"),
        (
            ("write", 1, 0, 2, BUFFER - 512),
            r"WRITE of 2 blocks \(1024 bytes\) at buffer offset "
            rf"{BUFFER - 512} runs past the end of the {BUFFER}-byte shared buffer",
        ),
        (("read", 1, 0, 1, 2**64 - 4), r"runs past the end of the .*shared buffer"),
    ],
)
def test_calls_outside_the_namespace_or_buffer_are_refused_by_name(disk, model, call,
                                                                   message) -> None:  # fmt: skip
    io = [c for c in model.commands if c[0] != 0]
    with pytest.raises(BadArgument, match=message):
        disk.connection.call(*call)
    assert [c for c in model.commands if c[0] != 0] == io  # refused before any I/O command
    assert disk.read(1, 0, 1).size == 512  # and the connection still serves


def test_io_before_mapping_the_buffer_is_refused(driver) -> None:
    conn = serve(driver)
    try:
        with pytest.raises(BadArgument, match=r"map the shared buffer first \(map_memory\(0\)\)"):
            conn.call("read", 1, 0, 1, 0)
        with pytest.raises(BadArgument, match="no memory type 1"):
            conn.map_memory(1)
    finally:
        conn.close()


def test_each_connection_has_its_own_buffer_freed_when_it_closes(driver) -> None:
    mapper = driver.controller.mapper
    mapped = len(mapper._maps)
    first, second = NVMeClient(serve(driver)), NVMeClient(serve(driver))
    assert len(mapper._maps) == mapped + 2
    first.buffer[:512] = 1
    second.buffer[:512] = 2
    first.write(1, 0, count=1)
    second.read(1, 0, 1)
    assert int(second.buffer[0]) == 1 and int(first.buffer[0]) == 1
    first.close()
    second.close()
    for _ in range(100):  # the close is answered before client_close runs on the loop
        if len(mapper._maps) == mapped:
            break
        driver.get_work_loop().run_sync(lambda: None)
    assert len(mapper._maps) == mapped


def test_a_command_the_device_never_answers_times_out_and_the_reset_recovers(
    disk, model, driver
) -> None:
    model.deaf.add(driver.client_queue.qid)
    resets = driver.controller.resets
    with pytest.raises(HwkitError, match=r"READ on pci:0000:00:05.0 nsid 1 timed out .* "
                       r"after 0.5 s .*the controller was reset"):  # fmt: skip
        disk.read(1, 0, 1)
    model.deaf.clear()
    assert driver.controller.resets == resets + 1
    model.disk[:512] = b"\x11" * 512
    assert disk.read(1, 0, 1).tobytes() == b"\x11" * 512


def _entry() -> RegistryEntry:
    (personality,) = load_file(PLIST)[0]
    return RegistryEntry("NVMeDriver", personality.table)


def test_personality_names_the_user_client_and_lets_in_root_and_disk_only() -> None:
    table = load_file(PLIST)[0][0].table
    assert table["IOUserClientClass"] == "hwkit.drivers.nvme.NVMeUserClient"
    assert table["HWUserClientUIDs"] == [0] and table["HWUserClientGroups"] == ["disk"]
    entry = _entry()
    disk_gid = grp.getgrnam("disk").gr_gid
    check_user_client_access(entry, Credentials(1, 0, 0))  # root
    check_user_client_access(entry, Credentials(1, 1000, 1000, (disk_gid,)))  # in disk
    with pytest.raises(PermissionDenied, match=r"allowed uids \[0\] and groups \['disk'\]"):
        check_user_client_access(entry, Credentials(1, 65534, 65534))  # nobody
