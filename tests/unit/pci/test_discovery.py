"""Tests of hwkit.pci.discovery against fake sysfs trees."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwkit.errors import BadArgument, DescriptorError, NotFoundError
from hwkit.pci import discovery
from hwkit.pci.capabilities import CapId

from .configs import EDU, NIC, NVME, ROOT_PORT
from .fakesys import add_pci_function

MEM64 = 0x00140204
MEM32 = 0x00040200
IO = 0x00040101


@pytest.fixture
def sysfs(tmp_path):
    add_pci_function(
        tmp_path,
        "0000:00:02.0",
        EDU,
        resources=[(0xFEA00000, 0xFEAFFFFF, MEM32)],
        driver="vfio-pci",
        group=3,
    )
    add_pci_function(
        tmp_path,
        "0000:00:03.0",
        NVME,
        resources=[(0xFEBD0000, 0xFEBD3FFF, MEM64)],
        driver="nvme",
        group=4,
        readable=64,
    )
    add_pci_function(tmp_path, "0000:00:1c.0", ROOT_PORT, driver="pcieport", group=5)
    add_pci_function(
        tmp_path,
        "0000:01:00.0",
        NIC,
        resources=[
            (0xF7A00000, 0xF7A1FFFF, MEM32),
            (0, 0, 0),
            (0xE000, 0xE01F, IO),
            (0xF7B00000, 0xF7B03FFF, MEM32),
        ],
        driver="igb",
        group=5,
        parent="0000:00:1c.0",
        override="vfio-pci",
    )
    (tmp_path / "bus/pci/drivers/vfio-pci").mkdir(parents=True, exist_ok=True)
    return tmp_path


def test_list_functions(sysfs):
    fns = discovery.list_functions(sysfs)
    assert [f.bdf for f in fns] == ["0000:00:02.0", "0000:00:03.0", "0000:00:1c.0", "0000:01:00.0"]
    edu = fns[0]
    assert (edu.vendor_id, edu.device_id, edu.class_code, edu.revision) == (
        0x1234,
        0x11E8,
        0x00FF00,
        0x10,
    )
    assert (edu.subsystem_vendor_id, edu.subsystem_id) == (0x1AF4, 0x1100)
    assert edu.driver == "vfio-pci" and edu.iommu_group == 3 and edu.driver_override is None
    assert edu.config_complete and edu.parent is None and edu.address == "pci:0000:00:02.0"


def test_unprivileged_config_read_is_flagged(sysfs):
    nvme = discovery.find_function("pci:00:03.0", sysfs)
    assert len(nvme.config) == 64 and nvme.config_size == 64
    # A real sysfs file reports its full size while handing non-root 64 bytes.
    nvme = discovery.PCIFunction(**{**nvme.__dict__, "config_size": 4096})
    assert not nvme.config_complete
    space = nvme.parse()
    assert space.capabilities == () and not space.capabilities_readable
    (bar,) = space.bars
    assert (bar.address, bar.size, bar.is_64bit) == (0xFEBD0000, 16384, True)


def test_bridge_child_group_and_override(sysfs):
    nic = discovery.find_function("pci:0000:01:00.0", sysfs)
    assert nic.parent == "0000:00:1c.0"
    assert nic.iommu_group_members == ("0000:00:1c.0", "0000:01:00.0")
    assert nic.driver_override == "vfio-pci"
    space = nic.parse()
    assert [(b.index, b.kind, b.size) for b in space.bars] == [
        (0, "memory", 0x20000),
        (2, "io", 32),
        (3, "memory", 0x4000),
    ]
    assert space.capability(CapId.MSI_X).fields["table_size"] == 10


def test_vfio_readiness(sysfs):
    fns = discovery.list_functions(sysfs)
    by = {f.bdf: f for f in fns}
    edu = discovery.vfio_readiness(by["0000:00:02.0"], fns, sysfs, sysfs / "dev")
    assert edu.reasons == ("/dev/vfio/3 does not exist (yet)",)
    (sysfs / "dev/vfio").mkdir(parents=True)
    (sysfs / "dev/vfio/3").touch()
    edu = discovery.vfio_readiness(by["0000:00:02.0"], fns, sysfs, sysfs / "dev")
    assert edu.ready and edu.group_viable and edu.commands == ()
    nic = discovery.vfio_readiness(by["0000:01:00.0"], fns, sysfs, sysfs / "dev")
    assert not nic.ready and nic.group_viable  # the bridge does not block
    assert nic.commands == (
        "echo vfio-pci > /sys/bus/pci/devices/0000:01:00.0/driver_override",
        "echo 0000:01:00.0 > /sys/bus/pci/devices/0000:01:00.0/driver/unbind",
        "echo 0000:01:00.0 > /sys/bus/pci/drivers_probe",
    )
    assert nic.reasons == ("bound to igb, not vfio-pci",)


def test_group_with_a_bound_endpoint_is_not_viable(sysfs):
    fns = discovery.list_functions(sysfs)
    root_port = next(f for f in fns if f.bdf == "0000:00:1c.0")
    # Pretend the root port is an endpoint sharing the NIC's group.
    fake = discovery.PCIFunction(**{**root_port.__dict__, "class_code": 0x020000})
    fns = [fake if f.bdf == fake.bdf else f for f in fns]
    nic = next(f for f in fns if f.bdf == "0000:01:00.0")
    result = discovery.vfio_readiness(nic, fns, sysfs, sysfs / "dev")
    assert not result.group_viable
    assert "0000:00:1c.0 is bound to pcieport" in result.reasons[1]


def test_no_iommu(sysfs):
    fn = discovery.PCIFunction(
        **{**discovery.find_function("pci:00:02.0", sysfs).__dict__, "iommu_group": None}
    )
    assert "no IOMMU group" in discovery.vfio_readiness(fn, (), sysfs).reasons[0]


def test_addresses(sysfs):
    assert discovery.parse_address("pci:00:03.0") == "0000:00:03.0"
    assert discovery.parse_address("0000:00:03.0") == "0000:00:03.0"
    with pytest.raises(BadArgument, match="not a PCI address"):
        discovery.parse_address("pci:00:03")
    with pytest.raises(NotFoundError, match=r"functions present: 0000:00:02\.0"):
        discovery.find_function("pci:00:09.0", sysfs)


def test_parse_resource():
    text = "0x00000000fea00000 0x00000000feafffff 0x0000000000040200\n" + "0x0 0x0 0x0\n"
    first, empty = discovery.parse_resource(text)
    assert (first.size, first.kind, empty.size, empty.kind) == (1 << 20, "memory", 0, None)
    with pytest.raises(DescriptorError, match="resource line 1"):
        discovery.parse_resource("garbage\n")


def test_nub_properties(sysfs):
    props = discovery.nub_properties(discovery.find_function("pci:00:03.0", sysfs))
    assert props == {
        "vendor-id": 0x1B36,
        "device-id": 0x0010,
        "subsystem-vendor-id": 0x1AF4,
        "subsystem-id": 0x1100,
        "class-code": 0x010802,
        "revision-id": 2,
        "HWAddress": "pci:0000:00:03.0",
        "iommu-group": 4,
        "HWKernelDriver": "nvme",
    }


def test_no_pci_bus(tmp_path):
    assert discovery.list_functions(tmp_path) == []


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="0x123456789abcdef \n", max_size=200))
def test_resource_reader_raises_only_descriptor_errors(text):
    with contextlib.suppress(DescriptorError):
        discovery.parse_resource(text)
