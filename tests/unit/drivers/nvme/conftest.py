"""The NVMe spec model (model.py) behind QEMU 7.2's identify data, for the driver's tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

HERE = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("nvme_model", HERE / "model.py")
assert _spec is not None and _spec.loader is not None
model_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(model_module)

ID_CTRL = (HERE / "data" / "qemu-7.2-identify-controller.bin").read_bytes()
ID_NS = (HERE / "data" / "qemu-7.2-identify-namespace-1.bin").read_bytes()


@pytest.fixture
def model():
    """The controller model, answering as QEMU 7.2's NVMe with one namespace."""
    device = model_module.Model(ID_CTRL, ID_NS)
    yield device
    device.close()


@pytest.fixture
def nub(model):
    """The PCI nub a driver opens to reach `model`."""
    return model_module.Nub(model)
