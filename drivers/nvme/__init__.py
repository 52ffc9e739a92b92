"""NVMe driver over VFIO (imported as hwkit.drivers.nvme).

Split by concern, as SPDK's: registers and structures (``spec``), the controller
(enable, disable, admin queue, identify, reset, shutdown: ``controller``), queue pairs
(``queue``), and namespace commands (``namespace``); ``driver`` is the Service a
personality names.

    with NVMeController.open("pci:0000:00:05.0") as ctrl:
        data = ctrl.namespace(1).read(0, 8)
"""

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

__all__ = [
    "ControllerFailedError",
    "ControllerResetError",
    "NVMeController",
    "NVMeDriver",
    "NVMeError",
    "NVMeStatusError",
    "NVMeTimeout",
    "Namespace",
    "State",
]
