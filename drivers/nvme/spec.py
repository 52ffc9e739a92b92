"""NVMe registers, queue entries and identify structures, declared as the spec has them.

Everything here is pure: tables of offsets and fields, encoders and parsers over bytes,
and the status-code tables that turn a completion into text. Section numbers are those
of NVM Express Base Specification 1.4 (and the NVM Command Set where noted); the unit
tests assert every offset and size against them, as SPDK's static asserts do.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import NamedTuple

import numpy as np

from hwkit.errors import DescriptorError

# --- controller registers (§3.1) -----------------------------------------------------


class Reg(IntEnum):
    """Controller registers in BAR0 (§3.1, Figure 78)."""

    CAP = 0x00  # 64-bit: controller capabilities
    VS = 0x08  # version
    INTMS = 0x0C  # interrupt mask set (pin-based and MSI only)
    INTMC = 0x10  # interrupt mask clear
    CC = 0x14  # controller configuration
    CSTS = 0x1C  # controller status
    NSSR = 0x20  # NVM subsystem reset
    AQA = 0x24  # admin queue attributes
    ASQ = 0x28  # 64-bit: admin submission queue base address
    ACQ = 0x30  # 64-bit: admin completion queue base address
    CMBLOC = 0x38
    CMBSZ = 0x3C


DOORBELL_BASE = 0x1000  # §3.1.24: SQ 0 tail doorbell


def SQ_TAIL(qid: int, dstrd: int) -> int:
    """Offset of submission queue `qid`'s tail doorbell (§3.1.24, SQyTDBL)."""
    return DOORBELL_BASE + (2 * qid) * (4 << dstrd)


def CQ_HEAD(qid: int, dstrd: int) -> int:
    """Offset of completion queue `qid`'s head doorbell (§3.1.25, CQyHDBL)."""
    return DOORBELL_BASE + (2 * qid + 1) * (4 << dstrd)


def register_names(dstrd: int, queues: int) -> dict[int, str]:
    """Register names by offset, doorbells included, for error messages."""
    names = {r.value: r.name for r in Reg}
    for qid in range(queues):
        names[SQ_TAIL(qid, dstrd)] = f"SQ{qid}TDBL"
        names[CQ_HEAD(qid, dstrd)] = f"CQ{qid}HDBL"
    return names


class Field(NamedTuple):
    """A multi-bit register field: `width` bits from bit `shift`."""

    shift: int
    width: int

    def get(self, value: int) -> int:
        return (value >> self.shift) & ((1 << self.width) - 1)

    def put(self, value: int) -> int:
        if not 0 <= value < 1 << self.width:
            raise ValueError(f"{value} does not fit in {self.width} bits")
        return value << self.shift


class CAP:
    """Controller Capabilities fields (§3.1.1)."""

    MQES = Field(0, 16)  # maximum queue entries supported, 0's based
    CQR = Field(16, 1)  # contiguous queues required
    AMS = Field(17, 2)
    TO = Field(24, 8)  # worst-case time to ready, in 500 ms units
    DSTRD = Field(32, 4)  # doorbell stride: 2 ** (2 + DSTRD) bytes
    NSSRS = Field(36, 1)
    CSS = Field(37, 8)
    BPS = Field(45, 1)
    MPSMIN = Field(48, 4)  # minimum memory page size: 2 ** (12 + MPSMIN)
    MPSMAX = Field(52, 4)
    PMRS = Field(56, 1)
    CMBS = Field(57, 1)


class CC(IntFlag):
    """Controller Configuration single bits (§3.1.5); multi-bit fields are CC_* Fields."""

    EN = 1 << 0
    SHN_NORMAL = 1 << 14  # SHN = 01b: normal shutdown notification
    SHN_ABRUPT = 2 << 14  # SHN = 10b


CC_CSS = Field(4, 3)  # I/O command set selected: 000b NVM
CC_MPS = Field(7, 4)  # memory page size: 2 ** (12 + MPS)
CC_AMS = Field(11, 3)  # arbitration: 000b round robin
CC_SHN = Field(14, 2)
CC_IOSQES = Field(16, 4)  # I/O SQ entry size: 2 ** n (6 for 64 bytes)
CC_IOCQES = Field(20, 4)  # I/O CQ entry size: 2 ** n (4 for 16 bytes)


class CSTS(IntFlag):
    """Controller Status (§3.1.6)."""

    RDY = 1 << 0
    CFS = 1 << 1  # controller fatal status
    SHST_OCCURRING = 1 << 2  # SHST = 01b
    SHST_COMPLETE = 2 << 2  # SHST = 10b
    NSSRO = 1 << 4
    PP = 1 << 5


CSTS_SHST = Field(2, 2)


class AQA:
    """Admin Queue Attributes (§3.1.8): sizes are 0's based."""

    ASQS = Field(0, 12)
    ACQS = Field(16, 12)


def version_text(vs: int) -> str:
    """VS register (§3.1.2) as 'major.minor[.tertiary]'."""
    major, minor, tertiary = vs >> 16, (vs >> 8) & 0xFF, vs & 0xFF
    return f"{major}.{minor}" + (f".{tertiary}" if tertiary else "")


# --- queue entries (§4.2, §4.6) --------------------------------------------------------

SubmissionEntry = np.dtype(
    {
        "names": ["opc", "flags", "cid", "nsid", "cdw2", "cdw3", "mptr", "prp1", "prp2",
                  "cdw10", "cdw11", "cdw12", "cdw13", "cdw14", "cdw15"],
        "formats": ["u1", "u1", "<u2", "<u4", "<u4", "<u4", "<u8", "<u8", "<u8",
                    "<u4", "<u4", "<u4", "<u4", "<u4", "<u4"],
        "offsets": [0, 1, 2, 4, 8, 12, 16, 24, 32, 40, 44, 48, 52, 56, 60],
        "itemsize": 64,
    }
)  # fmt: skip
"""Common command format (§4.2, Figure 105): 64 bytes."""

CompletionEntry = np.dtype(
    {
        "names": ["dw0", "dw1", "sqhd", "sqid", "cid", "status"],
        "formats": ["<u4", "<u4", "<u2", "<u2", "<u2", "<u2"],
        "offsets": [0, 4, 8, 10, 12, 14],
        "itemsize": 16,
    }
)
"""Common completion queue entry (§4.6, Figure 123): 16 bytes; status holds the phase."""

SQE_SIZE = 64
CQE_SIZE = 16
SQES = 6  # log2 of the entry sizes, for CC.IOSQES / IOCQES
CQES = 4

# One struct format in the same layout: a command is one pack_into (the hot path).
_SQE = struct.Struct("<BBHIIIQQQIIIIII")
_CQE = struct.Struct("<IIHHHH")


@dataclass(slots=True)
class Command:
    """One submission queue entry's contents (cid is set by the queue)."""

    opc: int
    nsid: int = 0
    prp1: int = 0
    prp2: int = 0
    cdw10: int = 0
    cdw11: int = 0
    cdw12: int = 0
    cdw13: int = 0
    cdw14: int = 0
    cdw15: int = 0

    def pack_into(self, buffer: object, offset: int, cid: int) -> None:
        """Write the entry at `offset` of `buffer` (PSDT = 0: PRPs; no fused op)."""
        _SQE.pack_into(buffer, offset, self.opc, 0, cid, self.nsid, 0, 0, 0,  # type: ignore[arg-type]
                       self.prp1, self.prp2, self.cdw10, self.cdw11, self.cdw12,
                       self.cdw13, self.cdw14, self.cdw15)  # fmt: skip

    def encode(self, cid: int = 0) -> bytes:
        out = bytearray(SQE_SIZE)
        self.pack_into(out, 0, cid)
        return bytes(out)


class Completion(NamedTuple):
    """A completion queue entry, decoded (§4.6)."""

    dw0: int
    dw1: int
    sqhd: int
    sqid: int
    cid: int
    status: int  # bits 15:1 of DW3's upper half: the phase tag removed

    @classmethod
    def decode(cls, data: bytes | memoryview, offset: int = 0) -> Completion:
        dw0, dw1, sqhd, sqid, cid, status = _CQE.unpack_from(data, offset)
        return cls(dw0, dw1, sqhd, sqid, cid, status >> 1)

    @property
    def ok(self) -> bool:
        return (self.status & 0x7FF) == 0


class AdminOpcode(IntEnum):
    """Admin command set opcodes (§5, Figure 139)."""

    DELETE_IO_SQ = 0x00
    CREATE_IO_SQ = 0x01
    GET_LOG_PAGE = 0x02
    DELETE_IO_CQ = 0x04
    CREATE_IO_CQ = 0x05
    IDENTIFY = 0x06
    ABORT = 0x08
    SET_FEATURES = 0x09
    GET_FEATURES = 0x0A
    ASYNC_EVENT_REQUEST = 0x0C


class IOOpcode(IntEnum):
    """NVM command set opcodes (NVM Command Set §3, Figure 346 of 1.4)."""

    FLUSH = 0x00
    WRITE = 0x01
    READ = 0x02
    WRITE_ZEROES = 0x08
    DATASET_MANAGEMENT = 0x09


class CNS(IntEnum):
    """Identify: Controller or Namespace Structure (§5.15.1)."""

    NAMESPACE = 0x00
    CONTROLLER = 0x01
    ACTIVE_NAMESPACES = 0x02


class Feature(IntEnum):
    """Feature identifiers used here (§5.21.1)."""

    NUMBER_OF_QUEUES = 0x07


# --- admin and I/O command encoders ---------------------------------------------------


def identify(cns: CNS, prp1: int, nsid: int = 0) -> Command:
    return Command(AdminOpcode.IDENTIFY, nsid=nsid, prp1=prp1, cdw10=int(cns))


def set_number_of_queues(count: int) -> Command:
    """Ask for `count` I/O SQs and CQs (§5.21.1.7: both 0's based)."""
    return Command(AdminOpcode.SET_FEATURES, cdw10=Feature.NUMBER_OF_QUEUES,
                   cdw11=((count - 1) << 16) | (count - 1))  # fmt: skip


def create_io_cq(qid: int, size: int, prp1: int, vector: int | None) -> Command:
    """Create I/O CQ (§5.3): physically contiguous; interrupts enabled when `vector`."""
    flags = 0x1 | (0x2 if vector is not None else 0)  # PC, IEN
    return Command(AdminOpcode.CREATE_IO_CQ, prp1=prp1, cdw10=((size - 1) << 16) | qid,
                   cdw11=((vector or 0) << 16) | flags)  # fmt: skip


def create_io_sq(qid: int, size: int, prp1: int, cqid: int) -> Command:
    """Create I/O SQ (§5.4): physically contiguous, medium priority, on CQ `cqid`."""
    return Command(AdminOpcode.CREATE_IO_SQ, prp1=prp1, cdw10=((size - 1) << 16) | qid,
                   cdw11=(cqid << 16) | 0x1)  # fmt: skip


def delete_io_sq(qid: int) -> Command:
    return Command(AdminOpcode.DELETE_IO_SQ, cdw10=qid)


def delete_io_cq(qid: int) -> Command:
    return Command(AdminOpcode.DELETE_IO_CQ, cdw10=qid)


def read_write(opc: IOOpcode, nsid: int, lba: int, blocks: int, prp1: int, prp2: int) -> Command:
    """Read or Write (NVM §3.2.4, §3.2.6): SLBA in CDW10-11, NLB 0's based in CDW12."""
    return Command(opc, nsid=nsid, prp1=prp1, prp2=prp2, cdw10=lba & 0xFFFF_FFFF,
                   cdw11=lba >> 32, cdw12=(blocks - 1) & 0xFFFF)  # fmt: skip


def flush(nsid: int) -> Command:
    return Command(IOOpcode.FLUSH, nsid=nsid)


# --- status (§4.6.1.2) ------------------------------------------------------------------


class SCT(IntEnum):
    """Status code types."""

    GENERIC = 0
    COMMAND_SPECIFIC = 1
    MEDIA = 2
    PATH = 3
    VENDOR = 7


STATUS_TEXT: dict[tuple[int, int], str] = {
    # Generic command status (Figure 126) and its NVM command set values (Figure 127).
    (0, 0x00): "SUCCESS",
    (0, 0x01): "INVALID COMMAND OPCODE",
    (0, 0x02): "INVALID FIELD IN COMMAND",
    (0, 0x03): "COMMAND ID CONFLICT",
    (0, 0x04): "DATA TRANSFER ERROR",
    (0, 0x05): "ABORTED (POWER LOSS)",
    (0, 0x06): "INTERNAL ERROR",
    (0, 0x07): "ABORTED (BY REQUEST)",
    (0, 0x08): "ABORTED (SQ DELETION)",
    (0, 0x09): "ABORTED (FAILED FUSED COMMAND)",
    (0, 0x0A): "ABORTED (MISSING FUSED COMMAND)",
    (0, 0x0B): "INVALID NAMESPACE OR FORMAT",
    (0, 0x0C): "COMMAND SEQUENCE ERROR",
    (0, 0x0D): "INVALID SGL SEGMENT DESCRIPTOR",
    (0, 0x0E): "INVALID NUMBER OF SGL DESCRIPTORS",
    (0, 0x0F): "DATA SGL LENGTH INVALID",
    (0, 0x10): "METADATA SGL LENGTH INVALID",
    (0, 0x11): "SGL DESCRIPTOR TYPE INVALID",
    (0, 0x12): "INVALID USE OF CONTROLLER MEMORY BUFFER",
    (0, 0x13): "PRP OFFSET INVALID",
    (0, 0x14): "ATOMIC WRITE UNIT EXCEEDED",
    (0, 0x15): "OPERATION DENIED",
    (0, 0x16): "SGL OFFSET INVALID",
    (0, 0x18): "HOST IDENTIFIER INCONSISTENT FORMAT",
    (0, 0x19): "KEEP ALIVE TIMER EXPIRED",
    (0, 0x1A): "KEEP ALIVE TIMEOUT INVALID",
    (0, 0x1B): "ABORTED (PREEMPT AND ABORT)",
    (0, 0x1C): "SANITIZE FAILED",
    (0, 0x1D): "SANITIZE IN PROGRESS",
    (0, 0x1E): "SGL DATA BLOCK GRANULARITY INVALID",
    (0, 0x1F): "COMMAND NOT SUPPORTED FOR QUEUE IN CMB",
    (0, 0x20): "NAMESPACE IS WRITE PROTECTED",
    (0, 0x21): "COMMAND INTERRUPTED",
    (0, 0x22): "TRANSIENT TRANSPORT ERROR",
    (0, 0x80): "LBA OUT OF RANGE",
    (0, 0x81): "CAPACITY EXCEEDED",
    (0, 0x82): "NAMESPACE NOT READY",
    (0, 0x83): "RESERVATION CONFLICT",
    (0, 0x84): "FORMAT IN PROGRESS",
    # Command specific status (Figure 128) and the NVM command set's (Figure 129).
    (1, 0x00): "COMPLETION QUEUE INVALID",
    (1, 0x01): "INVALID QUEUE IDENTIFIER",
    (1, 0x02): "INVALID QUEUE SIZE",
    (1, 0x03): "ABORT COMMAND LIMIT EXCEEDED",
    (1, 0x05): "ASYNCHRONOUS EVENT REQUEST LIMIT EXCEEDED",
    (1, 0x06): "INVALID FIRMWARE SLOT",
    (1, 0x07): "INVALID FIRMWARE IMAGE",
    (1, 0x08): "INVALID INTERRUPT VECTOR",
    (1, 0x09): "INVALID LOG PAGE",
    (1, 0x0A): "INVALID FORMAT",
    (1, 0x0B): "FIRMWARE ACTIVATION REQUIRES CONVENTIONAL RESET",
    (1, 0x0C): "INVALID QUEUE DELETION",
    (1, 0x0D): "FEATURE IDENTIFIER NOT SAVEABLE",
    (1, 0x0E): "FEATURE NOT CHANGEABLE",
    (1, 0x0F): "FEATURE NOT NAMESPACE SPECIFIC",
    (1, 0x10): "FIRMWARE ACTIVATION REQUIRES NVM SUBSYSTEM RESET",
    (1, 0x11): "FIRMWARE ACTIVATION REQUIRES CONTROLLER LEVEL RESET",
    (1, 0x12): "FIRMWARE ACTIVATION REQUIRES MAXIMUM TIME VIOLATION",
    (1, 0x13): "FIRMWARE ACTIVATION PROHIBITED",
    (1, 0x14): "OVERLAPPING RANGE",
    (1, 0x15): "NAMESPACE INSUFFICIENT CAPACITY",
    (1, 0x16): "NAMESPACE IDENTIFIER UNAVAILABLE",
    (1, 0x18): "NAMESPACE ALREADY ATTACHED",
    (1, 0x19): "NAMESPACE IS PRIVATE",
    (1, 0x1A): "NAMESPACE NOT ATTACHED",
    (1, 0x1B): "THIN PROVISIONING NOT SUPPORTED",
    (1, 0x1C): "CONTROLLER LIST INVALID",
    (1, 0x80): "CONFLICTING ATTRIBUTES",
    (1, 0x81): "INVALID PROTECTION INFORMATION",
    (1, 0x82): "ATTEMPTED WRITE TO READ ONLY RANGE",
    # Media and data integrity errors (Figure 130).
    (2, 0x80): "WRITE FAULT",
    (2, 0x81): "UNRECOVERED READ ERROR",
    (2, 0x82): "END-TO-END GUARD CHECK ERROR",
    (2, 0x83): "END-TO-END APPLICATION TAG CHECK ERROR",
    (2, 0x84): "END-TO-END REFERENCE TAG CHECK ERROR",
    (2, 0x85): "COMPARE FAILURE",
    (2, 0x86): "ACCESS DENIED",
    (2, 0x87): "DEALLOCATED OR UNWRITTEN LOGICAL BLOCK",
    # Path related status (Figure 131).
    (3, 0x00): "INTERNAL PATH ERROR",
    (3, 0x01): "ASYMMETRIC ACCESS PERSISTENT LOSS",
    (3, 0x02): "ASYMMETRIC ACCESS INACCESSIBLE",
    (3, 0x03): "ASYMMETRIC ACCESS TRANSITION",
    (3, 0x60): "CONTROLLER PATHING ERROR",
    (3, 0x70): "HOST PATHING ERROR",
    (3, 0x71): "COMMAND ABORTED BY HOST",
}


class Status(NamedTuple):
    """A completion's status field (§4.6.1.2), phase tag removed."""

    sct: int
    sc: int
    more: bool
    dnr: bool  # do not retry

    @classmethod
    def decode(cls, status: int) -> Status:
        return cls((status >> 8) & 0x7, status & 0xFF, bool(status & 0x2000),
                   bool(status & 0x4000))  # fmt: skip

    @property
    def text(self) -> str:
        name = STATUS_TEXT.get((self.sct, self.sc))
        if name is None:
            kind = "VENDOR SPECIFIC" if self.sct == SCT.VENDOR else "UNKNOWN"
            name = f"{kind} STATUS"
        return name

    def __str__(self) -> str:
        return f"{self.text} (sct {self.sct}, sc 0x{self.sc:x})"


# --- identify structures (§5.15.2) ---------------------------------------------------

IDENTIFY_SIZE = 4096


class StructField(NamedTuple):
    offset: int
    size: int


IDENTIFY_CONTROLLER = {
    # Figure 247: name -> (offset, size)
    "VID": StructField(0, 2),
    "SSVID": StructField(2, 2),
    "SN": StructField(4, 20),
    "MN": StructField(24, 40),
    "FR": StructField(64, 8),
    "RAB": StructField(72, 1),
    "IEEE": StructField(73, 3),
    "CMIC": StructField(76, 1),
    "MDTS": StructField(77, 1),
    "CNTLID": StructField(78, 2),
    "VER": StructField(80, 4),
    "OACS": StructField(256, 2),
    "ACL": StructField(258, 1),
    "AERL": StructField(259, 1),
    "FRMW": StructField(260, 1),
    "LPA": StructField(261, 1),
    "ELPE": StructField(262, 1),
    "NPSS": StructField(263, 1),
    "SQES": StructField(512, 1),
    "CQES": StructField(513, 1),
    "MAXCMD": StructField(514, 2),
    "NN": StructField(516, 4),
    "ONCS": StructField(520, 2),
    "FUSES": StructField(522, 2),
    "FNA": StructField(524, 1),
    "VWC": StructField(525, 1),
    "AWUN": StructField(526, 2),
    "AWUPF": StructField(528, 2),
    "SGLS": StructField(536, 4),
    "SUBNQN": StructField(768, 256),
}

IDENTIFY_NAMESPACE = {
    # Figure 249 (NVM command set): name -> (offset, size)
    "NSZE": StructField(0, 8),
    "NCAP": StructField(8, 8),
    "NUSE": StructField(16, 8),
    "NSFEAT": StructField(24, 1),
    "NLBAF": StructField(25, 1),
    "FLBAS": StructField(26, 1),
    "MC": StructField(27, 1),
    "DPC": StructField(28, 1),
    "DPS": StructField(29, 1),
    "NMIC": StructField(30, 1),
    "NGUID": StructField(104, 16),
    "EUI64": StructField(120, 8),
    "LBAF": StructField(128, 64),  # 16 LBA formats of 4 bytes
}


def _field(data: bytes, table: dict[str, StructField], name: str) -> int:
    offset, size = table[name]
    return int.from_bytes(data[offset : offset + size], "little")


def _ascii(data: bytes, table: dict[str, StructField], name: str) -> str:
    """An ASCII string field: space padded on the right (§1.5), NULs tolerated."""
    offset, size = table[name]
    return data[offset : offset + size].decode("ascii", "replace").rstrip(" \x00")


def _check(data: bytes, what: str) -> None:
    if len(data) < IDENTIFY_SIZE:
        raise DescriptorError(f"{what} data is {len(data)} bytes, not {IDENTIFY_SIZE}", len(data))


@dataclass(frozen=True)
class IdentifyController:
    """The fields of Identify Controller (CNS 01h) a driver uses, strings decoded."""

    vid: int
    ssvid: int
    serial: str
    model: str
    firmware: str
    mdts: int  # max transfer: 2 ** MDTS minimum pages (0 = no limit)
    cntlid: int
    version: int
    oacs: int
    sqes: int
    cqes: int
    maxcmd: int
    nn: int  # number of namespaces
    oncs: int
    vwc: int  # volatile write cache present (bit 0)
    subnqn: str

    @classmethod
    def parse(cls, data: bytes) -> IdentifyController:
        """Decode 4096 bytes of Identify Controller data.

        Raises:
            DescriptorError: the data is shorter than 4096 bytes.
        """
        _check(data, "identify controller")
        t = IDENTIFY_CONTROLLER
        return cls(
            vid=_field(data, t, "VID"), ssvid=_field(data, t, "SSVID"),
            serial=_ascii(data, t, "SN"), model=_ascii(data, t, "MN"),
            firmware=_ascii(data, t, "FR"), mdts=_field(data, t, "MDTS"),
            cntlid=_field(data, t, "CNTLID"), version=_field(data, t, "VER"),
            oacs=_field(data, t, "OACS"), sqes=_field(data, t, "SQES"),
            cqes=_field(data, t, "CQES"), maxcmd=_field(data, t, "MAXCMD"),
            nn=_field(data, t, "NN"), oncs=_field(data, t, "ONCS"), vwc=_field(data, t, "VWC"),
            subnqn=_ascii(data, t, "SUBNQN"),
        )  # fmt: skip


class LBAFormat(NamedTuple):
    """One LBA Format Data Structure (Figure 250)."""

    metadata_size: int  # MS
    data_size: int  # 2 ** LBADS bytes
    relative_performance: int  # RP

    @classmethod
    def decode(cls, value: int) -> LBAFormat:
        return cls(value & 0xFFFF, 1 << ((value >> 16) & 0xFF), (value >> 24) & 0x3)


@dataclass(frozen=True)
class IdentifyNamespace:
    """The fields of Identify Namespace (CNS 00h) a driver uses."""

    nsze: int  # size in logical blocks
    ncap: int
    nuse: int
    nsfeat: int
    flbas: int
    formats: tuple[LBAFormat, ...]
    nguid: bytes
    eui64: bytes

    @classmethod
    def parse(cls, data: bytes) -> IdentifyNamespace:
        """Decode 4096 bytes of Identify Namespace data.

        Raises:
            DescriptorError: the data is shorter than 4096 bytes.
        """
        _check(data, "identify namespace")
        t = IDENTIFY_NAMESPACE
        count = _field(data, t, "NLBAF") + 1
        base = t["LBAF"].offset
        formats = tuple(
            LBAFormat.decode(int.from_bytes(data[base + 4 * i : base + 4 * i + 4], "little"))
            for i in range(min(count, 16))
        )
        nguid = t["NGUID"]
        eui = t["EUI64"]
        return cls(
            nsze=_field(data, t, "NSZE"), ncap=_field(data, t, "NCAP"),
            nuse=_field(data, t, "NUSE"), nsfeat=_field(data, t, "NSFEAT"),
            flbas=_field(data, t, "FLBAS"), formats=formats,
            nguid=bytes(data[nguid.offset : nguid.offset + nguid.size]),
            eui64=bytes(data[eui.offset : eui.offset + eui.size]),
        )  # fmt: skip

    @property
    def format(self) -> LBAFormat:
        """The LBA format in use (FLBAS bits 3:0)."""
        index = self.flbas & 0xF
        if index >= len(self.formats):
            raise DescriptorError(f"FLBAS selects format {index} of {len(self.formats)}", 26)
        return self.formats[index]

    @property
    def block_size(self) -> int:
        return self.format.data_size


def parse_namespace_list(data: bytes) -> list[int]:
    """Active Namespace ID list (CNS 02h): up to 1024 IDs, ended by the first 0."""
    ids = np.frombuffer(bytes(data[:IDENTIFY_SIZE]), dtype="<u4")
    end = np.flatnonzero(ids == 0)
    return [int(n) for n in ids[: end[0] if len(end) else len(ids)]]
