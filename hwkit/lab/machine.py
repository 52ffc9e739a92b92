"""The host side of the lab: boot a QEMU guest, run commands in it, change its hardware.

    with Lab(["pci"]) as lab:                      # boots; waits for the guest agent
        result = lab.run(["lspci", "-n"])          # runs as root in the guest
        lab.qmp.device_add("edu", bus="hotplug0", id="edu1")
        lab.ftdi.sendall(b"hello")                 # the usb-serial FTDI's host end

The guest sees the host's root file system read-only with a tmpfs overlay on top, so
the checkout, its virtualenv and every host tool are at the same paths. A run folder
(logs, scratch disks, files the guest writes) is shared read-write at /run/hwkit-lab.

Threading: one reader thread per lab takes the agent's messages; any thread may call
:meth:`Lab.run` (commands run concurrently in the guest).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from hwkit.errors import BadArgument, MissingDependency
from hwkit.lab import agent, assets, profiles
from hwkit.lab.errors import LabError, LabStatus
from hwkit.lab.qmp import QMP

log = logging.getLogger(__name__)

GUEST_RUN_DIR = "/run/hwkit-lab"
# no_timer_check: under a loaded TCG host the IO-APIC timer check can fail and panic
# the boot ("timer doesn't work through Interrupt-remapped IO-APIC"); VMs skip it.
KERNEL_ARGS = (
    "console=ttyS0 quiet intel_iommu=on iommu=pt panic=-1 oops=panic rdinit=/init no_timer_check"
)


@dataclass
class Result:
    """What a guest command did. `status` follows the shell: 128+N for signal N."""

    argv: list[str]
    status: int
    stdout: bytes
    stderr: bytes

    @property
    def text(self) -> str:
        return self.stdout.decode(errors="replace")

    def check(self) -> Result:
        if self.status != 0:
            raise LabError(
                f"guest command {shlex.join(self.argv)} exited with {self.status}: "
                f"{self.stderr.decode(errors='replace').strip()[-2000:]}"
            )
        return self


class _Command:
    def __init__(self, argv: list[str], sinks: dict[int, Callable[[bytes], None] | None]) -> None:
        self.argv = argv
        self.sinks = sinks
        self.chunks: dict[int, list[bytes]] = {1: [], 2: []}
        self.done = queue.Queue[int]()


class GuestProcess:
    """A command running in the guest (from :meth:`Lab.spawn`)."""

    def __init__(self, lab: Lab, cid: int, command: _Command) -> None:
        self.lab = lab
        self.cid = cid
        self.command = command
        self.result: Result | None = None

    def signal(self, signum: int) -> None:
        """Send `signum` to the command's process group in the guest."""
        self.lab._send({"op": "signal", "id": self.cid, "signal": int(signum)})

    def write(self, data: bytes) -> None:
        """Feed the command's stdin (spawned with stdin="pipe" or "pty")."""
        for start in range(0, len(data), agent.CHUNK):
            chunk = agent.pack_bytes(data[start : start + agent.CHUNK])
            self.lab._send({"op": "stdin", "id": self.cid, "data": chunk})

    def close_stdin(self) -> None:
        """End of input for a stdin="pipe" command."""
        self.lab._send({"op": "stdin_close", "id": self.cid})

    def resize(self, rows: int, cols: int) -> None:
        """Tell a stdin="pty" command its terminal's new size (SIGWINCH follows)."""
        self.lab._send({"op": "resize", "id": self.cid, "rows": rows, "cols": cols})

    def wait(self, timeout: float | None = None, check: bool = False) -> Result:
        """Wait for the command to end (killing it after `timeout` s); see Lab.run."""
        if self.result is None:
            try:
                status = self.lab._wait_command(self.cid, self.command, timeout)
            finally:
                self.lab._commands.pop(self.cid, None)
            chunks = self.command.chunks
            self.result = Result(
                self.command.argv, status, b"".join(chunks[1]), b"".join(chunks[2])
            )
        return self.result.check() if check else self.result


class Lab:
    """One QEMU guest with the devices of some profiles.

    Args:
        profile_names: profile names (see :mod:`hwkit.lab.profiles`), e.g. ["pci", "usb"].
        output: keep the run folder (logs, console, scratch disks) here; default a
            temporary folder removed on close.
        extra_devices: further QEMU ``-device`` specs (``edu``, ``usb-tablet,bus=xhci.0``).
        extra_modules: further guest kernel modules to load.
        kernel_args: appended to the guest kernel's command line.
        omit: QEMU ids of profile devices to leave out (``edu0``, ``kbd``...), to see
            how software copes with an absent device.
        boot_timeout: seconds until the guest agent must report ready.

    Raises (from :meth:`start`): MissingDependency (a host package is missing),
    LabError with a :class:`LabStatus` saying why the guest failed.
    """

    def __init__(
        self,
        profile_names: Sequence[str] = ("pci",),
        *,
        output: str | os.PathLike[str] | None = None,
        extra_devices: Sequence[str] = (),
        extra_modules: Sequence[str] = (),
        omit: Sequence[str] = (),
        kernel_args: str = "",
        memory_mib: int = 2048,
        cpus: int = 2,
        boot_timeout: float = 180.0,
    ) -> None:
        merged = profiles.merged(profiles.resolve(list(profile_names)))
        self.profile = merged.without(list(omit))
        self.extra_devices = list(extra_devices)
        self.modules = [*self.profile.modules, *extra_modules]
        self.kernel_args = f"{KERNEL_ARGS} {kernel_args}".strip()
        self.memory_mib = memory_mib
        self.cpus = cpus
        self.boot_timeout = boot_timeout
        self.keep = output is not None
        self.run_dir = Path(output) if output else Path(tempfile.mkdtemp(prefix="hwkit-lab-"))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # Unix socket paths must stay under 108 bytes, whatever `output` is.
        self.sock_dir = Path(tempfile.mkdtemp(prefix="hwkit-lab-sock-"))
        self.qemu: subprocess.Popen[bytes] | None = None
        self.boot_seconds: float | None = None
        self.ready: dict[str, Any] = {}
        self._qmp: QMP | None = None
        self._ftdi: socket.socket | None = None
        self._agent: socket.socket | None = None
        self._commands: dict[int, _Command] = {}
        self._next_id = 1
        self._lock = threading.Lock()
        self._lost: str | None = None
        self._closed = False

    # --- boot ---------------------------------------------------------------------

    def qemu_argv(self, kernel: assets.Kernel, initramfs: Path) -> list[str]:
        run, socks = str(self.run_dir), str(self.sock_dir)
        argv = [
            assets.qemu_binary(),
            # x86-64-v2 (what NumPy's wheels need) and no more: under TCG the wider
            # feature set of -cpu max made Python ~15% slower (lab measurement).
            "-M", "q35", "-accel", "tcg", "-cpu", "qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt",
            "-m", str(self.memory_mib), "-smp", str(self.cpus),
            "-nodefaults", "-display", "none", "-vga", "none", "-no-reboot", "-nic", "none",
            # The IOMMU must exist before the devices behind it.
            "-device", "intel-iommu",
            "-kernel", str(kernel.vmlinuz), "-initrd", str(initramfs), "-append", self.kernel_args,
            "-chardev", f"file,id=console,path={run}/console.log", "-serial", "chardev:console",
            "-virtfs",
            "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
            "-virtfs", f"local,path={run},mount_tag=hwkitrun,security_model=none",
            "-device", "virtio-serial-pci,id=vser",
            "-chardev", f"socket,id=agent,path={socks}/agent.sock",
            "-device", f"virtserialport,bus=vser.0,chardev=agent,name={agent.PORT_NAME}",
            "-qmp", f"unix:{socks}/qmp.sock,server=on,wait=off",
        ]  # fmt: skip
        argv += [a.replace("{run}", run).replace("{sock}", socks) for a in self.profile.devices]
        for spec in self.extra_devices:
            argv += ["-device", spec]
        return argv

    def _write_guest_files(self, kernel: assets.Kernel) -> None:
        config = {
            "modroot": str(kernel.root),
            "release": kernel.release,
            "modules": self.modules,
            "gadget": self.profile.gadget,
            "expect": self.profile.expect,
            "settle_timeout": 30,
        }
        (self.run_dir / "config.json").write_text(json.dumps(config, indent=2))
        env = {**os.environ, **self.guest_env()}
        lines = ["#!/bin/sh", "# Written by the lab host; run by the guest's /init."]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in env.items() if k.isidentifier()]
        lines += [f"cd {shlex.quote(os.getcwd())} 2>/dev/null || cd /"]
        lines += [f"exec {shlex.quote(sys.executable)} -m hwkit.lab.guest"]
        (self.run_dir / "guest.sh").write_text("\n".join(lines) + "\n")
        for image in self.profile.images:
            with open(self.run_dir / f"{image.id}.img", "wb") as f:
                f.truncate(image.size_mib << 20)

    def guest_env(self) -> dict[str, str]:
        """Variables every guest command gets on top of the host's environment."""
        return {
            "HWKIT_LAB_GUEST": "1",
            "HWKIT_LAB_RUN": GUEST_RUN_DIR,
            "HWKIT_LAB_PROFILES": self.profile.name,
            "HOME": os.environ.get("HOME", "/root"),
        }

    def start(self) -> Lab:
        """Boot the guest and wait until its agent is ready (see the class for errors)."""
        try:
            assets.qemu_binary()  # the cheapest check first
            kernel = assets.ensure_kernel()
            initramfs = assets.ensure_initramfs(kernel)
            argv = self.qemu_argv(kernel, initramfs)
        except MissingDependency as exc:
            raise LabError(str(exc), LabStatus.MISSING_DEPENDENCY) from exc
        self._write_guest_files(kernel)
        listeners = {name: self._listen(name) for name in self._client_sockets()}
        (self.run_dir / "qemu.cmdline").write_text(shlex.join(argv) + "\n")
        started = time.monotonic()
        qemu_log = open(self.run_dir / "qemu.log", "wb")  # noqa: SIM115
        self.qemu = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=qemu_log, stderr=subprocess.STDOUT
        )
        qemu_log.close()
        try:
            accepted = {n: self._accept(n, s) for n, s in listeners.items()}
        finally:
            for s in listeners.values():
                s.close()
        self._agent = accepted["agent.sock"]
        self._ftdi = accepted.get(profiles.FTDI_SOCKET)
        reader = agent.LineReader(self._agent.fileno())
        self._wait_ready(reader, started)
        threading.Thread(target=self._read_loop, args=(reader,), daemon=True).start()
        self._qmp = QMP(str(self.sock_dir / "qmp.sock"))
        return self

    def _client_sockets(self) -> list[str]:
        names = ["agent.sock"]
        if self.profile.ftdi:
            names.append(profiles.FTDI_SOCKET)
        return names

    def _listen(self, name: str) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(self.sock_dir / name))
        s.listen(1)
        return s

    def _accept(self, name: str, listener: socket.socket) -> socket.socket:
        """QEMU connects its client chardevs while it starts; wait for that."""
        deadline = time.monotonic() + 30
        listener.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                conn, _ = listener.accept()
                conn.setblocking(True)
                return conn
            except TimeoutError:
                if self.qemu is not None and self.qemu.poll() is not None:
                    raise self.diagnose("QEMU exited while starting") from None
        raise self.diagnose(f"QEMU did not connect its {name} chardev within 30 s")

    def _wait_ready(self, reader: agent.LineReader, started: float) -> None:
        assert self._agent is not None
        deadline = started + self.boot_timeout
        self._agent.settimeout(0.5)
        while True:
            if self.qemu is not None and self.qemu.poll() is not None:
                raise self.diagnose("the guest stopped before it was ready")
            if time.monotonic() > deadline:
                self._kill_qemu()
                raise self.diagnose(
                    f"the guest was not ready within {self.boot_timeout:.0f} s",
                    LabStatus.BOOT_TIMEOUT,
                )
            try:
                data = self._agent.recv(65536)
            except TimeoutError:
                continue
            if not data:
                raise self.diagnose("the guest agent closed its port before it was ready")
            for message in reader.feed(data):
                if message["op"] == "ready":
                    self.ready = message
                    self.boot_seconds = time.monotonic() - started
                    self._agent.settimeout(None)
                    return
                log.info("guest: %s", message)

    def setup_failures(self) -> list[dict[str, Any]]:
        """Guest set-up steps that failed (a module that did not load, a gadget...)."""
        return [s for s in self.ready.get("setup", []) if not s["ok"]]

    # --- diagnosis ----------------------------------------------------------------

    def console_text(self) -> str:
        try:
            return (self.run_dir / "console.log").read_text(errors="replace")
        except OSError:
            return ""

    def diagnose(self, what: str, status: LabStatus | None = None) -> LabError:
        """Turn a guest that stopped or hung into a LabError saying why, with evidence."""
        console = self.console_text()
        try:
            qemu_log = (self.run_dir / "qemu.log").read_text(errors="replace")
        except OSError:
            qemu_log = ""
        code = None
        if self.qemu is not None:
            # QEMU may be closing its sockets on the way out: give it time to be reaped.
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.qemu.wait(timeout=5)
        tail = "\n".join(console.strip().splitlines()[-25:])
        panic = next((ln for ln in console.splitlines() if "Kernel panic" in ln), None)
        init_failed = next((ln for ln in console.splitlines() if "init failed" in ln), None)
        if status is None:
            if panic:
                status, what = LabStatus.GUEST_PANIC, f"{what}: guest kernel panic: {panic.strip()}"
            elif code is not None and (code < 0 or "hardware error" in qemu_log or code != 0):
                last = (qemu_log.strip().splitlines() or ["(no output)"])[-1]
                how = f"signal {-code}" if code < 0 else f"status {code}"
                status, what = LabStatus.QEMU_ABORT, f"{what}: QEMU ended with {how}: {last}"
            elif init_failed:
                status, what = LabStatus.GUEST_FAILED, f"{what}: {init_failed.strip()}"
            else:
                status = LabStatus.GUEST_FAILED
        where = f"logs in {self.run_dir}" if self.keep else "rerun with --keep-output DIR for logs"
        return LabError(f"lab: {what} ({where})", status, detail=tail)

    # --- commands -----------------------------------------------------------------

    def _read_loop(self, reader: agent.LineReader) -> None:
        while True:
            try:
                messages = reader.read()
            except (OSError, agent.ProtocolError) as exc:
                messages, self._lost = None, str(exc)
            if messages is None:
                self._lost = self._lost or "the guest agent closed its port"
                for command in list(self._commands.values()):
                    command.done.put(-1)
                return
            for message in messages:
                self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        command = self._commands.get(message.get("id", -1))
        if message["op"] == "out" and command is not None:
            data = agent.unpack_bytes(message["data"])
            sink = command.sinks.get(message["fd"])
            if sink is not None:
                sink(data)
            else:
                command.chunks[message["fd"]].append(data)
        elif message["op"] == "exit" and command is not None:
            command.done.put(int(message["status"]))
        elif message["op"] == "log":
            log.info("guest agent: %s", message.get("text"))

    def spawn(
        self,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        stdout: BinaryIO | Callable[[bytes], None] | None = None,
        stderr: BinaryIO | Callable[[bytes], None] | None = None,
        stdin: str = "none",
        size: tuple[int, int] = (24, 80),
    ) -> GuestProcess:
        """Start `argv` as root in the guest and return at once (see :meth:`run`).

        `stdin` is "none", "pipe" (feed it with :meth:`GuestProcess.write`) or "pty" (a
        terminal of `size` rows and columns; stdout and stderr both come on stdout).
        """
        if stdin not in ("none", "pipe", "pty"):
            raise BadArgument(f"stdin must be 'none', 'pipe' or 'pty', not {stdin!r}")
        if self._agent is None or self._closed:
            raise LabError("lab: not started (use Lab.start() or `with Lab(...)`)")
        sinks = {1: _sink(stdout), 2: _sink(stderr)}
        with self._lock:
            cid, self._next_id = self._next_id, self._next_id + 1
            command = self._commands[cid] = _Command(list(argv), sinks)
            message = {
                "op": "run",
                "id": cid,
                "argv": list(argv),
                "cwd": cwd or os.getcwd(),
                "env": {**os.environ, **self.guest_env(), **(env or {})},
                "stdin": stdin,
                "rows": size[0],
                "cols": size[1],
            }
            agent.write_all(self._agent.fileno(), agent.encode(message))
        return GuestProcess(self, cid, command)

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        timeout: float | None = None,
        stdout: BinaryIO | Callable[[bytes], None] | None = None,
        stderr: BinaryIO | Callable[[bytes], None] | None = None,
        check: bool = False,
        input: bytes | None = None,
    ) -> Result:
        """Run `argv` as root in the guest and wait for it.

        Output is collected into the Result, or streamed to `stdout` / `stderr` (a
        binary file or a callable taking bytes) as it arrives. `input` is fed to its
        stdin (otherwise stdin is /dev/null).

        Raises:
            LabError: COMMAND_TIMEOUT after `timeout` s (the command is killed), or the
                guest was lost while it ran; with `check`, a non-zero status.
        """
        mode = "none" if input is None else "pipe"
        process = self.spawn(argv, cwd=cwd, env=env, stdout=stdout, stderr=stderr, stdin=mode)
        if input is not None:
            process.write(input)
            process.close_stdin()
        return process.wait(timeout, check=check)

    def _wait_command(self, cid: int, command: _Command, timeout: float | None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                status = command.done.get(timeout=1.0)
                break
            except queue.Empty:
                pass
            if self.qemu is not None and self.qemu.poll() is not None:
                raise self.diagnose(f"the guest stopped while running {command.argv[0]}")
            if deadline is not None and time.monotonic() > deadline:
                self._send({"op": "signal", "id": cid, "signal": 9})
                with contextlib.suppress(queue.Empty):
                    command.done.get(timeout=10)
                raise LabError(
                    f"lab: {shlex.join(command.argv)} ran past its {timeout:.0f} s timeout "
                    "and was killed",
                    LabStatus.COMMAND_TIMEOUT,
                )
        if status == -1 and self._lost:
            raise self.diagnose(f"{self._lost} while running {command.argv[0]}")
        return 128 - status if status < 0 else status

    def python(self, code: str, **kwargs: Any) -> Result:
        """Run Python `code` in the guest with the host's interpreter and virtualenv."""
        return self.run([sys.executable, "-c", code], **kwargs)

    def _send(self, message: dict[str, Any]) -> None:
        if self._agent is not None:
            with contextlib.suppress(OSError):
                agent.write_all(self._agent.fileno(), agent.encode(message))

    # --- the guest's hardware ---------------------------------------------------------

    @property
    def qmp(self) -> QMP:
        """The QMP monitor of this guest's QEMU (hot-plug, removal, input events)."""
        if self._qmp is None:
            raise LabError("lab: not started")
        return self._qmp

    @property
    def ftdi(self) -> socket.socket:
        """The host end of the usb-serial FTDI: bytes sent here arrive on its bulk IN.

        Keep it open: QEMU detaches the FTDI from the guest when this end closes.
        """
        if self._ftdi is None:
            raise LabError("lab: this guest has no FTDI (use the usb profile)")
        return self._ftdi

    # --- shutdown -----------------------------------------------------------------

    def _kill_qemu(self) -> None:
        if self.qemu is not None and self.qemu.poll() is None:
            self.qemu.kill()
            self.qemu.wait()

    def close(self, timeout: float = 30.0) -> None:
        """Power the guest off (agent shutdown, then kill after `timeout`); clean up."""
        if self._closed:
            return
        self._closed = True
        self._send({"op": "shutdown"})
        if self.qemu is not None:
            try:
                self.qemu.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_qemu()
        for conn in (self._qmp, self._ftdi, self._agent):
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.close()
        shutil.rmtree(self.sock_dir, ignore_errors=True)
        if self.keep:
            for image in self.profile.images:  # scratch disks are not evidence
                (self.run_dir / f"{image.id}.img").unlink(missing_ok=True)
        else:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> Lab:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sink(target: BinaryIO | Callable[[bytes], None] | None) -> Callable[[bytes], None] | None:
    if target is None or callable(target):
        return target

    def write(data: bytes) -> None:
        target.write(data)
        target.flush()

    return write
