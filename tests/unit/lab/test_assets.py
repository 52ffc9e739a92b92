import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hwkit.errors import MissingDependency
from hwkit.lab import assets


def parse_newc(archive: bytes) -> list[tuple[str, int, bytes]]:
    """An independent reader of the newc format, for checking the writer."""
    out, pos = [], 0
    while True:
        assert archive[pos : pos + 6] == b"070701"
        fields = [int(archive[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        pos += 110
        name = archive[pos : pos + namesize - 1].decode()
        pos = (pos + namesize + 3) & ~3
        data = archive[pos : pos + size]
        pos = (pos + size + 3) & ~3
        if name == "TRAILER!!!":
            return out
        out.append((name, mode, data))


def test_newc_archive_round_trips() -> None:
    entries = [("bin", 0o040755, b""), ("bin/x", 0o100755, b"abc"), ("init", 0o100755, b"12345")]
    assert parse_newc(assets.newc_archive(entries)) == entries


@pytest.mark.skipif(shutil.which("cpio") is None, reason="cpio (Debian package cpio) not here")
def test_newc_archive_reads_with_gnu_cpio(tmp_path: Path) -> None:
    archive = assets.newc_archive([("d", 0o040755, b""), ("d/f", 0o100644, b"hello")])
    listing = subprocess.run(
        ["cpio", "-it", "--quiet"], input=archive, capture_output=True, check=True
    )
    assert listing.stdout.split() == [b"d", b"d/f"]


def test_elf_interpreter_detection() -> None:
    python = Path(sys.executable).resolve().read_bytes()
    assert assets.elf_is_dynamic(python)


def test_static_busybox_is_found_or_named() -> None:
    try:
        busybox = assets.find_static_busybox()
    except MissingDependency as exc:
        assert "busybox-static" in str(exc)
    else:
        assert not assets.elf_is_dynamic(busybox.read_bytes())


def test_missing_tool_names_its_debian_package() -> None:
    assets.TOOL_PACKAGES["hwkit-no-such-tool"] = "hwkit-pkg"
    try:
        with pytest.raises(MissingDependency, match="install Debian package hwkit-pkg"):
            assets.require_tool("hwkit-no-such-tool")
    finally:
        del assets.TOOL_PACKAGES["hwkit-no-such-tool"]


def test_custom_qemu_must_be_executable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HWKIT_LAB_QEMU", str(tmp_path / "qemu"))
    with pytest.raises(MissingDependency, match="not an executable"):
        assets.qemu_binary()


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HWKIT_LAB_CACHE", str(tmp_path / "c"))
    assert assets.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("HWKIT_LAB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert assets.cache_dir() == tmp_path / "x" / "hwkit" / "lab"


def test_init_script_is_packaged_and_powers_off() -> None:
    init = assets._init_script().decode()
    assert init.startswith("#!/bin/busybox sh")
    assert init.rstrip().endswith("poweroff -f")
    assert "/run/hwkit-lab/guest.sh" in init
