"""The NVMe personality and the errors a user reads."""

from __future__ import annotations

from pathlib import Path

import hwkit.drivers.nvme as nvme
from hwkit.drivers.nvme import NVMeStatusError, spec
from hwkit.matching.personality import load_file

PLIST = Path(nvme.__file__).parent / "NVMeDriver.plist"


def test_personality_matches_only_qemus_nvme_and_opts_in_to_detach() -> None:
    personalities, problems = load_file(PLIST)
    assert problems == []
    (personality,) = personalities
    table = personality.table
    assert table["IOClass"] == "hwkit.drivers.nvme.NVMeDriver"
    assert table["IOProviderClass"] == "IOPCIDevice"
    assert table["IOPCIClassMatch"] == "0x01080200&0xffffff00"
    # it detaches the kernel's driver, so it must not match every NVMe (the host's disks)
    assert table["IOPCIPrimaryMatch"] == "0x00101b36"
    assert table["HWDetachKernelDriver"] is True


def test_the_class_named_by_the_personality_is_the_driver() -> None:
    module, _, name = "hwkit.drivers.nvme.NVMeDriver".rpartition(".")
    assert getattr(nvme, name) is nvme.NVMeDriver
    assert module == nvme.__name__


def test_status_errors_name_the_command_device_and_decoded_status() -> None:
    error = NVMeStatusError(
        "READ", "pci:0000:00:05.0 nsid 1 lba 12", spec.Status.decode(0x80 | 0x4000)
    )
    assert str(error) == (
        "READ failed on pci:0000:00:05.0 nsid 1 lba 12: LBA OUT OF RANGE (sct 0, sc 0x80)"
    )
    assert error.status.dnr
