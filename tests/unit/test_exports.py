"""The public API: what `hwkit` and `hwkit.matching` export, and that it all resolves."""

from __future__ import annotations

import importlib

import pytest

CORE = {
    "Registry", "RegistryEntry", "SERVICE_PLANE", "POWER_PLANE", "Service", "ServiceState",
    "Message", "Nub", "Resources", "WorkLoop", "EventSource", "InterruptEventSource",
    "FilterInterruptEventSource", "FdEventSource", "TimerEventSource", "CommandGate",
    "Catalogue", "MatchingEngine", "match_nub", "UnsupportedError",
}  # fmt: skip


@pytest.mark.parametrize("package", ["hwkit", "hwkit.matching"])
def test_every_export_resolves_to_hwkit_code(package):
    module = importlib.import_module(package)
    assert len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        value = getattr(module, name)
        owner = getattr(value, "__module__", None)
        assert owner is None or owner.startswith("hwkit"), (name, owner)


def test_core_names_are_exported():
    import hwkit

    assert set(hwkit.__all__) >= CORE
    assert hwkit.Service.ioclass == "IOService"
