"""The controller's bring-up, I/O, timeout, reset and shutdown against a spec model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hwkit.drivers.nvme import NVMeController, NVMeStatusError, NVMeTimeout, spec
from hwkit.drivers.nvme.spec import AdminOpcode, IOOpcode, Reg

from hwkit.errors import BadArgument, ClosedResourceError


@pytest.fixture
def ctrl(nub):
    controller = NVMeController(nub, polled=True, queue_depth=8,
                                command_timeout=0.5)  # fmt: skip
    controller.start()
    yield controller
    controller.close()


def test_bring_up_follows_the_initialisation_sequence(ctrl, model) -> None:
    regs = model.regs
    assert regs.read32(Reg.AQA) == 0x001F001F  # 32-entry admin queues, 0's based
    assert regs.read64(Reg.ASQ) == ctrl.admin.sq_iova
    assert regs.read64(Reg.ACQ) == ctrl.admin.cq_iova
    cc = regs.read32(Reg.CC)
    assert cc & spec.CC.EN
    assert (spec.CC_IOSQES.get(cc), spec.CC_IOCQES.get(cc), spec.CC_MPS.get(cc)) == (6, 4, 0)
    assert model.commands == [
        (0, AdminOpcode.IDENTIFY), (0, AdminOpcode.SET_FEATURES),
        (0, AdminOpcode.CREATE_IO_CQ), (0, AdminOpcode.CREATE_IO_SQ), (0, AdminOpcode.IDENTIFY),
    ]  # fmt: skip
    assert ctrl.state.value == "ready"
    assert ctrl.version == "1.4"
    assert ctrl.identity.serial == "HWKITLAB0001"
    assert ctrl.active_namespaces == [1]
    assert ctrl.ready_timeout == 1.5  # CAP.TO of 500 ms, plus a second of slack


def test_io_queue_is_created_polled_with_the_requested_depth(ctrl, model) -> None:
    (queue,) = ctrl.io_queues
    assert (queue.qid, queue.depth, queue.vector) == (1, 8, None)
    assert model.cqs[1][:2] == [queue.cq_iova, 8]
    assert model.sqs[1][:2] == [queue.sq_iova, 8]


def test_read_write_round_trip_with_prp_lists_and_splitting(ctrl, model) -> None:
    ns = ctrl.namespace(1)
    data = np.random.default_rng(0).integers(0, 256, 1 << 20, dtype=np.uint8)
    ns.write(10, data)
    assert bytes(model.disk[10 * 512 : 10 * 512 + data.size]) == data.tobytes()
    assert np.array_equal(ns.read(10, data.size // 512), data)
    writes = [c for c in model.commands if c == (1, IOOpcode.WRITE)]
    assert len(writes) == 2  # 1 MiB in two transfers of MDTS (512 KiB)
    ns.flush()
    assert model.commands[-1] == (1, IOOpcode.FLUSH)


def test_errors_name_the_device_and_decode_the_status(ctrl) -> None:
    ns = ctrl.namespace(1)
    with pytest.raises(NVMeStatusError) as info:
        ns.read(ns.blocks, 1)
    assert str(info.value) == (
        f"READ failed on pci:0000:00:05.0 nsid 1 lba {ns.blocks}: LBA OUT OF RANGE (sct 0, sc 0x80)"
    )
    with pytest.raises(BadArgument, match="count must be at least 1"):
        ns.read(0, 0)
    with pytest.raises(BadArgument, match="not a 64-bit block address"):
        ns.read(-1, 1)
    with pytest.raises(BadArgument, match="no active namespace 2"):
        ctrl.namespace(2)
    with pytest.raises(BadArgument, match=r"queue depth 1 outside 2\.\.2048"):
        ctrl.create_io_queue(1)


def test_timeout_resets_the_controller_and_recreates_the_queues(ctrl, model) -> None:
    ns = ctrl.namespace(1)
    model.deaf.add(1)
    with pytest.raises(NVMeTimeout, match=r"READ of 1 blocks at lba 3 timed out .* was reset"):
        ns.read(3, 1)
    model.deaf.clear()
    assert ctrl.resets == 1
    assert model.enables == 2
    assert 1 in model.sqs and 1 in model.cqs  # recreated in the device
    ns.write(3, bytes(range(256)) * 2)
    assert ns.read(3, 1).tobytes() == bytes(range(256)) * 2


def test_admin_command_timeout_is_reported(ctrl, model) -> None:
    model.deaf.add(0)
    ctrl.command_timeout = 0.2
    try:
        with pytest.raises(NVMeTimeout, match=r"IDENTIFY .* timed out .* the reset failed too"):
            ctrl.identify_namespace(1)
    finally:
        model.deaf.clear()
    ctrl.reset()
    assert ctrl.identify_namespace(1).nsze == 131072


def test_close_deletes_queues_and_shuts_down(ctrl, model) -> None:
    ctrl.close()
    assert model.commands[-2:] == [(0, AdminOpcode.DELETE_IO_SQ), (0, AdminOpcode.DELETE_IO_CQ)]
    assert spec.CC_SHN.get(model.regs.read32(Reg.CC)) == 1
    assert spec.CSTS_SHST.get(model.regs.read32(Reg.CSTS)) == 2
    assert ctrl.state.value == "closed"
    with pytest.raises(ClosedResourceError):
        ctrl.admin_command(spec.identify(spec.CNS.CONTROLLER, 0), "IDENTIFY")
    ctrl.close()  # idempotent


def test_open_refuses_a_function_that_is_not_nvme_before_touching_it(monkeypatch) -> None:
    import hwkit.drivers.nvme.controller as controller_module

    from hwkit.pci import discovery

    rng = discovery.PCIFunction("0000:00:05.0", Path("/nonexistent"), 0x1AF4, 0x1044, 0xFFFF00, 0,
                                None, None)  # fmt: skip
    monkeypatch.setattr(discovery, "find_function", lambda address: rng)
    taken = []
    monkeypatch.setattr(controller_module, "PCIDevice", lambda fn: taken.append(fn))
    with pytest.raises(BadArgument, match=r"pci:0000:00:05.0 is not an NVMe controller \(class "
                       r"0xffff00, not 0x0108xx\): nothing was taken"):  # fmt: skip
        NVMeController.open("pci:0000:00:05.0")
    assert taken == []


def test_queues_get_vectors_delivered_to_the_work_loops_cpu(ctrl, tmp_path, monkeypatch) -> None:
    import hwkit.drivers.nvme.controller as controller_module

    lines = ["           CPU0       CPU1"]
    for vector, cpu in enumerate([1, 0, 1, 0, 1, 0]):
        irq = 33 + vector
        lines.append(
            f" {irq}:  0  0  IR-PCI-MSI 8192{vector}-edge  vfio-msix[{vector}](0000:00:05.0)"
        )
        (tmp_path / "irq" / str(irq)).mkdir(parents=True)
        (tmp_path / "irq" / str(irq) / "effective_affinity_list").write_text(f"{cpu}\n")
    lines.append(" 90:  0  0  IR-PCI-MSI 1-edge  vfio-msix[3](0000:00:06.0)")  # another function
    (tmp_path / "interrupts").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(controller_module, "PROC", tmp_path)
    assert ctrl._vector_cpus() == {0: 1, 1: 0, 2: 1, 3: 0, 4: 1, 5: 0}
    assert ctrl._vector_for(2) == 2  # no CPU chosen yet: the queue's own number
    ctrl.interrupt_cpu = 0
    ctrl.io_queues[0].vector = 1  # in use
    assert ctrl._vector_for(2) == 3  # the next free one on CPU 0, not vector 2 (CPU 1)
    monkeypatch.setattr(controller_module, "PROC", tmp_path / "nothing")
    assert ctrl._vector_cpus() == {} and ctrl._vector_for(2) == 2
