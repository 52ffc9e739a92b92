"""`hwkit match`: the sample nubs against the sample personalities, text and JSON."""

from __future__ import annotations

import json
import plistlib
import sys
from pathlib import Path

import pytest
from hwkit.tools.cli import main

DATA = Path(__file__).parents[2] / "data" / "matching"
ARGS = ["match", "--nubs", str(DATA / "nubs.json"), "--personalities", str(DATA / "personalities")]


def run(capsys, *extra):
    status = main([*ARGS, *extra])
    out, err = capsys.readouterr()
    return status, out, err


def test_json_output_schema_and_results(capsys):
    status, out, _err = run(capsys, "--json")
    assert status == 0
    doc = json.loads(out)
    assert set(doc) == {"nubs", "rejected"}
    for nub in doc["nubs"]:
        assert set(nub) == {"name", "class", "candidates", "winners"}
        for candidate in nub["candidates"]:
            assert set(candidate) == {
                "personality",
                "file",
                "category",
                "score",
                "matched",
                "reason",
            }
            assert candidate["matched"] is (candidate["reason"] is None)
    winners = {n["name"]: n["winners"] for n in doc["nubs"]}
    assert winners == {
        "usb1-1": {"HWUSBObserver": "USBObserver"},
        "usb1-1:1.0": {"IODefaultMatchCategory": "FTDISerial"},
        "ttyUSB0": {"IODefaultMatchCategory": "FTDIConsole"},
        "usb1-2": {"IODefaultMatchCategory": "GadgetDevice"},
        "usb1-2:1.0": {},
        "0000:00:03.0": {"IODefaultMatchCategory": "EduDriver"},
        "0000:00:04.0": {"IODefaultMatchCategory": "E1000QemuBoard"},
        "0000:00:05.0": {"IODefaultMatchCategory": "NVMeController"},
        "IOResources": {"SoftClock": "SoftClock"},
    }
    iface = next(n for n in doc["nubs"] if n["name"] == "usb1-1:1.0")
    assert [(c["personality"], c["score"], c["matched"]) for c in iface["candidates"]] == [
        ("FTDISerial", 90000, True),
        ("FTDIVendorGeneric", 70000, True),
        ("CDCACM", None, False),
    ]
    assert iface["candidates"][2]["reason"] == (
        "bInterfaceClass: personality wants 0x02, nub has 0xff"
    )
    rejected = {(r["personality"], r["reason"].split(":")[0]) for r in doc["rejected"]}
    assert rejected == {("BadCombination", "key 'idProduct'"), ("BadMask", "key 'IOPCIMatch'")}
    assert all(r["file"].endswith("broken.plist") for r in doc["rejected"])


def test_summary_and_explain_text(capsys):
    status, out, err = run(capsys)
    assert status == 0
    assert (
        "usb1-1:1.0 (IOUSBHostInterface): IODefaultMatchCategory -> FTDISerial (score 90000)" in out
    )
    assert "skipped: " in err and "broken.plist: personality 'BadMask': key 'IOPCIMatch'" in err
    status, out, _err = run(capsys, "--explain")
    assert "Nub 2 of 9: 'usb1-1:1.0' (IOUSBHostInterface)" in out
    assert "WINNER of IODefaultMatchCategory" in out
    assert "matched, but lost IODefaultMatchCategory to FTDISerial (higher score)" in out
    assert "why not: bInterfaceClass: personality wants 0x02, nub has 0xff" in out
    assert "why not: HWKernelDriver: personality wants no kernel driver bound" in out
    assert "score from: USB idVendor+idProduct+bConfigurationValue+bInterfaceNumber (90000)" in out
    assert "Result: no driver matches this nub." in out
    assert "Passive matching only" in out


def test_folders_replace_the_default_search_path(capsys, tmp_path):
    status = main(
        ["match", "--json", "--nubs", str(DATA / "nubs.json"), "--personalities", str(tmp_path)]
    )
    doc = json.loads(capsys.readouterr().out)
    assert status == 0 and all(n["candidates"] == [] for n in doc["nubs"])


def test_a_bad_nubs_file_is_a_clear_error(capsys, tmp_path):
    bad = tmp_path / "nubs.json"
    bad.write_text('[{"name": "x", "class": "IOPCI"}]')
    status = main(["match", "--nubs", str(bad), "--personalities", str(tmp_path)])
    assert status == 1
    assert "class 'IOPCI' is not a known provider class" in capsys.readouterr().err


def test_nubs_is_required(capsys):
    with pytest.raises(SystemExit):
        main(["match"])


def test_match_never_imports_driver_code(capsys, tmp_path, monkeypatch):
    (tmp_path / "hwkit_tripwire.py").write_text("raise SystemExit('driver code was imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plist = tmp_path / "p" / "trip.plist"
    plist.parent.mkdir()
    plist.write_bytes(
        plistlib.dumps({"IOKitPersonalities": {"Trip": {
            "IOClass": "hwkit_tripwire.Driver", "IOProviderClass": "IOPCIDevice",
            "IOPCIPrimaryMatch": "0x11e81234"}}})
    )  # fmt: skip
    status = main(["match", "--json", "--nubs", str(DATA / "nubs.json"), "--personalities",
                   str(plist.parent)])  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert status == 0
    assert {n["name"]: n["winners"] for n in doc["nubs"]}["0000:00:03.0"] == {
        "IODefaultMatchCategory": "Trip"
    }
    assert "hwkit_tripwire" not in sys.modules
