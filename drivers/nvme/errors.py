"""NVMe errors: each names the command, the controller and what the device said."""

from __future__ import annotations

from hwkit.errors import DeviceGoneError, HwkitError

from .spec import Status


class NVMeError(HwkitError):
    """A command failed on an NVMe controller."""


class NVMeStatusError(NVMeError):
    """The controller completed a command with an error status (decoded to text).

    ``status`` holds the decoded :class:`~hwkit.drivers.nvme.spec.Status`.
    """

    def __init__(self, what: str, where: str, status: Status) -> None:
        super().__init__(f"{what} failed on {where}: {status}")
        self.status = status


class NVMeTimeout(NVMeError):
    """A command did not complete in time; the controller was reset afterwards."""


class ControllerResetError(NVMeError):
    """A command was still outstanding when the controller was reset: it was lost."""


class ControllerFailedError(DeviceGoneError):
    """The controller reports a fatal status (CSTS.CFS) or stopped answering."""
