"""When the lab itself fails, it says why with a distinct status, never blaming CMD.

Each case provokes the real failure: a QEMU that is not there, a kernel package apt does
not know, a device model QEMU refuses, a guest kernel that panics, a boot that takes
longer than allowed.
"""

import pytest

from hwkit.lab.errors import LabError, LabStatus
from hwkit.lab.machine import Lab

pytestmark = pytest.mark.lab("pci", host=True)


def start_failure(lab: Lab) -> LabError:
    with pytest.raises(LabError) as caught, lab:
        pass
    return caught.value


def test_missing_qemu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWKIT_LAB_QEMU", "/nonexistent/qemu-system-x86_64")
    error = start_failure(Lab(["pci"]))
    assert error.status == LabStatus.MISSING_DEPENDENCY
    assert "/nonexistent/qemu-system-x86_64" in str(error)


def test_unknown_kernel_package(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("HWKIT_LAB_CACHE", str(tmp_path))  # nothing cached to fall back on
    monkeypatch.setenv("HWKIT_LAB_KERNEL_PACKAGE", "linux-image-0.0.0-hwkit-none")
    error = start_failure(Lab(["pci"]))
    assert error.status == LabStatus.NO_KERNEL
    assert "linux-image-0.0.0-hwkit-none" in str(error)


def test_qemu_refuses_a_device() -> None:
    error = start_failure(Lab(["pci"], extra_devices=["hwkit-no-such-device"]))
    assert error.status == LabStatus.QEMU_ABORT
    assert "hwkit-no-such-device" in str(error)


def test_guest_kernel_panic() -> None:
    error = start_failure(Lab(["pci"], kernel_args="rdinit=/hwkit-no-such-init"))
    assert error.status == LabStatus.GUEST_PANIC
    assert "Kernel panic" in str(error)


def test_boot_timeout() -> None:
    error = start_failure(Lab(["pci"], boot_timeout=1.0))
    assert error.status == LabStatus.BOOT_TIMEOUT
