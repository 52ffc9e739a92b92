"""`hwkit lab`: the QEMU hardware lab.

    hwkit lab run [--profile NAME ...] [--keep-output DIR] -- CMD [ARGS]
    hwkit lab shell [--profile NAME ...] [-- CMD [ARGS]]
    hwkit lab profiles
    hwkit lab prepare

`run` boots a guest with the profiles' devices, runs CMD in it as root (with the
checkout and virtualenv at the host's paths), streams its output and exits with CMD's
status, or with a lab status (240-246, see hwkit.lab.errors.LabStatus) and one line
saying why when the guest itself failed. `shell` does the same with a terminal: an
interactive root shell (or CMD) in the guest.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from hwkit.errors import MissingDependency
from hwkit.lab import assets, profiles
from hwkit.lab.errors import LabError, LabStatus


def _guest_options(parser: argparse.ArgumentParser) -> None:
    """The options every command that boots a guest takes."""
    parser.add_argument(
        "--profile",
        action="append",
        metavar="NAME",
        help=f"devices to give the guest: {', '.join(profiles.profile_names())} "
        "(repeatable; default all)",
    )
    parser.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="SPEC",
        help="a further QEMU -device, e.g. edu or usb-tablet,bus=xhci.0 (repeatable)",
    )
    parser.add_argument(
        "--omit",
        action="append",
        default=[],
        metavar="ID",
        help="leave out the profile's QEMU device with this id, e.g. edu0 or kbd (repeatable)",
    )
    parser.add_argument(
        "--module", action="append", default=[], metavar="NAME", help="a further guest module"
    )
    parser.add_argument("--keep-output", metavar="DIR", help="keep console, QEMU and guest logs")
    parser.add_argument("--boot-timeout", type=float, default=180.0, metavar="S")
    parser.add_argument("--memory", type=int, default=2048, metavar="MIB")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS]")


def register(sub: argparse._SubParsersAction) -> None:
    lab = sub.add_parser("lab", help="run commands in the QEMU hardware lab")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND")
    lab_sub.required = True
    for name, func, text in (
        ("run", cmd_run, "boot a guest with a profile's devices and run a command in it"),
        ("shell", cmd_shell, "boot a guest and open a root shell (or CMD) on a terminal in it"),
    ):
        parser = lab_sub.add_parser(
            name,
            help=text,
            description=__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _guest_options(parser)
        parser.set_defaults(func=func)
        if name == "run":
            parser.add_argument("--timeout", type=float, metavar="S", help="kill CMD after S s")
    lab_sub.add_parser("profiles", help="list the lab profiles").set_defaults(func=cmd_profiles)
    lab_sub.add_parser(
        "prepare", help="fetch the guest kernel and build the initramfs now (cached)"
    ).set_defaults(func=cmd_prepare)


def _command(args: argparse.Namespace) -> list[str]:
    return args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd


@contextlib.contextmanager
def _booted(args: argparse.Namespace) -> Iterator[Any]:
    """A started lab for the command line's options; says when it is ready."""
    from hwkit.lab.machine import Lab

    lab = Lab(
        args.profile or ["all"],
        output=args.keep_output,
        extra_devices=args.device,
        extra_modules=args.module,
        omit=args.omit,
        memory_mib=args.memory,
        boot_timeout=args.boot_timeout,
    )
    with lab:
        print(
            f"lab: guest ready in {lab.boot_seconds:.1f} s (profile {lab.profile.name}, "
            f"kernel {lab.ready.get('release')}); QMP at {lab.sock_dir}/qmp.sock",
            file=sys.stderr,
        )
        for step in lab.setup_failures():
            print(f"lab: warning: guest set-up {step['step']}: {step['detail']}", file=sys.stderr)
        yield lab


def _lab_failed(exc: LabError) -> int:
    if exc.detail:
        print(f"lab: last lines of the guest console:\n{exc.detail}", file=sys.stderr)
    print(f"hwkit lab: {exc} [status {exc.exit_status}]", file=sys.stderr)
    return exc.exit_status


def cmd_run(args: argparse.Namespace) -> int:
    cmd = _command(args)
    if not cmd:
        print("hwkit lab run: no command given (hwkit lab run -- CMD [ARGS])", file=sys.stderr)
        return 2
    try:
        with _booted(args) as lab:
            result = lab.run(
                cmd, timeout=args.timeout, stdout=sys.stdout.buffer, stderr=sys.stderr.buffer
            )
            return result.status
    except LabError as exc:
        return _lab_failed(exc)


def cmd_shell(args: argparse.Namespace) -> int:
    """An interactive command on a pty in the guest, this terminal in raw mode meanwhile."""
    import termios
    import tty

    cmd = _command(args) or [os.environ.get("SHELL") or "/bin/sh"]
    interactive = os.isatty(0)
    try:
        with _booted(args) as lab:
            size = shutil.get_terminal_size()
            process = lab.spawn(
                cmd, stdout=sys.stdout.buffer, stdin="pty", size=(size.lines, size.columns)
            )

            def forward() -> None:
                while data := os.read(0, 4096):
                    process.write(data)
                process.write(b"\x04")  # end of our input: ^D on the guest's terminal

            threading.Thread(target=forward, daemon=True).start()
            saved = termios.tcgetattr(0) if interactive else None
            if interactive:
                tty.setraw(0)
                signal.signal(
                    signal.SIGWINCH,
                    lambda *_: process.resize(*reversed(shutil.get_terminal_size())),
                )
            try:
                return process.wait().status
            finally:
                if saved is not None:
                    termios.tcsetattr(0, termios.TCSADRAIN, saved)
    except LabError as exc:
        return _lab_failed(exc)


def cmd_profiles(args: argparse.Namespace) -> int:
    for name in profiles.profile_names():
        if name in profiles.PROFILES:
            print(f"{name:6} {profiles.PROFILES[name].description}")
        else:
            print(f"{name:6} = {' + '.join(profiles.COMPOSITES[name])}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    try:
        kernel = assets.ensure_kernel()
        initramfs = assets.ensure_initramfs(kernel)
        assets.qemu_binary()
    except MissingDependency as exc:
        print(f"hwkit lab prepare: {exc}", file=sys.stderr)
        return int(LabStatus.MISSING_DEPENDENCY)
    except LabError as exc:
        print(f"hwkit lab prepare: {exc}", file=sys.stderr)
        return exc.exit_status
    print(f"kernel    {kernel.key} ({kernel.release})\n          {kernel.vmlinuz}")
    print(f"initramfs {initramfs}")
    return 0
