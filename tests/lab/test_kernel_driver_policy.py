"""A function the kernel's nvme driver holds is not taken without the personality's opt-in,
and the explanation says so (on the live NVMe controller of the pci guest)."""

import subprocess
import sys
from pathlib import Path

import pytest

from hwkit.lab import inventory, profiles

PLIST = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict><key>IOKitPersonalities</key><dict>
  <key>Polite</key><dict>
    <key>IOClass</key><string>example.Polite</string>
    <key>IOProviderClass</key><string>IOPCIDevice</string>
    <key>IOPCIClassMatch</key><string>0x01080200&amp;0xffffff00</string>
  </dict>
  <key>TakeOver</key><dict>
    <key>IOClass</key><string>example.TakeOver</string>
    <key>IOProviderClass</key><string>IOPCIDevice</string>
    <key>IOPCIClassMatch</key><string>0x01080200&amp;0xffffff00</string>
    <key>HWDetachKernelDriver</key><true/>
  </dict>
</dict></dict></plist>
"""


@pytest.mark.lab("pci")
def test_a_kernel_bound_function_needs_the_opt_in(tmp_path: Path) -> None:
    (tmp_path / "policy.plist").write_text(PLIST)
    nvme = inventory.pci_functions(inventory.Roots(), profiles.NVME_ID)[0].name
    hwkit = [sys.executable, "-m", "hwkit.tools.cli"]
    nubs = tmp_path / "nubs.json"
    probe = subprocess.run([*hwkit, "probe", "pci", f"pci:{nvme}", "--nubs", str(nubs)],
                           capture_output=True, text=True)  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    done = subprocess.run(
        [*hwkit, "match", "--explain", "--personalities", str(tmp_path), "--nubs", str(nubs)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "IODefaultMatchCategory -> TakeOver" in out, out
    assert "why not: HWKernelDriver" in out and "kernel driver 'nvme' bound" in out, out
