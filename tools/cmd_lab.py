"""`hwkit lab`: the QEMU hardware lab.

    hwkit lab run [--profile NAME ...] [--keep-output DIR] -- CMD [ARGS]
    hwkit lab profiles
    hwkit lab prepare

`run` boots a guest with the profiles' devices, runs CMD in it as root (with the
checkout and virtualenv at the host's paths), streams its output and exits with CMD's
status, or with a lab status (240-246, see hwkit.lab.errors.LabStatus) and one line
saying why when the guest itself failed.
"""

from __future__ import annotations

import argparse
import sys

from hwkit.errors import MissingDependency
from hwkit.lab import assets, profiles
from hwkit.lab.errors import LabError, LabStatus


def register(sub: argparse._SubParsersAction) -> None:
    lab = sub.add_parser("lab", help="run commands in the QEMU hardware lab")
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND")
    lab_sub.required = True

    run = lab_sub.add_parser(
        "run",
        help="boot a guest with a profile's devices and run a command in it",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--profile",
        action="append",
        metavar="NAME",
        help=f"devices to give the guest: {', '.join(profiles.profile_names())} "
        "(repeatable; default all)",
    )
    run.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="SPEC",
        help="a further QEMU -device, e.g. edu or usb-tablet,bus=xhci.0 (repeatable)",
    )
    run.add_argument(
        "--omit",
        action="append",
        default=[],
        metavar="ID",
        help="leave out the profile's QEMU device with this id, e.g. edu0 or kbd (repeatable)",
    )
    run.add_argument(
        "--module", action="append", default=[], metavar="NAME", help="a further guest module"
    )
    run.add_argument("--keep-output", metavar="DIR", help="keep console, QEMU and guest logs here")
    run.add_argument("--timeout", type=float, metavar="S", help="kill CMD after S seconds")
    run.add_argument("--boot-timeout", type=float, default=180.0, metavar="S")
    run.add_argument("--memory", type=int, default=2048, metavar="MIB")
    run.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARGS]")
    run.set_defaults(func=cmd_run)

    lab_sub.add_parser("profiles", help="list the lab profiles").set_defaults(func=cmd_profiles)
    lab_sub.add_parser(
        "prepare", help="fetch the guest kernel and build the initramfs now (cached)"
    ).set_defaults(func=cmd_prepare)


def cmd_run(args: argparse.Namespace) -> int:
    from hwkit.lab.machine import Lab

    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        print("hwkit lab run: no command given (hwkit lab run -- CMD [ARGS])", file=sys.stderr)
        return 2
    lab = Lab(
        args.profile or ["all"],
        output=args.keep_output,
        extra_devices=args.device,
        extra_modules=args.module,
        omit=args.omit,
        memory_mib=args.memory,
        boot_timeout=args.boot_timeout,
    )
    try:
        with lab:
            print(
                f"lab: guest ready in {lab.boot_seconds:.1f} s (profile {lab.profile.name}, "
                f"kernel {lab.ready.get('release')}); QMP at {lab.sock_dir}/qmp.sock",
                file=sys.stderr,
            )
            for step in lab.setup_failures():
                print(
                    f"lab: warning: guest set-up {step['step']}: {step['detail']}", file=sys.stderr
                )
            result = lab.run(
                cmd, timeout=args.timeout, stdout=sys.stdout.buffer, stderr=sys.stderr.buffer
            )
            return result.status
    except LabError as exc:
        if exc.detail:
            print(f"lab: last lines of the guest console:\n{exc.detail}", file=sys.stderr)
        print(f"hwkit lab run: {exc} [status {exc.exit_status}]", file=sys.stderr)
        return exc.exit_status


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
