"""Who driver hosts run as: the config's [hosts] table and the personality overrides."""

from __future__ import annotations

import logging
import os
import pwd
from pathlib import Path

import pytest
from hwkit.matching.personality import parse_personalities

from hwkit.daemon import DaemonConfig, main
from hwkit.errors import BadArgument, NotFoundError
from hwkit.supervisor import HostIdentity

UDEV = Path(__file__).resolve().parents[2] / "udev"


def test_the_sample_config_runs_hosts_unprivileged():
    hosts = DaemonConfig.load(UDEV / "daemon.toml").hosts
    assert hosts.user == "hwkit-driver"
    assert hosts.memory_lock == 256 << 20


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"hosts": {"user": 0}}, "'user' must be a user or group name"),
        ({"hosts": {"user": ""}}, "'user' must be a user or group name"),
        ({"hosts": {"memory_lock": -1}}, "'memory_lock' must be bytes"),
        ({"hosts": {"memory_lock": True}}, "'memory_lock' must be bytes"),
        ({"hosts": {"uid": 5}}, "'uid' is not a setting (user, group, memory_lock)"),
        ({"hosts": 3}, "[hosts] must be a table"),
    ],
)
def test_bad_hosts_settings_name_the_key(table, message):
    with pytest.raises(BadArgument) as caught:
        DaemonConfig.from_mapping(table, "daemon.toml")
    assert message in str(caught.value) and "daemon.toml" in str(caught.value)


def test_unset_means_the_daemons_own_identity():
    assert HostIdentity().resolve() == (None, None, None)
    assert HostIdentity().memlock({}) is None


def test_a_user_that_does_not_exist_is_named_with_the_fix():
    with pytest.raises(NotFoundError, match=r"useradd --system --no-create-home no-such-user"):
        HostIdentity(user="no-such-user").resolve()
    with pytest.raises(NotFoundError, match="groupadd --system no-such-group"):
        HostIdentity(user=pwd.getpwuid(0).pw_name, group="no-such-group").resolve()


def test_another_user_resolves_to_its_ids_and_groups():
    me = os.geteuid()
    other = pwd.getpwnam("nobody")
    if me != 0:
        pytest.skip("resolving another user's ids needs a root daemon")
    uid, gid, groups = HostIdentity(user=other.pw_name).resolve()
    assert (uid, gid) == (other.pw_uid, other.pw_gid)
    assert groups == os.getgrouplist(other.pw_name, other.pw_gid)
    # Oneself needs no change of identity.
    assert HostIdentity(user=pwd.getpwuid(me).pw_name).resolve() == (None, None, None)


def test_the_personality_overrides_the_config():
    identity = HostIdentity(user="no-such-user", memory_lock=1 << 20)
    assert identity.memlock({"HWHostMemoryLock": 4096}) == 4096
    assert identity.memlock({}) == 1 << 20
    root = pwd.getpwuid(os.geteuid()).pw_name
    assert identity.resolve({"HWHostUser": root}) == (None, None, None)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("HWHostUser", 5, "must be a <string>"),
        ("HWHostMemoryLock", -4096, "must be an <integer> (bytes)"),
        ("HWHostMemoryLock", "1G", "must be an <integer> (bytes)"),
    ],
)
def test_personality_keys_are_checked(key, value, reason):
    table = {"IOClass": "a.B", "IOProviderClass": "IOResources", key: value}
    _, problems = parse_personalities({"IOKitPersonalities": {"P": table}}, "p.plist")
    assert any(p.key == key and reason in p.reason for p in problems), problems


@pytest.fixture
def restore_logging():
    """main() installs the daemon's journald handler on the root logger: put it back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_daemon_refuses_to_start_with_a_missing_host_user(tmp_path, capsys, restore_logging):
    config = tmp_path / "daemon.toml"
    config.write_text('[hosts]\nuser = "no-such-user"\n')
    status = main(["--config", str(config), "--socket", str(tmp_path / "s")])
    assert status == 2
    assert "no-such-user" in capsys.readouterr().err
