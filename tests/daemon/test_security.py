"""Who may connect and who may open user clients, with a real daemon.

The tests run as root, so refusals are provoked with personalities restricted to a
uid and a group this process does not have, and from forked children that drop to
``nobody`` (with or without the daemon's group).
"""

from __future__ import annotations

import grp
import os
import pickle
import plistlib
import select
import shutil
import signal
import stat
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hwkit import client
from hwkit.errors import ClosedResourceError, HwkitError, PermissionDenied

from .conftest import CONFIG, DaemonProcess, wait_for

GROUP = "staff"  # present on Debian; the daemon's group in these tests
NOBODY = 65534
CHILD_TIMEOUT = 30.0
SAMPLE = {"IOClass": "hwkit.drivers.sample.SampleDriver",
          "IOUserClientClass": "hwkit.drivers.sample.SampleUserClient",
          "IOProviderClass": "IOResources", "IOResourceMatch": "IOKit"}  # fmt: skip

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change uid")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One daemon for the module (its drivers take seconds to start on a small machine)."""
    folder = tempfile.mkdtemp(prefix="hwkit-security-")
    os.chmod(folder, 0o755)  # nobody must reach the socket; its own mode decides
    personalities = {
        "RootOnly": {**SAMPLE, "IOMatchCategory": "RootOnly", "HWUserClientRootOnly": True},
        "Listed": {**SAMPLE, "IOMatchCategory": "Listed", "HWUserClientUIDs": [4242],
                   "HWUserClientGroups": ["games"]},
        "Open": {**SAMPLE, "IOMatchCategory": "Open"},
    }  # fmt: skip
    running = DaemonProcess(tmp_path_factory.mktemp("security"), [],
                            f'group = "{GROUP}"\n' + CONFIG,
                            os.path.join(folder, "hwkit.sock"))  # fmt: skip
    running.write_personality(
        "three.plist", plistlib.dumps({"IOKitPersonalities": personalities}).decode()
    )
    with client.connect(running.socket) as hub:
        wait_for(lambda: len(hub.find({"IOProviderClass": "SampleDriver"})) == 3, 15, "drivers")
    yield running
    running.stop()
    shutil.rmtree(folder, ignore_errors=True)


def _category(hub: client.DaemonConnection, name: str) -> client.ServiceInfo:
    [found] = hub.find({"IOProviderClass": "SampleDriver",
                        "IOPropertyMatch": {"IOMatchCategory": name}})  # fmt: skip
    return found


def as_user(uid: int, gid: int, fn: Callable[[], Any]) -> Any:
    """Run `fn` in a forked child with the given uid and gid; return or re-raise its result."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            outcome: Any = ("ok", fn())
        except BaseException as exc:  # everything goes back to the parent
            outcome = ("error", type(exc).__name__, str(exc))
        with os.fdopen(write, "wb") as out:
            pickle.dump(outcome, out)
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as incoming:
        if not select.select([incoming], [], [], CHILD_TIMEOUT)[0]:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"the child running as uid {uid} gave no answer in time")
        outcome = pickle.load(incoming)
    os.waitpid(pid, 0)
    return outcome


def test_socket_is_0660_with_the_configured_group(daemon):
    info = os.stat(daemon.socket)
    assert stat.S_IMODE(info.st_mode) == 0o660
    assert info.st_gid == grp.getgrnam(GROUP).gr_gid


def test_personality_restricted_to_a_uid_and_group_refuses_root(daemon):
    assert os.getuid() != 4242 and grp.getgrnam("games").gr_gid not in os.getgroups()
    with client.connect(daemon.socket) as hub:
        with pytest.raises(PermissionDenied) as refused:
            hub.open(_category(hub, "Listed"))
        assert "allowed uids [4242] and groups ['games']" in str(refused.value)
        with pytest.raises(PermissionDenied):  # nor may it set the driver's properties
            hub.set_properties(_category(hub, "Listed"), {"TickIntervalMS": 10})
        with hub.open(_category(hub, "Open")) as conn:  # the daemon goes on serving
            assert conn.call("add", 1, 2).scalars == (3,)
    assert "refused: uid" not in daemon.log()  # credentials are printed as 'pid N uid N'
    assert "refused: pid" in daemon.log() and "HWUserClientUIDs" in daemon.log()


def test_member_of_the_group_connects_but_root_only_client_is_refused(daemon):
    staff = grp.getgrnam(GROUP).gr_gid

    def open_both() -> list[str]:
        outcomes = []
        with client.connect(daemon.socket) as hub:
            for name in ("RootOnly", "Open"):
                try:
                    with hub.open(_category(hub, name)) as conn:
                        outcomes.append(f"{name}: {conn.call('add', 2, 3).scalars}")
                except HwkitError as exc:
                    outcomes.append(f"{name}: {type(exc).__name__}: {exc}")
        return outcomes

    status, outcomes = as_user(NOBODY, staff, open_both)
    assert status == "ok", outcomes
    assert outcomes[0].startswith("RootOnly: PermissionDenied") and "uid 65534" in outcomes[0]
    assert "HWUserClientRootOnly" in outcomes[0]
    assert outcomes[1] == "Open: (5,)"


def test_user_outside_the_group_cannot_connect(daemon):
    outcome = as_user(NOBODY, NOBODY, lambda: client.connect(daemon.socket).server_version)
    assert outcome[:2] == ("error", ClosedResourceError.__name__)
    assert "Permission denied" in outcome[2]
    os.chmod(daemon.socket, 0o666)  # even with the file open to all, SO_PEERCRED decides
    try:
        outcome = as_user(NOBODY, NOBODY, lambda: client.connect(daemon.socket).server_version)
    finally:
        os.chmod(daemon.socket, 0o660)
    assert outcome[:2] == ("error", PermissionDenied.__name__)
    assert f"not root and not in group '{GROUP}'" in outcome[2]
    assert "refused connection from pid" in daemon.log()
