"""hwkit: user-space device drivers for Linux in Python, on the I/O Kit model.

The public API is re-exported here; modules behind it are private.
"""

from hwkit.errors import (
    BadArgument,
    BusyResourceError,
    ClosedResourceError,
    DeviceGoneError,
    HwkitError,
    MissingDependency,
    NotFoundError,
    PermissionDenied,
)

__version__ = "0.1.0"

__all__ = [
    "BadArgument",
    "BusyResourceError",
    "ClosedResourceError",
    "DeviceGoneError",
    "HwkitError",
    "MissingDependency",
    "NotFoundError",
    "PermissionDenied",
    "__version__",
]
