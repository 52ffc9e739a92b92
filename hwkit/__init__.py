"""hwkit: user-space device drivers for Linux in Python, on the I/O Kit model.

The public API is re-exported here; modules behind it are private.
"""

from hwkit.dataqueue import DataQueue, DataQueueReader
from hwkit.dma import Direction, DMABuffer, DMACommand, DMAMapper, IOVAAllocator
from hwkit.errors import (
    BadArgument,
    BusyResourceError,
    ClosedResourceError,
    DescriptorError,
    DeviceGoneError,
    HwkitError,
    MissingDependency,
    NotFoundError,
    PermissionDenied,
    UnsupportedError,
)
from hwkit.matching.catalogue import Catalogue
from hwkit.matching.engine import MatchingEngine
from hwkit.matching.matcher import match_nub
from hwkit.mmio import Registers
from hwkit.registry import POWER_PLANE, SERVICE_PLANE, Registry, RegistryEntry
from hwkit.service import Message, Nub, Resources, Service, ServiceState
from hwkit.shmem import SharedMemory
from hwkit.userclient import VARIABLE, AsyncReference, UserClient, external_method
from hwkit.workloop import (
    CommandGate,
    EventSource,
    FdEventSource,
    FilterInterruptEventSource,
    InterruptEventSource,
    TimerEventSource,
    WorkLoop,
)

__version__ = "0.1.0"

__all__ = [
    "POWER_PLANE",
    "SERVICE_PLANE",
    "VARIABLE",
    "AsyncReference",
    "BadArgument",
    "BusyResourceError",
    "Catalogue",
    "ClosedResourceError",
    "CommandGate",
    "DMABuffer",
    "DMACommand",
    "DMAMapper",
    "DataQueue",
    "DataQueueReader",
    "DescriptorError",
    "DeviceGoneError",
    "Direction",
    "EventSource",
    "FdEventSource",
    "FilterInterruptEventSource",
    "HwkitError",
    "IOVAAllocator",
    "InterruptEventSource",
    "MatchingEngine",
    "Message",
    "MissingDependency",
    "NotFoundError",
    "Nub",
    "PermissionDenied",
    "Registers",
    "Registry",
    "RegistryEntry",
    "Resources",
    "Service",
    "ServiceState",
    "SharedMemory",
    "TimerEventSource",
    "UnsupportedError",
    "UserClient",
    "WorkLoop",
    "__version__",
    "external_method",
    "match_nub",
]
