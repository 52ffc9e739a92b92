"""PCI family: discovery, nubs, config space, I/O over VFIO.

Config space is parsed from bytes (:mod:`hwkit.pci.config`, with the capability
decoders in :mod:`hwkit.pci.capabilities`); functions are found through sysfs
(:mod:`hwkit.pci.discovery`). Address: ``pci:DDDD:BB:DD.F``.
"""

from hwkit.pci.config import (
    Bar,
    Capability,
    ConfigSpace,
    Header,
    find_capability,
    find_extended_capability,
    load_dump,
    parse_config_space,
)
from hwkit.pci.discovery import (
    PCIFunction,
    VfioReadiness,
    find_function,
    list_functions,
    vfio_readiness,
)

__all__ = [
    "Bar",
    "Capability",
    "ConfigSpace",
    "Header",
    "PCIFunction",
    "VfioReadiness",
    "find_capability",
    "find_extended_capability",
    "find_function",
    "list_functions",
    "load_dump",
    "parse_config_space",
    "vfio_readiness",
]
