"""The host side's QEMU command line and its reading of a failed guest (no boot needed)."""

import subprocess
from pathlib import Path

import pytest

from hwkit.lab import assets, profiles
from hwkit.lab.errors import LabStatus
from hwkit.lab.machine import Lab, Result

KERNEL = assets.Kernel("linux-image-x", "1", Path("/k/root"), "6.1.0-x-amd64")


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HWKIT_LAB_QEMU", "/bin/true")
    lab = Lab(["all"], output=tmp_path / "run", extra_devices=["usb-tablet,bus=xhci.0"])
    yield lab
    lab.close()


def test_argv_has_the_iommu_before_every_device(lab: Lab) -> None:
    argv = lab.qemu_argv(KERNEL, Path("/i.cpio.gz"))
    devices = [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]
    assert devices[0] == "intel-iommu"
    assert devices[-1] == "usb-tablet,bus=xhci.0"
    assert "edu,id=edu0" in devices and "usb-kbd,bus=xhci.0,id=kbd" in devices


def test_argv_places_run_and_socket_folders(lab: Lab) -> None:
    argv = lab.qemu_argv(KERNEL, Path("/i.cpio.gz"))
    joined = " ".join(argv)
    assert f"file={lab.run_dir}/nvme0.img" in joined
    assert f"socket,id=ftdi,path={lab.sock_dir}/{profiles.FTDI_SOCKET}" in joined
    assert f"socket,id=agent,path={lab.sock_dir}/agent.sock" in joined
    assert "{run}" not in joined and "{sock}" not in joined
    assert argv[argv.index("-kernel") + 1] == "/k/root/boot/vmlinuz-6.1.0-x-amd64"
    assert "intel_iommu=on" in argv[argv.index("-append") + 1]


def test_socket_paths_stay_short_whatever_the_output_folder(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    lab = Lab(["usb"], output=deep)
    try:
        assert len(str(lab.sock_dir / profiles.FTDI_SOCKET)) < 108
    finally:
        lab.close()


def finished(argv: list[str]) -> subprocess.Popen:
    process = subprocess.Popen(argv)
    process.wait()
    return process


def diagnose(lab: Lab, console: str, qemu_log: str, exit_argv: list[str]):
    (lab.run_dir / "console.log").write_text(console)
    (lab.run_dir / "qemu.log").write_text(qemu_log)
    lab.qemu = finished(exit_argv)
    return lab.diagnose("the guest stopped before it was ready")


def test_a_panic_is_named_with_its_line(lab: Lab) -> None:
    console = "[ 1.0] ok\n[ 2.0] Kernel panic - not syncing: No working init found.\n"
    error = diagnose(lab, console, "", ["true"])
    assert error.status == LabStatus.GUEST_PANIC
    assert "Kernel panic - not syncing: No working init found." in str(error)
    assert "Kernel panic" in error.detail


def test_qemu_killed_by_a_signal_is_an_abort(lab: Lab) -> None:
    error = diagnose(lab, "", "qemu: hardware error: edu DMA\n", ["sh", "-c", "kill -ABRT $$"])
    assert error.status == LabStatus.QEMU_ABORT
    assert "signal 6" in str(error) and "hardware error: edu DMA" in str(error)


def test_qemu_refusing_to_start_is_an_abort_with_its_message(lab: Lab) -> None:
    error = diagnose(lab, "", "qemu: -device nope: 'nope' is not a valid device\n", ["false"])
    assert error.status == LabStatus.QEMU_ABORT
    assert "status 1" in str(error) and "'nope' is not a valid device" in str(error)


def test_init_failure_is_reported_with_its_reason(lab: Lab) -> None:
    console = "hwkit-lab: init failed: cannot mount the host root (9p tag hostroot)\n"
    error = diagnose(lab, console, "", ["true"])
    assert error.status == LabStatus.GUEST_FAILED
    assert "cannot mount the host root" in str(error)


def test_logs_location_is_named(lab: Lab) -> None:
    assert str(lab.run_dir) in str(diagnose(lab, "", "", ["true"]))


def test_result_status_and_check() -> None:
    ok = Result(["x"], 0, b"out", b"")
    assert ok.check() is ok and ok.text == "out"
    with pytest.raises(Exception, match="exited with 3: boom"):
        Result(["x"], 3, b"", b"boom\n").check()


def test_run_before_start_is_an_error(lab: Lab) -> None:
    with pytest.raises(Exception, match="not started"):
        lab.run(["true"])
