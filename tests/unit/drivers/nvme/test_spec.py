"""NVMe registers, entries and identify structures against NVM Express 1.4.

Identify data in data/ was captured from QEMU 7.2's NVMe model (serial HWKITLAB0001)
in the lab's pci guest, through hwkit itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hwkit.drivers.nvme import spec
from hwkit.drivers.nvme.spec import (
    AQA,
    CAP,
    CC,
    CSTS,
    IDENTIFY_CONTROLLER,
    IDENTIFY_NAMESPACE,
    Command,
    Completion,
    CompletionEntry,
    Reg,
    Status,
    SubmissionEntry,
)

from hwkit.errors import DescriptorError

DATA = Path(__file__).parent / "data"
ID_CTRL = (DATA / "qemu-7.2-identify-controller.bin").read_bytes()
ID_NS = (DATA / "qemu-7.2-identify-namespace-1.bin").read_bytes()


# --- registers (§3.1, Figure 78) ---------------------------------------------------------


def test_register_offsets() -> None:
    assert {r.name: r.value for r in Reg} == {
        "CAP": 0x00, "VS": 0x08, "INTMS": 0x0C, "INTMC": 0x10, "CC": 0x14, "CSTS": 0x1C,
        "NSSR": 0x20, "AQA": 0x24, "ASQ": 0x28, "ACQ": 0x30, "CMBLOC": 0x38, "CMBSZ": 0x3C,
    }  # fmt: skip


@pytest.mark.parametrize(("dstrd", "stride"), [(0, 4), (1, 8), (4, 64)])
def test_doorbells_follow_the_stride(dstrd: int, stride: int) -> None:
    # §3.1.24/25: 1000h + ((2y) * (4 << CAP.DSTRD)) and 1000h + ((2y + 1) * (4 << DSTRD))
    assert spec.SQ_TAIL(0, dstrd) == 0x1000
    assert spec.CQ_HEAD(0, dstrd) == 0x1000 + stride
    assert spec.SQ_TAIL(3, dstrd) == 0x1000 + 6 * stride
    assert spec.CQ_HEAD(3, dstrd) == 0x1000 + 7 * stride


def test_register_names_cover_doorbells() -> None:
    names = spec.register_names(0, 2)
    assert names[0x1C] == "CSTS"
    assert names[0x1008] == "SQ1TDBL"
    assert names[0x100C] == "CQ1HDBL"


def test_cap_fields_of_qemus_controller() -> None:
    cap = 0x4018200F0107FF  # read from QEMU 7.2's NVMe in the lab
    assert CAP.MQES.get(cap) == 0x7FF
    assert CAP.CQR.get(cap) == 1
    assert CAP.TO.get(cap) == 0x0F
    assert CAP.DSTRD.get(cap) == 0
    assert CAP.CSS.get(cap) & 1  # NVM command set
    assert CAP.MPSMIN.get(cap) == 0
    assert CAP.MPSMAX.get(cap) == 4
    assert CAP.CMBS.get(cap) == 0


def test_cap_field_positions() -> None:
    assert [f for f in vars(CAP).values() if isinstance(f, spec.Field)] == [
        (0, 16), (16, 1), (17, 2), (24, 8), (32, 4), (36, 1), (37, 8), (45, 1), (48, 4),
        (52, 4), (56, 1), (57, 1),
    ]  # fmt: skip


def test_cc_csts_aqa_fields() -> None:
    assert CC.EN == 1
    assert spec.CC_CSS == (4, 3)
    assert spec.CC_MPS == (7, 4)
    assert spec.CC_AMS == (11, 3)
    assert spec.CC_SHN == (14, 2)
    assert spec.CC_IOSQES == (16, 4)
    assert spec.CC_IOCQES == (20, 4)
    assert spec.CC_SHN.put(1) == CC.SHN_NORMAL
    assert spec.CC_SHN.put(2) == CC.SHN_ABRUPT
    assert (CSTS.RDY, CSTS.CFS, CSTS.NSSRO, CSTS.PP) == (1, 2, 0x10, 0x20)
    assert spec.CSTS_SHST.get(CSTS.SHST_COMPLETE) == 2
    assert spec.CSTS_SHST.get(CSTS.SHST_OCCURRING) == 1
    assert AQA.ASQS.put(31) | AQA.ACQS.put(31) == 0x001F001F
    assert spec.CC_IOSQES.put(spec.SQES) | spec.CC_IOCQES.put(spec.CQES) == 0x00460000


def test_field_put_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError, match="does not fit in 4 bits"):
        spec.CC_MPS.put(16)


def test_version_text() -> None:
    assert spec.version_text(0x00010400) == "1.4"
    assert spec.version_text(0x00020001) == "2.0.1"


# --- queue entries (§4.2 Figure 105, §4.6 Figure 123) --------------------------------------


def test_submission_entry_layout() -> None:
    assert SubmissionEntry.itemsize == spec.SQE_SIZE == 64
    offsets = {name: SubmissionEntry.fields[name][1] for name in SubmissionEntry.names}
    assert offsets == {
        "opc": 0, "flags": 1, "cid": 2, "nsid": 4, "cdw2": 8, "cdw3": 12, "mptr": 16,
        "prp1": 24, "prp2": 32, "cdw10": 40, "cdw11": 44, "cdw12": 48, "cdw13": 52,
        "cdw14": 56, "cdw15": 60,
    }  # fmt: skip


def test_completion_entry_layout() -> None:
    assert CompletionEntry.itemsize == spec.CQE_SIZE == 16
    offsets = {name: CompletionEntry.fields[name][1] for name in CompletionEntry.names}
    assert offsets == {"dw0": 0, "dw1": 4, "sqhd": 8, "sqid": 10, "cid": 12, "status": 14}


def test_command_encoding_matches_the_declared_layout() -> None:
    command = Command(0x02, nsid=1, prp1=0x1000, prp2=0x2000, cdw10=5, cdw11=6, cdw12=7,
                      cdw13=8, cdw14=9, cdw15=10)  # fmt: skip
    entry = np.frombuffer(command.encode(cid=0x1234), SubmissionEntry)[0]
    assert (entry["opc"], entry["flags"], entry["cid"], entry["nsid"]) == (2, 0, 0x1234, 1)
    assert (entry["prp1"], entry["prp2"], entry["mptr"]) == (0x1000, 0x2000, 0)
    assert [int(entry[f"cdw{i}"]) for i in range(10, 16)] == [5, 6, 7, 8, 9, 10]


def test_read_write_encoding() -> None:
    # NVM §3.2.4: SLBA in CDW10 (low) and CDW11 (high), NLB 0's based in CDW12 15:0
    cmd = spec.read_write(spec.IOOpcode.READ, 1, 0x1_2345_6789, 8, 0xA000, 0xB000)
    assert (cmd.opc, cmd.nsid, cmd.cdw10, cmd.cdw11, cmd.cdw12) == (2, 1, 0x23456789, 1, 7)
    assert (cmd.prp1, cmd.prp2) == (0xA000, 0xB000)
    assert spec.read_write(spec.IOOpcode.WRITE, 1, 0, 65536, 0, 0).cdw12 == 0xFFFF
    assert spec.flush(3) == Command(0x00, nsid=3)


def test_admin_command_encoding() -> None:
    ident = spec.identify(spec.CNS.CONTROLLER, 0x5000)
    assert (ident.opc, ident.cdw10, ident.prp1, ident.nsid) == (0x06, 1, 0x5000, 0)
    assert spec.identify(spec.CNS.NAMESPACE, 0x5000, nsid=1).nsid == 1
    # §5.3: CDW10 = QSIZE (0's based) << 16 | QID; CDW11 = IV << 16 | IEN << 1 | PC
    cq = spec.create_io_cq(qid=2, size=64, prp1=0x8000, vector=2)
    assert (cq.opc, cq.cdw10, cq.cdw11, cq.prp1) == (0x05, (63 << 16) | 2, (2 << 16) | 3, 0x8000)
    assert spec.create_io_cq(qid=2, size=64, prp1=0, vector=None).cdw11 == 0x1
    # §5.4: CDW11 = CQID << 16 | QPRIO << 1 | PC
    sq = spec.create_io_sq(qid=2, size=64, prp1=0x9000, cqid=2)
    assert (sq.opc, sq.cdw10, sq.cdw11) == (0x01, (63 << 16) | 2, (2 << 16) | 1)
    assert (spec.delete_io_sq(4).opc, spec.delete_io_sq(4).cdw10) == (0x00, 4)
    assert (spec.delete_io_cq(4).opc, spec.delete_io_cq(4).cdw10) == (0x04, 4)
    # §5.21.1.7: NSQR and NCQR, both 0's based
    nq = spec.set_number_of_queues(4)
    assert (nq.opc, nq.cdw10, nq.cdw11) == (0x09, 0x07, 0x00030003)


def test_opcodes() -> None:
    assert [(o.name, o.value) for o in spec.AdminOpcode][:6] == [
        ("DELETE_IO_SQ", 0), ("CREATE_IO_SQ", 1), ("GET_LOG_PAGE", 2), ("DELETE_IO_CQ", 4),
        ("CREATE_IO_CQ", 5), ("IDENTIFY", 6),
    ]  # fmt: skip
    assert (spec.IOOpcode.FLUSH, spec.IOOpcode.WRITE, spec.IOOpcode.READ) == (0, 1, 2)


# --- completions and status (§4.6.1.2) ------------------------------------------------------


def _cqe(cid: int, sct: int, sc: int, phase: int, dnr: bool = False) -> bytes:
    status = (sc << 1) | (sct << 9) | phase | (0x8000 if dnr else 0)
    return np.array([(7, 0, 5, 1, cid, status)], CompletionEntry).tobytes()


def test_completion_decoding_strips_the_phase() -> None:
    entry = Completion.decode(_cqe(9, 0, 0x80, 1, dnr=True))
    assert (entry.dw0, entry.sqhd, entry.sqid, entry.cid) == (7, 5, 1, 9)
    assert not entry.ok
    status = Status.decode(entry.status)
    assert (status.sct, status.sc, status.dnr, status.more) == (0, 0x80, True, False)
    assert str(status) == "LBA OUT OF RANGE (sct 0, sc 0x80)"
    assert Completion.decode(_cqe(1, 0, 0, 1)).ok
    assert Completion.decode(_cqe(1, 0, 0, 0)).ok


@pytest.mark.parametrize(
    ("sct", "sc", "text"),
    [
        (0, 0x02, "INVALID FIELD IN COMMAND (sct 0, sc 0x2)"),
        (0, 0x0B, "INVALID NAMESPACE OR FORMAT (sct 0, sc 0xb)"),
        (1, 0x01, "INVALID QUEUE IDENTIFIER (sct 1, sc 0x1)"),
        (1, 0x02, "INVALID QUEUE SIZE (sct 1, sc 0x2)"),
        (2, 0x81, "UNRECOVERED READ ERROR (sct 2, sc 0x81)"),
        (7, 0x10, "VENDOR SPECIFIC STATUS (sct 7, sc 0x10)"),
        (0, 0x7F, "UNKNOWN STATUS (sct 0, sc 0x7f)"),
    ],
)
def test_status_text(sct: int, sc: int, text: str) -> None:
    assert str(Status(sct, sc, False, False)) == text


def test_every_status_text_is_upper_case_and_unique_per_type() -> None:
    for (sct, _), text in spec.STATUS_TEXT.items():
        assert text == text.upper() and sct in (0, 1, 2, 3)
    assert len(set(spec.STATUS_TEXT)) == len(spec.STATUS_TEXT)


# --- identify (§5.15.2, Figures 247 and 249) ------------------------------------------------


def test_identify_controller_offsets() -> None:
    expected = {
        "VID": (0, 2), "SSVID": (2, 2), "SN": (4, 20), "MN": (24, 40), "FR": (64, 8),
        "RAB": (72, 1), "IEEE": (73, 3), "CMIC": (76, 1), "MDTS": (77, 1), "CNTLID": (78, 2),
        "VER": (80, 4), "OACS": (256, 2), "ACL": (258, 1), "AERL": (259, 1), "FRMW": (260, 1),
        "LPA": (261, 1), "ELPE": (262, 1), "NPSS": (263, 1), "SQES": (512, 1), "CQES": (513, 1),
        "MAXCMD": (514, 2), "NN": (516, 4), "ONCS": (520, 2), "FUSES": (522, 2),
        "FNA": (524, 1), "VWC": (525, 1), "AWUN": (526, 2), "AWUPF": (528, 2),
        "SGLS": (536, 4), "SUBNQN": (768, 256),
    }  # fmt: skip
    assert {k: tuple(v) for k, v in IDENTIFY_CONTROLLER.items()} == expected


def test_identify_namespace_offsets() -> None:
    expected = {
        "NSZE": (0, 8), "NCAP": (8, 8), "NUSE": (16, 8), "NSFEAT": (24, 1), "NLBAF": (25, 1),
        "FLBAS": (26, 1), "MC": (27, 1), "DPC": (28, 1), "DPS": (29, 1), "NMIC": (30, 1),
        "NGUID": (104, 16), "EUI64": (120, 8), "LBAF": (128, 64),
    }  # fmt: skip
    assert {k: tuple(v) for k, v in IDENTIFY_NAMESPACE.items()} == expected


def test_identify_controller_of_qemu() -> None:
    ident = spec.IdentifyController.parse(ID_CTRL)
    assert ident.serial == "HWKITLAB0001"
    assert ident.model == "QEMU NVMe Ctrl"
    assert ident.firmware == "7.2.22"
    assert (ident.vid, ident.ssvid) == (0x1B36, 0x1AF4)
    assert ident.subnqn == "nqn.2019-08.org.qemu:HWKITLAB0001"
    assert ident.mdts == 7
    assert spec.version_text(ident.version) == "1.4"
    assert (ident.sqes, ident.cqes) == (0x66, 0x44)  # required and maximum: 64 and 16 bytes
    assert ident.nn == 256


def test_identify_namespace_of_qemu() -> None:
    ns = spec.IdentifyNamespace.parse(ID_NS)
    assert ns.nsze == ns.ncap == 64 * 1024 * 1024 // 512
    assert ns.block_size == 512
    assert ns.format == spec.LBAFormat(0, 512, 0)
    assert [f.data_size for f in ns.formats] == [512] * 4 + [4096] * 4
    assert [f.metadata_size for f in ns.formats] == [0, 8, 16, 64] * 2


def test_lba_format_decoding() -> None:
    # Figure 250: MS 15:0, LBADS 23:16, RP 25:24
    assert spec.LBAFormat.decode(0x020C0008) == spec.LBAFormat(8, 4096, 2)


def test_identify_refuses_short_data() -> None:
    with pytest.raises(DescriptorError, match="is 100 bytes, not 4096"):
        spec.IdentifyController.parse(ID_CTRL[:100])
    with pytest.raises(DescriptorError):
        spec.IdentifyNamespace.parse(b"")


def test_flbas_beyond_the_formats_is_reported() -> None:
    data = bytearray(ID_NS)
    data[26] = 12
    with pytest.raises(DescriptorError, match="FLBAS selects format 12"):
        _ = spec.IdentifyNamespace.parse(bytes(data)).block_size


def test_strings_tolerate_nul_padding() -> None:
    data = bytearray(ID_CTRL)
    data[24:64] = b"Model\x00".ljust(40, b"\x00")
    assert spec.IdentifyController.parse(bytes(data)).model == "Model"


def test_namespace_list() -> None:
    data = np.zeros(1024, "<u4")
    data[:3] = [1, 2, 5]
    assert spec.parse_namespace_list(data.tobytes()) == [1, 2, 5]
    assert spec.parse_namespace_list(bytes(4096)) == []
