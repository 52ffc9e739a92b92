"""The lab's boot assets: a stock Debian kernel with its modules, and a tiny initramfs.

Both are built on first use into a cache folder and reused afterwards, keyed by the
kernel package's version (and, for the initramfs, by a hash of what goes into it):

    <cache>/kernel/<package>_<version>/root/boot/vmlinuz-<kver>
    <cache>/kernel/<package>_<version>/root/lib/modules/<kver>/...   (depmod'ed)
    <cache>/initramfs/<key>.cpio.gz

The cache folder is ``$HWKIT_LAB_CACHE``, else ``$XDG_CACHE_HOME/hwkit/lab``, else
``~/.cache/hwkit/lab``. The guest sees the host's root file system, so it loads its
modules straight from the cache with ``modprobe -d``.

Each missing system tool is reported as one line naming the Debian package and the
command that installs it (:class:`~hwkit.errors.MissingDependency`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from hwkit.errors import MissingDependency
from hwkit.lab.errors import LabAssetError

log = logging.getLogger(__name__)

#: The meta-package whose dependency names the current Debian kernel.
KERNEL_META_PACKAGE = "linux-image-amd64"

#: Modules the initramfs loads (with their dependencies) before it can reach the host's
#: root over 9p and put an overlay on it. Everything else loads from the host later.
INITRAMFS_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay", "virtio_console")

#: Debian package that provides each host tool the lab runs.
TOOL_PACKAGES = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "modprobe": "kmod",
    "depmod": "kmod",
    "apt-get": "apt",
    "apt-cache": "apt",
    "dpkg-deb": "dpkg",
}

BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")


def require_tool(name: str) -> str:
    """Return the path of host tool `name`, or raise a one-line MissingDependency."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        package = TOOL_PACKAGES.get(name, name)
        raise MissingDependency(
            f"{name} not found: install Debian package {package} "
            f"(apt-get update && apt-get install -y {package})"
        )
    return path


def qemu_binary() -> str:
    """The QEMU to run: ``$HWKIT_LAB_QEMU`` if set (a custom build), else the system's."""
    if custom := os.environ.get("HWKIT_LAB_QEMU"):
        if not os.access(custom, os.X_OK):
            raise MissingDependency(f"HWKIT_LAB_QEMU={custom} is not an executable file")
        return custom
    return require_tool("qemu-system-x86_64")


def cache_dir() -> Path:
    """The lab's cache folder (created if needed)."""
    if env := os.environ.get("HWKIT_LAB_CACHE"):
        path = Path(env)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        path = base / "hwkit" / "lab"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _run(argv: list[str], what: str, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise LabAssetError(f"{what}: cannot run {argv[0]}: {exc}") from exc
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise LabAssetError(f"{what}: `{' '.join(argv)}` failed: {' / '.join(detail)}")
    return done.stdout


@dataclass(frozen=True)
class Kernel:
    """An extracted Debian kernel package, ready to boot."""

    package: str
    version: str
    root: Path  # holds boot/ and lib/modules/<release>/
    release: str  # uname -r of the guest, e.g. 6.1.0-56-amd64

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.release}"

    @property
    def key(self) -> str:
        return f"{self.package}_{self.version}"


def _resolve_kernel_package() -> tuple[str, str]:
    """Ask apt which kernel package linux-image-amd64 currently means, and its version."""
    require_tool("apt-cache")
    package = os.environ.get("HWKIT_LAB_KERNEL_PACKAGE")
    if not package:
        out = _run(["apt-cache", "depends", KERNEL_META_PACKAGE], "finding the lab kernel")
        names = [
            line.split(":", 1)[1].strip()
            for line in out.splitlines()
            if line.strip().startswith("Depends:") and "linux-image-" in line
        ]
        if not names:
            raise LabAssetError(
                f"finding the lab kernel: apt knows no {KERNEL_META_PACKAGE}; "
                "run `apt-get update` first"
            )
        package = names[0]
    out = _run(["apt-cache", "policy", package], f"finding the version of {package}")
    for line in out.splitlines():
        if line.strip().startswith("Candidate:"):
            version = line.split(":", 1)[1].strip()
            if version and version != "(none)":
                return package, version
    raise LabAssetError(
        f"finding the lab kernel: apt has no candidate for {package}; run `apt-get update`"
    )


def _cached_kernels() -> list[Kernel]:
    found = []
    for stamp in sorted((cache_dir() / "kernel").glob("*/ready.json")):
        info = json.loads(stamp.read_text())
        kernel = Kernel(info["package"], info["version"], stamp.parent / "root", info["release"])
        if kernel.vmlinuz.exists():
            found.append(kernel)
    return found


def ensure_kernel() -> Kernel:
    """Return the lab kernel, downloading and extracting it on first use.

    Raises:
        MissingDependency: apt, dpkg-deb or depmod is missing.
        LabAssetError: apt cannot find or download the package (with the apt error), and
            no kernel is cached already.
    """
    try:
        package, version = _resolve_kernel_package()
    except (LabAssetError, MissingDependency) as exc:
        cached = _cached_kernels()
        if cached:
            log.warning("%s; using the cached %s", exc, cached[-1].key)
            return cached[-1]
        raise
    folder = cache_dir() / "kernel" / f"{package}_{version}"
    stamp = folder / "ready.json"
    if stamp.exists():
        info = json.loads(stamp.read_text())
        return Kernel(package, version, folder / "root", info["release"])

    require_tool("apt-get")
    require_tool("dpkg-deb")
    depmod = require_tool("depmod")
    log.warning("lab: fetching kernel %s %s (first use; cached afterwards)", package, version)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".partial-"))
    try:
        _run(["apt-get", "download", f"{package}={version}"], f"downloading {package}", cwd=work)
        debs = list(work.glob("*.deb"))
        if not debs:
            raise LabAssetError(f"downloading {package}: apt-get produced no .deb")
        root = work / "root"
        _run(["dpkg-deb", "-x", str(debs[0]), str(root)], f"extracting {debs[0].name}")
        releases = sorted(p.name for p in (root / "lib" / "modules").iterdir())
        if not releases:
            raise LabAssetError(f"{debs[0].name} holds no lib/modules/<release>")
        release = releases[0]
        if not (root / "boot" / f"vmlinuz-{release}").exists():
            raise LabAssetError(f"{debs[0].name} holds no boot/vmlinuz-{release}")
        _run([depmod, "-b", str(root), release], f"depmod for {release}")
        debs[0].unlink()
        info = {"package": package, "version": version, "release": release}
        (work / "ready.json").write_text(json.dumps(info))
        os.chmod(work, 0o755)
        if folder.exists():  # a concurrent run finished first
            shutil.rmtree(folder)
        os.rename(work, folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Kernel(package, version, folder / "root", release)


# --- initramfs ------------------------------------------------------------------------


def find_static_busybox() -> Path:
    """Return a statically linked busybox (the initramfs has no C library)."""
    for candidate in BUSYBOX_PATHS:
        path = Path(candidate)
        if path.exists():
            if not elf_is_dynamic(path.read_bytes()):
                return path
            raise MissingDependency(
                f"{path} is dynamically linked: install Debian package busybox-static "
                "(apt-get install -y busybox-static)"
            )
    raise MissingDependency(
        "busybox not found: install Debian package busybox-static "
        "(apt-get update && apt-get install -y busybox-static)"
    )


def elf_is_dynamic(image: bytes) -> bool:
    """True when an ELF64 little-endian image has a PT_INTERP program header."""
    if image[:4] != b"\x7fELF" or image[4] != 2:
        raise LabAssetError("busybox is not a 64-bit ELF executable")
    phoff = int.from_bytes(image[0x20:0x28], "little")
    phentsize = int.from_bytes(image[0x36:0x38], "little")
    phnum = int.from_bytes(image[0x38:0x3A], "little")
    pt_interp = 3
    for i in range(phnum):
        base = phoff + i * phentsize
        if int.from_bytes(image[base : base + 4], "little") == pt_interp:
            return True
    return False


def module_load_order(kernel: Kernel, names: tuple[str, ...]) -> list[Path]:
    """The .ko files to insmod, dependencies first, for modules `names` (built-ins skipped)."""
    modprobe = require_tool("modprobe")
    order: list[Path] = []
    for name in names:
        out = _run(
            [modprobe, "-d", str(kernel.root), "-S", kernel.release, "--show-depends", name],
            f"resolving module {name}",
        )
        for line in out.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "insmod":
                path = Path(parts[1])
                if path not in order:
                    order.append(path)
    return order


def newc_archive(entries: list[tuple[str, int, bytes]]) -> bytes:
    """Build a cpio archive in the kernel's "newc" format.

    `entries` are (path, mode, data); a mode with S_IFDIR has no data. See the kernel's
    Documentation/driver-api/early-userspace/buffer-format.rst.
    """
    out = io.BytesIO()

    def pad4() -> None:
        out.write(b"\0" * (-out.tell() % 4))

    for ino, (name, mode, data) in enumerate([*entries, ("TRAILER!!!", 0, b"")], start=1):
        encoded = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields))
        out.write(encoded)
        pad4()
        out.write(data)
        pad4()
    return out.getvalue()


def _init_script() -> bytes:
    return resources.files("hwkit.lab").joinpath("init.sh").read_bytes()


def ensure_initramfs(kernel: Kernel) -> Path:
    """Return the lab initramfs for `kernel`, building it on first use."""
    busybox = find_static_busybox()
    modules = module_load_order(kernel, INITRAMFS_MODULES)
    init = _init_script()
    digest = hashlib.sha256()
    for part in (kernel.key, init, busybox.read_bytes(), *map(str, modules)):
        digest.update(part.encode() if isinstance(part, str) else part)
    target = cache_dir() / "initramfs" / f"{kernel.release}-{digest.hexdigest()[:16]}.cpio.gz"
    if target.exists():
        return target

    dirs = ["bin", "dev", "proc", "sys", "host", "ovl", "newroot", "lib", "lib/modules"]
    entries: list[tuple[str, int, bytes]] = [(d, 0o040755, b"") for d in dirs]
    entries.append(("bin/busybox", 0o100755, busybox.read_bytes()))
    entries.append(("init", 0o100755, init))
    order = []
    for path in modules:
        entries.append((f"lib/modules/{path.name}", 0o100644, path.read_bytes()))
        order.append(path.name)
    entries.append(("lib/modules/load-order", 0o100644, ("\n".join(order) + "\n").encode()))
    target.parent.mkdir(parents=True, exist_ok=True)
    # a unique temporary name: two first runs at once must not write into one file
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
    with os.fdopen(fd, "wb") as f:
        f.write(gzip.compress(newc_archive(entries), compresslevel=6))
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    return target
