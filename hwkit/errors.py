"""hwkit's exception hierarchy.

In the spirit of Trio's: the error says whose fault it is. Every message names what
failed, on which device, and what to do about it.
"""

from __future__ import annotations


class HwkitError(Exception):
    """Base class of every error hwkit raises on purpose."""


class ClosedResourceError(HwkitError):
    """You closed it (or it was closed under you) and then used it."""


class DeviceGoneError(HwkitError):
    """The device went away or broke (hot-unplug, all-ones read, NO_DEVICE).

    The cause, where there is one, is chained.
    """


class BusyResourceError(HwkitError):
    """Someone else holds the resource (a kernel driver, another claim)."""


class BadArgument(HwkitError):
    """The caller got it wrong: the message says what was expected."""


class PermissionDenied(HwkitError):
    """Not allowed: the message names the credential that was missing."""


class NotFoundError(HwkitError):
    """The named device, service, file or personality does not exist."""


class MissingDependency(HwkitError):
    """A system package or tool hwkit needs is not installed.

    The message is one line naming the package and the command that installs it.
    """
