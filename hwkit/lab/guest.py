"""The guest side of the lab: device set-up, then the command agent.

Run as ``python -m hwkit.lab.guest`` by the initramfs (through the guest.sh the host
writes), as root, inside the guest's overlay of the host's root. It reads
``/run/hwkit-lab/config.json`` (written by the host), loads the profile's kernel
modules from the host's kernel cache, builds the USB gadget if the profile has one,
waits for the profile's devices to settle, then reports ``ready`` on the agent port and
runs the host's commands until told to shut down.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

from hwkit.lab import agent

RUN_DIR = Path(os.environ.get("HWKIT_LAB_RUN", "/run/hwkit-lab"))
CONFIGFS = Path("/sys/kernel/config")


class Setup:
    """Runs set-up steps, recording each one's outcome for the ready message."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self._log = open(RUN_DIR / "guest-setup.log", "a", buffering=1)  # noqa: SIM115

    def record(self, step: str, ok: bool, detail: str = "") -> bool:
        self.steps.append({"step": step, "ok": ok, "detail": detail})
        self._log.write(f"{time.monotonic():8.3f} {'ok  ' if ok else 'FAIL'} {step} {detail}\n")
        return ok

    def modprobe(self, modroot: str, release: str, name: str) -> bool:
        done = subprocess.run(
            ["modprobe", "-d", modroot, "-S", release, name],
            capture_output=True,
            text=True,
            check=False,
        )
        return self.record(f"modprobe {name}", done.returncode == 0, done.stderr.strip())


def build_gadget(setup: Setup, gadget: dict[str, Any]) -> None:
    """Build a composite gadget through configfs and bind it to dummy_hcd's UDC.

    Layout (Documentation/usb/gadget_configfs.rst): gadget attributes and strings, one
    configuration, one function per entry of ``gadget["functions"]`` linked into it,
    then the UDC name written last.
    """
    try:
        if not (CONFIGFS / "usb_gadget").exists():
            subprocess.run(["mount", "-t", "configfs", "none", str(CONFIGFS)], check=True)
        root = CONFIGFS / "usb_gadget" / gadget["name"]
        root.mkdir()
        for attr in ("idVendor", "idProduct", "bcdDevice", "bcdUSB"):
            (root / attr).write_text(f"0x{gadget[attr]:04x}")
        for attr in ("bDeviceClass", "bDeviceSubClass", "bDeviceProtocol"):
            (root / attr).write_text(f"0x{gadget[attr]:02x}")
        strings = root / "strings" / "0x409"
        strings.mkdir()
        for attr in ("manufacturer", "product", "serialnumber"):
            (strings / attr).write_text(gadget[attr])
        config = root / "configs" / "c.1"
        config.mkdir()
        (config / "MaxPower").write_text("120")
        (config / "strings" / "0x409").mkdir()
        (config / "strings" / "0x409" / "configuration").write_text("hwkit lab")
        for function in gadget["functions"]:
            (root / "functions" / function).mkdir()
            (config / function).symlink_to(root / "functions" / function)
        udcs = sorted(os.listdir("/sys/class/udc"))
        if not udcs:
            setup.record("gadget", False, "no UDC in /sys/class/udc (dummy_hcd not loaded?)")
            return
        (root / "UDC").write_text(udcs[0])
        setup.record("gadget", True, f"{gadget['name']} on {udcs[0]}")
    except (OSError, subprocess.CalledProcessError) as exc:
        setup.record("gadget", False, str(exc))


def present_usb_ids(sysfs: Path = Path("/sys/bus/usb/devices")) -> set[str]:
    found = set()
    for dev in sysfs.glob("*"):
        try:
            vid = (dev / "idVendor").read_text().strip()
            pid = (dev / "idProduct").read_text().strip()
        except OSError:
            continue
        found.add(f"{vid}:{pid}")
    return found


def present_pci_ids(sysfs: Path = Path("/sys/bus/pci/devices")) -> set[str]:
    found = set()
    for dev in sysfs.glob("*"):
        try:
            vid = (dev / "vendor").read_text().strip()[2:]
            did = (dev / "device").read_text().strip()[2:]
        except OSError:
            continue
        found.add(f"{vid}:{did}")
    return found


def settle(setup: Setup, expect: list[tuple[str, str, str]], timeout: float) -> None:
    """Wait until the profile's USB and PCI devices have enumerated (or time runs out)."""
    deadline = time.monotonic() + timeout
    missing: set[str] = set()
    while True:
        usb, pci = present_usb_ids(), present_pci_ids()
        missing = {
            value
            for _, kind, value in expect
            if (kind == "usb" and value not in usb)
            or (kind == "pci" and value not in pci)
            or (kind == "path" and not os.path.exists(value))
        }
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    setup.record("settle", not missing, "missing: " + ", ".join(sorted(missing)) if missing else "")


def _take_terminal() -> None:
    """In the child: a new session whose controlling terminal is its stdin (a pty)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def find_agent_port() -> str:
    for port in Path("/sys/class/virtio-ports").glob("*"):
        if (port / "name").read_text().strip() == agent.PORT_NAME:
            return f"/dev/{port.name}"
    raise SystemExit(f"hwkit-lab guest: no virtio-serial port named {agent.PORT_NAME}")


class Agent:
    """Runs the host's commands and streams their output back over the port."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.reader = agent.LineReader(fd)
        self.children: dict[int, subprocess.Popen] = {}
        self.pipes: dict[int, tuple[int, int]] = {}  # pipe fd -> (command id, 1|2)
        self.open_pipes: dict[int, int] = {}  # command id -> pipes still open
        self.stdin_fds: dict[int, int] = {}  # command id -> its stdin (pipe or pty master)
        self.running = True

    def send(self, message: dict[str, Any]) -> None:
        agent.write_all(self.fd, agent.encode(message))

    def start(self, message: dict[str, Any]) -> None:
        """Start a command; its stdin is nothing, a pipe, or a pty (then stdout = stderr)."""
        cid = int(message["id"])
        env = dict(message.get("env") or os.environ)
        mode = message.get("stdin", "none")
        master = slave = -1
        if mode == "pty":
            master, slave = os.openpty()
            rows, cols = int(message.get("rows", 24)), int(message.get("cols", 80))
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        streams: dict[str, Any] = {
            "none": {
                "stdin": subprocess.DEVNULL,
                "stdout": subprocess.PIPE,
                "stderr": subprocess.PIPE,
            },
            "pipe": {
                "stdin": subprocess.PIPE,
                "stdout": subprocess.PIPE,
                "stderr": subprocess.PIPE,
            },
            "pty": {"stdin": slave, "stdout": slave, "stderr": slave},
        }[mode]
        try:
            child = subprocess.Popen(
                message["argv"],
                cwd=message.get("cwd") or "/",
                env=env,
                # a pty becomes the controlling terminal of the new session (job control)
                preexec_fn=_take_terminal if mode == "pty" else os.setsid,
                **streams,
            )
        except OSError as exc:
            for fd in (master, slave):
                if fd >= 0:
                    os.close(fd)
            text = f"hwkit lab: cannot run {message['argv'][0]!r} in the guest: {exc}\n"
            self.send({"op": "out", "id": cid, "fd": 2, "data": agent.pack_bytes(text.encode())})
            self.send({"op": "exit", "id": cid, "status": 127})
            return
        self.children[cid] = child
        if mode == "pty":
            os.close(slave)
            self.pipes[master] = (cid, 1)
            self.stdin_fds[cid] = master
            self.open_pipes[cid] = 1
            return
        assert child.stdout is not None and child.stderr is not None
        self.pipes[child.stdout.fileno()] = (cid, 1)
        self.pipes[child.stderr.fileno()] = (cid, 2)
        self.open_pipes[cid] = 2
        if child.stdin is not None:
            self.stdin_fds[cid] = child.stdin.fileno()

    def handle(self, message: dict[str, Any]) -> None:
        op = message["op"]
        cid = int(message.get("id", -1))
        if op == "run":
            self.start(message)
        elif op == "signal":
            child = self.children.get(cid)
            if child is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, int(message["signal"]))
        elif op == "stdin" and cid in self.stdin_fds:
            with contextlib.suppress(OSError):  # the command may have closed its end
                agent.write_all(self.stdin_fds[cid], agent.unpack_bytes(message["data"]))
        elif op == "stdin_close" and cid in self.stdin_fds:
            child = self.children.get(cid)
            if child is not None and child.stdin is not None:  # a pipe; a pty stays
                child.stdin.close()
                del self.stdin_fds[cid]
        elif op == "resize" and cid in self.stdin_fds:
            size = struct.pack("HHHH", int(message["rows"]), int(message["cols"]), 0, 0)
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.stdin_fds[cid], termios.TIOCSWINSZ, size)
        elif op == "shutdown":
            self.running = False
        else:
            self.send({"op": "log", "text": f"ignored {op!r} (unknown, or no such command)"})

    def pump(self, fd: int) -> None:
        cid, stream = self.pipes[fd]
        try:
            data = os.read(fd, agent.CHUNK)
        except OSError:  # a pty master reads EIO once the command has gone
            data = b""
        if data:
            self.send({"op": "out", "id": cid, "fd": stream, "data": agent.pack_bytes(data)})
            return
        del self.pipes[fd]
        os.close(fd)
        self.open_pipes[cid] -= 1
        if self.open_pipes[cid] == 0:
            del self.open_pipes[cid]
            child = self.children.pop(cid)
            if child.stdin is not None:
                child.stdin.close()
            self.stdin_fds.pop(cid, None)
            status = child.wait()
            self.send({"op": "exit", "id": cid, "status": status})

    def serve(self) -> None:
        while self.running:
            readable, _, _ = select.select([self.fd, *self.pipes], [], [])
            for fd in readable:
                if fd == self.fd:
                    messages = self.reader.read()
                    if messages is None:  # host went away
                        self.running = False
                        break
                    for message in messages:
                        self.handle(message)
                elif fd in self.pipes:
                    self.pump(fd)
        for child in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)


def main() -> int:
    config = json.loads((RUN_DIR / "config.json").read_text())
    setup = Setup()
    for name in config.get("modules", []):
        setup.modprobe(config["modroot"], config["release"], name)
    if gadget := config.get("gadget"):
        build_gadget(setup, gadget)
    settle(setup, config.get("expect", []), float(config.get("settle_timeout", 30)))

    fd = os.open(find_agent_port(), os.O_RDWR)
    worker = Agent(fd)
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    worker.send(
        {"op": "ready", "setup": setup.steps, "uptime": uptime, "release": os.uname().release}
    )
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
