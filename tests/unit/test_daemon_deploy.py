"""The shipped systemd unit and sample config: the config loads, the unit fits it."""

from __future__ import annotations

import configparser
from pathlib import Path

from hwkit.daemon import DaemonConfig

UDEV = Path(__file__).resolve().parents[2] / "udev"


def test_the_sample_config_loads_with_every_section():
    config = DaemonConfig.load(UDEV / "daemon.toml")
    assert config.socket == "/run/hwkit/hwkit.sock"
    assert config.group == "hwkit"
    assert config.personalities == ["/etc/hwkit/drivers"]
    assert config.policy.limit == 3 and config.policy.backoff_max == 30.0
    assert config.policy.health_timeout == 3.0


def test_the_unit_is_type_notify_and_reloads_with_sighup():
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.read(UDEV / "hwkit-daemon.service")
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert service["ExecStart"].split()[0].endswith("hwkit-daemon")
    assert "--config /etc/hwkit/daemon.toml" in service["ExecStart"]
    assert "-HUP" in service["ExecReload"]
    assert service["LimitMEMLOCK"] == "infinity"
    # The socket's folder is the one the sample config names.
    assert service["RuntimeDirectory"] == Path(DaemonConfig().socket).parent.name
