"""The hardware lab: QEMU guests with real device models, for testing drivers in CI.

    from hwkit.lab import Lab

    with Lab(["pci", "usb"]) as lab:
        print(lab.run(["lspci", "-nn"]).text)
        lab.qmp.device_del("kbd")

See :class:`Lab`, the profiles in :mod:`hwkit.lab.profiles`, and the pytest plugin in
:mod:`hwkit.testing.pytest_plugin` (``@pytest.mark.lab("pci")``).
"""

from hwkit.lab.errors import LabError, LabStatus
from hwkit.lab.machine import Lab, Result
from hwkit.lab.profiles import PROFILES, Profile
from hwkit.lab.qmp import QMP, QMPError

__all__ = ["PROFILES", "QMP", "Lab", "LabError", "LabStatus", "Profile", "QMPError", "Result"]
