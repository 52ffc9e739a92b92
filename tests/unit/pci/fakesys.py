"""Build a fake sysfs PCI tree in a temporary folder, laid out as the kernel does."""

from __future__ import annotations

import os
from pathlib import Path


def _resource_text(sizes: list[tuple[int, int, int]]) -> str:
    lines = [f"0x{s:016x} 0x{e:016x} 0x{f:016x}" for s, e, f in sizes]
    lines += ["0x0000000000000000 0x0000000000000000 0x0000000000000000"] * (7 - len(lines))
    return "\n".join(lines) + "\n"


def add_pci_function(
    root: Path,
    bdf: str,
    config: bytes,
    *,
    resources: list[tuple[int, int, int]] = (),
    driver: str | None = None,
    group: int | None = None,
    parent: str | None = None,
    override: str | None = None,
    readable: int | None = None,
) -> Path:
    """Add function ``bdf`` with ``config`` (only ``readable`` bytes of it in the file,
    as an unprivileged read sees it) below ``parent`` (a bridge's BDF) if given."""
    base = root / "devices/pci0000:00"
    if parent:
        base = next(base.rglob(parent))
    d = base / bdf
    d.mkdir(parents=True)
    ids = {
        "vendor": int.from_bytes(config[0:2], "little"),
        "device": int.from_bytes(config[2:4], "little"),
        "subsystem_vendor": int.from_bytes(config[0x2C:0x2E], "little"),
        "subsystem_device": int.from_bytes(config[0x2E:0x30], "little"),
    }
    for name, value in ids.items():
        (d / name).write_text(f"0x{value:04x}\n")
    (d / "class").write_text(f"0x{int.from_bytes(config[9:12], 'little'):06x}\n")
    (d / "revision").write_text(f"0x{config[8]:02x}\n")
    (d / "config").write_bytes(config[: readable or len(config)])
    (d / "resource").write_text(_resource_text(list(resources)))
    (d / "driver_override").write_text(f"{override or '(null)'}\n")
    (d / "numa_node").write_text("-1\n")
    (d / "irq").write_text("11\n")
    links = root / "bus/pci/devices"
    links.mkdir(parents=True, exist_ok=True)
    (links / bdf).symlink_to(os.path.relpath(d, links))
    if driver:
        drv = root / "bus/pci/drivers" / driver
        drv.mkdir(parents=True, exist_ok=True)
        (d / "driver").symlink_to(os.path.relpath(drv, d))
    if group is not None:
        g = root / "kernel/iommu_groups" / str(group) / "devices"
        g.mkdir(parents=True, exist_ok=True)
        (g / bdf).symlink_to(os.path.relpath(d, g))
        (d / "iommu_group").symlink_to(os.path.relpath(g.parent, d))
    return d
