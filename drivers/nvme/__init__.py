"""NVMe driver over VFIO (imported as hwkit.drivers.nvme).

Split by concern, as SPDK's: registers and structures (``spec``), the controller
(enable, disable, admin queue, identify, reset, shutdown: ``controller``), queue pairs
(``queue``), namespace commands (``namespace``), the user client applications reach
through hwkit-daemon (``userclient``) and its script side (``client``); ``driver`` is
the Service a personality names.

Two ways in from a script.

Without the daemon, the script drives the controller itself (as root; the function is
taken from the kernel's nvme driver and given back on close). Reads return new NumPy
arrays::

    import numpy as np
    from hwkit.drivers.nvme import NVMeController

    with NVMeController.open("pci:0000:00:05.0") as ctrl:
        ns = ctrl.namespace(1)                   # block_size, blocks, size
        data = ns.read(0, 8)                     # 8 blocks as a uint8 array
        ns.write(100, np.arange(512, dtype=np.uint16))
        ns.flush()

With hwkit-daemon running the driver, the script opens its user client (as root or a
member of group ``disk``); the device DMAs into a buffer shared with the script, and
reads return views of it::

    from hwkit.drivers.nvme import NVMeClient

    with NVMeClient.open() as disk:              # or NVMeClient.open(serial="...")
        print(disk.namespaces(), disk.namespace_info(1))
        blocks = disk.read(1, lba=0, count=8)    # view of the shared buffer
        disk.write(1, lba=100, data=blocks)      # written from where it is, no copy
        disk.flush(1)

From the shell: ``hwkit call NVMeDriver namespace_info 1``.
"""

from .client import NamespaceInfo, NVMeClient
from .controller import NVMeController, State
from .driver import NVMeDriver
from .errors import (
    ControllerFailedError,
    ControllerResetError,
    NVMeError,
    NVMeStatusError,
    NVMeTimeout,
)
from .namespace import Namespace
from .userclient import NVMeUserClient

__all__ = [
    "ControllerFailedError",
    "ControllerResetError",
    "NVMeClient",
    "NVMeController",
    "NVMeDriver",
    "NVMeError",
    "NVMeStatusError",
    "NVMeTimeout",
    "NVMeUserClient",
    "Namespace",
    "NamespaceInfo",
    "State",
]
