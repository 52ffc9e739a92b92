#!/usr/bin/env bash
# Installs what hwkit and its lab need on a Debian machine, then the package itself into
# ./.venv. Idempotent: a second run installs nothing and takes a second or two.
# Sourced by tools/lab-demo and tools/run-tests; safe to run on its own.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$top"

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

# Debian packages: QEMU and its image tool, a static busybox and kmod for the guest's
# initramfs, libusb for python-libusb1, pciutils/usbutils to compare against,
# python3-venv for Debian's own Python, a C compiler with the kernel's headers for
# the benchmarks' C references, and fio, the kernel's side of the NVMe benchmark (the
# lab's guest runs the host's root file system, so it finds fio there too).
packages=(qemu-system-x86 qemu-utils busybox-static kmod libusb-1.0-0 pciutils usbutils
          python3-venv gcc libc6-dev linux-libc-dev fio)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# The lab downloads its kernel with apt: that needs package lists that know it.
kernel_policy=$(apt-cache policy linux-image-amd64 2>/dev/null || true)
if [ ${#missing[@]} -gt 0 ] || [[ "$kernel_policy" != *"Candidate: "[0-9]* ]]; then
    echo "setup: apt-get update" >&2
    $SUDO apt-get update -q >/dev/null
fi
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv" >&2
    python3 -m venv .venv
fi
stamp=.venv/.hwkit-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing hwkit and its test tools into .venv" >&2
    log=$(mktemp)
    if ! { .venv/bin/python -m pip install -q --upgrade pip &&
           .venv/bin/python -m pip install -q -e ".[test]"; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "setup: pip install failed (output above)" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
    touch "$stamp"
fi
