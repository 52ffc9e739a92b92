"""Every device each lab profile promises is there, as a driver would find it.

These run inside the guest (one boot per profile). ``test_profile_checks.py`` shows that
they fail when a device model is left out of the profile.
"""

import pytest

from hwkit.lab import inventory


def expectations_of(profile: str) -> list:
    return [pytest.param(e, id=e.name) for e in inventory.EXPECTATIONS if e.profile == profile]


@pytest.mark.lab("pci")
@pytest.mark.parametrize("expectation", expectations_of("pci"))
def test_pci_profile_device(expectation: inventory.Expectation) -> None:
    problem = expectation.check(inventory.Roots())
    assert problem is None, problem


@pytest.mark.lab("usb")
@pytest.mark.parametrize("expectation", expectations_of("usb"))
def test_usb_profile_device(expectation: inventory.Expectation) -> None:
    problem = expectation.check(inventory.Roots())
    assert problem is None, problem
