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


class DescriptorError(BadArgument):
    """Bytes that should hold a descriptor or config-space structure are malformed.

    Raised by the pure parsers (USB descriptors, PCI config space, saved dumps) for
    data that is truncated, has a length of 0 or one running past the end, the wrong
    type, or a pointer chain that loops or leaves the structure. The message names the
    offset and what was wrong; ``offset`` holds it too (None when not applicable).
    """

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class UnsupportedError(HwkitError):
    """The object does not implement the request (I/O Kit's kIOReturnUnsupported).

    For example a client setting properties on a service that does not override
    ``set_properties``.
    """
