"""Tests of `hwkit probe` end to end, on fake sysfs/dev trees and saved dumps."""

from __future__ import annotations

import json
import plistlib
from pathlib import Path

import pytest
from hwkit.tools import cli

from hwkit.pci import discovery as pci_discovery
from hwkit.pci.config import DumpedFunction, format_lspci_dump

from ..pci.configs import EDU, NVME, ROOT_PORT
from ..pci.fakesys import add_pci_function
from ..usb.fakesys import add_acm_gadget, add_ftdi, add_keyboard, add_root_hub

HOST_DUMP = Path(__file__).parents[1] / "pci" / "data" / "host-virtio-00-03.0.lspci-xxx"


@pytest.fixture
def machine(tmp_path):
    """A guest-like machine: edu, NVMe, an xHCI with a keyboard, FTDI and a gadget."""
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    add_pci_function(
        sysfs, "0000:00:02.0", EDU, resources=[(0xFEA00000, 0xFEAFFFFF, 0x40200)], group=1
    )
    add_pci_function(
        sysfs,
        "0000:00:03.0",
        NVME,
        resources=[(0xFEBD0000, 0xFEBD3FFF, 0x140204)],
        driver="nvme",
        group=2,
    )
    add_pci_function(sysfs, "0000:00:04.0", ROOT_PORT, driver="xhci_hcd", group=3)
    add_root_hub(sysfs)  # under the function at 00:04.0, its host controller
    add_keyboard(sysfs, "1-1")
    add_ftdi(sysfs, "1-2")
    add_acm_gadget(sysfs, "1-3")
    return sysfs, dev


def probe(capsys, machine, *argv, status=0):
    """Run `hwkit probe ARGV` on the fake trees; check its exit status; (stdout, stderr)."""
    sysfs, dev = machine
    assert cli.main(["probe", *argv, "--sysfs", str(sysfs), "--dev", str(dev)]) == status
    out = capsys.readouterr()
    return out.out, out.err


def test_everything_in_text(capsys, machine):
    out, _ = probe(capsys, machine)
    assert "USB: 4 device(s)" in out and "PCI: 3 function(s)" in out
    assert "Serial: 2 port(s)" in out
    assert "ID 0627:0001 QEMU QEMU USB Keyboard" in out
    assert "bInterfaceProtocol        1 Keyboard" in out
    assert "Capabilities: [40] MSI-X: Enable+ Count=65 Masked-" in out
    assert "Region 0: Memory at febd0000 (64-bit, non-prefetchable) [size=16K]" in out
    assert "serial:/dev/ttyUSB0" in out


def test_pci_json_schema(capsys, machine):
    out, _ = probe(capsys, machine, "pci", "--json")
    functions = json.loads(out)
    assert [f["bdf"] for f in functions] == ["0000:00:02.0", "0000:00:03.0", "0000:00:04.0"]
    nvme = functions[1]
    for key in (
        "bdf",
        "vendor_id",
        "device_id",
        "class_code",
        "revision",
        "subsystem_vendor_id",
        "subsystem_id",
        "driver",
        "iommu_group",
        "bars",
        "capabilities",
        "extended_capabilities",
    ):
        assert key in nvme
    assert (nvme["vendor_id"], nvme["device_id"], nvme["class_code"]) == (0x1B36, 0x10, 0x010802)
    assert (nvme["revision"], nvme["driver"], nvme["iommu_group"]) == (2, "nvme", 2)
    assert nvme["bars"] == [
        {
            "index": 0,
            "address": 0xFEBD0000,
            "size": 16384,
            "kind": "memory",
            "is_64bit": True,
            "prefetchable": False,
        }
    ]
    msix = nvme["capabilities"][0]
    assert (msix["id"], msix["offset"], msix["name"]) == (0x11, 0x40, "MSI-X")
    assert msix["fields"]["table_size"] == 65
    assert nvme["vfio"]["ready"] is False and nvme["vfio"]["commands"]


def test_one_function_by_address(capsys, machine):
    out, _ = probe(capsys, machine, "pci:00:02.0", "--json")
    (edu,) = json.loads(out)
    assert edu["device_id"] == 0x11E8 and edu["bars"][0]["size"] == 1 << 20
    out, _ = probe(capsys, machine, "pci", "0000:00:02.0")
    assert out.count("Capabilities:") == 1


def test_usb_json_by_id_address(capsys, machine):
    out, _ = probe(capsys, machine, "usb:0403:6001", "--json")
    (ftdi,) = json.loads(out)
    assert (ftdi["address"], ftdi["idVendor"], ftdi["idProduct"]) == ("usb:1-2", 0x403, 0x6001)
    assert ftdi["device"]["bcdDevice"] == 0x0600
    (intf,) = ftdi["configurations"][0]["interfaces"]
    assert intf["bInterfaceClass"] == 0xFF and intf["driver"] == "ftdi_sio"
    assert intf["ttys"] == ["ttyUSB0"]
    assert [e["bEndpointAddress"] for e in intf["endpoints"]] == [0x81, 0x02]


def test_serial_json(capsys, machine):
    out, _ = probe(capsys, machine, "serial", "--json")
    ports = json.loads(out)
    assert [p["address"] for p in ports] == ["serial:/dev/ttyACM0", "serial:/dev/ttyUSB0"]
    assert ports[1]["usb_serial"] == "A50285BI"


def test_nubs_file(capsys, machine, tmp_path):
    target = tmp_path / "nubs.json"
    _, err = probe(capsys, machine, "--nubs", str(target))
    assert "wrote" in err
    nubs = json.loads(target.read_text())
    by_name = {n["name"]: (i, n) for i, n in enumerate(nubs)}
    _, nvme = by_name["0000:00:03.0"]
    assert nvme["class"] == "IOPCIDevice" and nvme["parent"] is None
    assert nvme["properties"]["class-code"] == 0x010802
    assert nvme["properties"]["vendor-id"] == 0x1B36
    kbd_index, kbd = by_name["1-1"]
    assert kbd["class"] == "IOUSBHostDevice" and kbd["properties"]["idVendor"] == 0x0627
    assert nubs[kbd["parent"]]["name"] == "usb1"
    _, root_hub = by_name["usb1"]
    assert nubs[root_hub["parent"]]["name"] == "0000:00:04.0"  # its host controller
    _, intf = by_name["1-1:1.0"]
    assert intf["class"] == "IOUSBHostInterface" and intf["parent"] == kbd_index
    assert intf["properties"]["bInterfaceClass"] == 3
    assert intf["properties"]["bConfigurationValue"] == 1
    _, tty = by_name["ttyUSB0"]
    assert tty["class"] == "IOSerialStreamSync"
    assert nubs[tty["parent"]]["name"] == "1-2:1.0"
    _, acm = by_name["ttyACM0"]
    assert nubs[acm["parent"]]["name"] == "1-3:1.1"
    for i, nub in enumerate(nubs):  # parents precede children
        assert nub["parent"] is None or nub["parent"] < i


def test_nubs_to_stdout_for_one_bus(capsys, machine):
    out, _ = probe(capsys, machine, "pci", "--nubs", "-")
    assert [n["class"] for n in json.loads(out)] == ["IOPCIDevice"] * 3


def test_dump_file(capsys, machine):
    out, _ = probe(capsys, machine, "pci", "--dump", str(HOST_DUMP), "--json")
    (fn,) = json.loads(out)
    assert (fn["bdf"], fn["vendor_id"], fn["device_id"]) == ("0000:00:03.0", 0x1AF4, 0x1041)
    assert [c["offset"] for c in fn["capabilities"]] == [0x40, 0x50, 0x60, 0x70, 0x84, 0x98]
    assert fn["bars"][0]["size"] is None  # a dump has no sizes
    out, _ = probe(capsys, machine, "--dump", str(HOST_DUMP), "pci:00:03.0")
    assert "VirtIO: Notify" in out


def test_save_dump_round_trips(capsys, machine, tmp_path):
    target = tmp_path / "dump.txt"
    _, _ = probe(capsys, machine, "pci", "--save-dump", str(target))
    out, _ = probe(capsys, machine, "pci", "--dump", str(target), "--json")
    assert [f["bdf"] for f in json.loads(out)] == ["0000:00:02.0", "0000:00:03.0", "0000:00:04.0"]


def test_unprivileged_run_says_so(capsys, machine, monkeypatch):
    real = pci_discovery._read_config

    def as_a_user(path):
        data, size, error = real(path)
        return data[:64], size, error

    monkeypatch.setattr(pci_discovery, "_read_config", as_a_user)
    out, _ = probe(capsys, machine, "pci")
    assert "running unprivileged: 3 PCI function(s)" in out
    assert "only the first 64 of 4096 bytes" not in out  # said once above, not per function
    assert "Capabilities:" not in out
    out, _ = probe(capsys, machine, "pci", "--json")
    assert "unprivileged" in json.loads(out)[1]["notes"][0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bogus"], "cannot tell the bus of 'bogus'"),
        (["usb:dead:beef"], "no USB device at usb:dead:beef"),
        (["pci:00:1f.7"], "no PCI function 0000:00:1f.7"),
        (["serial:/dev/ttyS9"], "no serial port ttyS9"),
        (["usb", "--dump", "x"], "--dump and --save-dump are for PCI"),
        (["pci", "--dump", "/nonexistent"], "cannot read the dump"),
    ],
)
def test_errors_are_one_clear_line(capsys, machine, argv, message):
    _, err = probe(capsys, machine, *argv, status=1)
    assert message in err and err.count("\n") == 1


def test_malformed_dump(capsys, machine, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(
        format_lspci_dump([DumpedFunction("0000:00:02.0", "x", EDU)]).replace("10: ", "20: ")
    )
    _, err = probe(capsys, machine, "pci", "--dump", str(bad), status=1)
    assert "offset 0x20 where 0x10 was expected" in err


def _personalities(tmp_path):
    folder = tmp_path / "personalities"
    folder.mkdir()
    table = {
        "NVMe": {
            "IOClass": "hwkit.drivers.nvme.NVMeController",
            "IOProviderClass": "IOPCIDevice",
            "IOPCIClassMatch": "0x01080200&0xffffff00",
            "IOProbeScore": 1000,
            "HWDetachKernelDriver": True,
        },
        "Keyboard": {
            "IOClass": "example.Keyboard",
            "IOProviderClass": "IOUSBHostInterface",
            "bInterfaceClass": 3,
            "bInterfaceSubClass": 1,
            "bInterfaceProtocol": 1,
            "HWDetachKernelDriver": True,
        },
    }
    (folder / "test.plist").write_bytes(plistlib.dumps({"IOKitPersonalities": table}))
    return folder


def test_match_says_which_personality_wins(capsys, machine, tmp_path):
    folder = str(_personalities(tmp_path))
    out, _ = probe(capsys, machine, "--match", "--personalities", folder)
    assert "Matching (passive; hwkit match --explain says why):" in out
    assert "0000:00:03.0 (IOPCIDevice): IODefaultMatchCategory -> NVMe" in out
    assert "1-1:1.0 (IOUSBHostInterface): IODefaultMatchCategory -> Keyboard" in out
    assert "0000:00:02.0 (IOPCIDevice): no match (1 candidates)" in out
    out, _ = probe(capsys, machine, "pci", "--json", "--match", "--personalities", folder)
    nvme = next(f for f in json.loads(out) if f["bdf"] == "0000:00:03.0")
    assert "-> NVMe (score" in nvme["match"]


def test_dump_functions_become_nubs(capsys, machine):
    out, _ = probe(capsys, machine, "pci", "--dump", str(HOST_DUMP), "--nubs", "-")
    (nub,) = json.loads(out)
    assert nub["name"] == "0000:00:03.0" and nub["properties"]["vendor-id"] == 0x1AF4
    assert nub["properties"]["class-code"] == 0x020000


def test_nubs_put_a_bridge_before_the_functions_behind_it(machine):
    from hwkit.tools.cmd_probe import build_nubs

    sysfs, _ = machine
    add_pci_function(sysfs, "0000:05:00.0", EDU, parent="0000:00:04.0", group=9)
    functions = pci_discovery.list_functions(sysfs)
    child = next(f for f in functions if f.bdf == "0000:05:00.0")
    nubs = build_nubs([child, *[f for f in functions if f is not child]], [], [])
    names = [n["name"] for n in nubs]
    assert names.index("0000:00:04.0") < names.index("0000:05:00.0")
    assert nubs[names.index("0000:05:00.0")]["parent"] == names.index("0000:00:04.0")
