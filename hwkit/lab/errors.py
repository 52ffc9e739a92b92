"""Why the lab itself failed, as distinct exit statuses of `hwkit lab run`.

`hwkit lab run -- CMD` exits with CMD's status (128+N when a signal N killed it). When
the guest, not CMD, is at fault it exits with one of the statuses below and prints one
line explaining it, so a CI log never blames a test for a lab that did not boot.
"""

from __future__ import annotations

from enum import IntEnum

from hwkit.errors import HwkitError


class LabStatus(IntEnum):
    """Exit statuses reserved for lab failures (CMD's own statuses pass through)."""

    MISSING_DEPENDENCY = 240  # a host tool or package is missing (QEMU, busybox, kmod...)
    NO_KERNEL = 241  # the guest kernel or initramfs could not be fetched or built
    BOOT_TIMEOUT = 242  # the guest did not report ready in time
    GUEST_PANIC = 243  # the guest kernel panicked
    QEMU_ABORT = 244  # QEMU exited or crashed under the guest (hardware error, bad args)
    GUEST_FAILED = 245  # the guest's init or agent failed, or the guest stopped answering
    COMMAND_TIMEOUT = 246  # CMD ran past --timeout and was killed


class LabError(HwkitError):
    """The lab (not the command inside it) failed; `status` is the exit status to use."""

    status = LabStatus.GUEST_FAILED

    def __init__(self, message: str, status: LabStatus | None = None, detail: str = ""):
        super().__init__(message)
        if status is not None:
            self.status = status
        self.detail = detail

    @property
    def exit_status(self) -> int:
        return int(self.status)


class LabAssetError(LabError):
    """The kernel package or the initramfs could not be fetched or built."""

    status = LabStatus.NO_KERNEL
