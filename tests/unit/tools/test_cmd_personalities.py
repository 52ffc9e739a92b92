"""`hwkit personalities check`: exit 1 with the errors when any file is bad."""

from __future__ import annotations

import plistlib
from pathlib import Path

from hwkit.tools.cli import main

DATA = Path(__file__).parents[2] / "data" / "matching" / "personalities"


def test_good_files_pass(capsys):
    assert main(["personalities", "check", str(DATA / "usb.plist"), str(DATA / "pci.plist")]) == 0
    out = capsys.readouterr().out
    assert out.strip() == "10 personalities in 2 good files; 0 bad files, 0 problems"


def test_a_bad_file_fails_with_each_problem(capsys):
    assert main(["personalities", "check", str(DATA)]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert lines == [
        f"{DATA / 'broken.plist'}: personality 'BadCombination': key 'idProduct': is missing: "
        "the nearest combination is idVendor+idProduct+bcdDevice; idVendor+bcdDevice is not an "
        "allowed IOUSBHostDevice combination (allowed: idVendor+idProduct+bcdDevice; "
        "idVendor+idProduct; idVendor+bDeviceSubClass+bDeviceProtocol; idVendor+bDeviceSubClass; "
        "bDeviceClass+bDeviceSubClass+bDeviceProtocol; bDeviceClass+bDeviceSubClass)",
        f"{DATA / 'broken.plist'}: personality 'BadMask': key 'IOPCIMatch': has "
        "'0x100e8086&ffff0000zz', which is not 0xVALUE or 0xVALUE&0xMASK (hex, 32-bit)",
    ]
    assert "13 personalities in 3 good files; 1 bad files, 2 problems" in captured.out


def test_missing_paths_and_empty_folders_fail(capsys, tmp_path):
    assert main(["personalities", "check", str(tmp_path / "nope.plist")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["personalities", "check", str(tmp_path)]) == 1
    assert "no personality files" in capsys.readouterr().err


def test_binary_plists_are_read_too(capsys, tmp_path):
    path = tmp_path / "bin.plist"
    path.write_bytes(
        plistlib.dumps(
            {
                "IOKitPersonalities": {
                    "P": {
                        "IOClass": "a.B",
                        "IOProviderClass": "IOResources",
                        "IOResourceMatch": "IOKit",
                    }
                }
            },
            fmt=plistlib.FMT_BINARY,
        )
    )
    assert main(["personalities", "check", str(path)]) == 0
