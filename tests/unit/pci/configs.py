"""Config spaces of real device models, written out from QEMU's sources and the specs.

- EDU: QEMU's ``edu`` teaching device (hw/misc/edu.c): 1234:11e8 rev 0x10, class
  00ff00, subsystem 1af4:1100, BAR0 1 MiB 32-bit memory, one MSI capability (64-bit,
  1 vector) at 0x40, INTA; a conventional PCI function (256 bytes).
- NVME: QEMU's ``nvme`` (hw/nvme/ctrl.c) on q35's root bus: 1b36:0010 rev 2, class
  010802, BAR0 16 KiB 64-bit with the MSI-X table (65 vectors) at 0x2000 and the PBA at
  0x3000, MSI-X at 0x40, PM at 0x60, PCIe v2 Root Complex Integrated Endpoint at 0x80
  with FLR; no extended capabilities (4096 bytes).
- ROOT_PORT: QEMU's ``pcie-root-port`` (1b36:000c), a type 1 header with a slot, an
  MSI-X vector and AER.
- NIC: an SR-IOV capable Ethernet function shaped like Intel's 82576 (8086:10c9) with
  PM, MSI, MSI-X, PCIe v2 endpoint and AER, DSN, ARI, SR-IOV, ACS extended caps.

EDU, NVME and ROOT_PORT are written from the sources; the dumps QEMU's real models
gave in the lab guest are in data/lab-*.lspci-xxxx (checked against lspci -vvv in
test_lspci.py and test_config.py). NIC stays synthetic: no lab model has SR-IOV.
"""

from __future__ import annotations


class ConfigBuilder:
    """A config space under construction, written register by register."""

    def __init__(self, size: int = 256) -> None:
        self.data = bytearray(size)

    def w8(self, offset: int, value: int) -> ConfigBuilder:
        self.data[offset] = value
        return self

    def w16(self, offset: int, value: int) -> ConfigBuilder:
        self.data[offset : offset + 2] = value.to_bytes(2, "little")
        return self

    def w32(self, offset: int, value: int) -> ConfigBuilder:
        self.data[offset : offset + 4] = value.to_bytes(4, "little")
        return self

    def header(self, vid, did, cmd, status, rev, cls, htype=0, sv=None, sd=None, pin=1, line=11):
        self.w16(0, vid).w16(2, did).w16(4, cmd).w16(6, status).w8(8, rev)
        self.data[9:12] = cls.to_bytes(3, "little")
        self.w8(0x0E, htype)
        if sv is not None:
            self.w16(0x2C, sv).w16(0x2E, sd)
        return self.w8(0x3C, line).w8(0x3D, pin)

    def caps(self, chain: list[tuple[int, int, bytes]]) -> ConfigBuilder:
        """Lay out capabilities ``(offset, id, body after the 2-byte header)``."""
        self.w8(0x34, chain[0][0])
        for i, (off, cap_id, body) in enumerate(chain):
            nxt = chain[i + 1][0] if i + 1 < len(chain) else 0
            self.w8(off, cap_id).w8(off + 1, nxt)
            self.data[off + 2 : off + 2 + len(body)] = body
        return self

    def ext_caps(self, chain: list[tuple[int, int, int, bytes]]) -> ConfigBuilder:
        """Lay out extended capabilities ``(offset, id, version, body after header)``."""
        for i, (off, cap_id, ver, body) in enumerate(chain):
            nxt = chain[i + 1][0] if i + 1 < len(chain) else 0
            self.w32(off, cap_id | ver << 16 | nxt << 20)
            self.data[off + 4 : off + 4 + len(body)] = body
        return self

    def bytes(self) -> bytes:
        return bytes(self.data)


def le(*values: tuple[int, int]) -> bytes:
    """Little-endian fields ``(value, size)`` back to back."""
    return b"".join(v.to_bytes(n, "little") for v, n in values)


EDU = (
    ConfigBuilder(256)
    .header(0x1234, 0x11E8, 0x0002, 0x0010, 0x10, 0x00FF00, sv=0x1AF4, sd=0x1100)
    .w32(0x10, 0xFEA00000)
    .caps([(0x40, 0x05, le((0x0080, 2), (0xFEE00000, 4), (0, 4), (0x4021, 2)))])
    .bytes()
)
EDU_BAR_SIZES = [1 << 20, 0, 0, 0, 0, 0]

# PCIe capability of a v2 RCiEP with FLR, MPS 128 supported.
_NVME_PCIE = (
    le(
        (0x0092, 2),  # PCIe caps: version 2, type 9 (RCiEP)
        (0x10008000, 4),  # device caps: role-based error reporting, FLR
        (0x2810, 2),  # device control: relaxed ordering, no snoop, MRRS 512
        (0, 2),
    )
    + bytes(0x24 - 0x0C)
    + le((0x00000010, 4))
)  # device capabilities 2: completion timeout dis.

NVME = (
    ConfigBuilder(4096)
    .header(0x1B36, 0x0010, 0x0506, 0x0010, 0x02, 0x010802, sv=0x1AF4, sd=0x1100)
    .w32(0x10, 0xFEBD0004)
    .w32(0x14, 0x00000000)
    .caps(
        [
            (0x40, 0x11, le((0x8040, 2), (0x00002000, 4), (0x00003000, 4))),
            (0x60, 0x01, le((0x0003, 2), (0x0008, 2))),
            (0x80, 0x10, _NVME_PCIE),
        ]
    )
    .bytes()
)
NVME_BAR_SIZES = [16 * 1024, 0, 0, 0, 0, 0]

# pcie-root-port: x1 link at 2.5GT/s, hot-plug slot 1, one MSI-X vector, AER.
_ROOT_PORT_PCIE = le(
    (0x0142, 2),  # version 2, type 4 (root port), slot implemented
    (0x00008000, 4),
    (0x0000, 2),
    (0x0000, 2),
    (0x00380011, 4),  # link caps: 2.5GT/s x1, surprise down, DLL active, BW notif.
    (0x0000, 2),
    (0x2011, 2),  # link status: 2.5GT/s x1, DLL link active
    (0x0008007B, 4),  # slot caps: button, power ctl, indicators, hot-plug, slot 1
    (0x0000, 2),
    (0x0040, 2),  # slot status: presence detected
    (0, 4),
    (0, 4),
    (0, 4),
    (0, 4),
    (0x00000002, 4),  # link caps 2: 2.5GT/s
    (0x0001, 2),  # link control 2: target 2.5GT/s
)
ROOT_PORT = (
    ConfigBuilder(4096)
    .header(0x1B36, 0x000C, 0x0107, 0x0010, 0x00, 0x060400, htype=0x81)
    .w32(0x10, 0xFEA40000)
    .w8(0x18, 0)
    .w8(0x19, 1)
    .w8(0x1A, 1)
    .w8(0x1C, 0xF1)  # I/O base 0x1000 window disabled (base > limit)
    .w8(0x1D, 0x01)
    .w16(0x20, 0xFE80)
    .w16(0x22, 0xFE9F)
    .w16(0x24, 0xFC01)  # prefetchable, 64-bit
    .w16(0x26, 0xFDF1)
    .caps(
        [
            (0x54, 0x10, _ROOT_PORT_PCIE),
            (0x48, 0x11, le((0x0000, 2), (0x00000000, 4), (0x00000800, 4))),
            (0x40, 0x0D, le((0, 2), (0x11001AF4, 4))),
        ]
    )
    .ext_caps([(0x100, 0x0001, 2, bytes(0x24))])
    .bytes()
)

# An SR-IOV NIC (82576-like): 3 BARs, PM, MSI, MSI-X, PCIe v2 endpoint x4 at 2.5GT/s,
# AER with an unmasked completion timeout logged, DSN, ARI, SR-IOV (8 VFs), ACS.
_NIC_PCIE = (
    le(
        (0x0002, 2),  # version 2, endpoint
        (0x10008CC1, 4),  # MPS 256, ext tag, L0s/L1 latencies, RBER, FLR
        (0x2930, 2),  # MPS 256, MRRS 512, relaxed ordering, ext tag, no snoop
        (0x0010, 2),  # aux power detected
        (0x0003EC41, 4),  # 2.5GT/s x4, ASPM L0s L1, exit latencies; port 0
        (0x0040, 2),  # common clock
        (0x1041, 2),  # 2.5GT/s x4, slot clock
    )
    + bytes(0x2C - 0x14)
    + le((0x00000002, 4), (0x0001, 2))
)
_AER = le(
    (1 << 14, 4),  # uncorrectable status: completion timeout
    (0, 4),
    (0x00062030, 4),  # severity: DLP, SDES, FCP, RX overflow, malformed
    (1 << 6, 4),  # correctable status: bad TLP
    (0x00002000, 4),  # correctable mask: advisory non-fatal
    (0x000000AE, 4),  # first error 14, ECRC gen/check capable, check enabled
    (0x40000001, 4),
    (0x0000000F, 4),
    (0xFED00000, 4),
    (0, 4),
)
_SRIOV = le(
    (0x00000000, 4),
    (0x0019, 2),  # VF enable, VF MSE, ARI capable hierarchy
    (0x0000, 2),
    (8, 2),
    (8, 2),
    (8, 2),
    (0, 1),
    (0, 1),
    (0x0180, 2),
    (0x0002, 2),
    (0, 2),
    (0x10CA, 2),
    (0x00000553, 4),
    (0x00000001, 4),
    (0xF0000000 | 0xC, 4),
    (0, 4),
    (0, 4),
    (0xF0400000 | 0xC, 4),
    (0, 4),
    (0, 4),
    (0, 4),
)
NIC = (
    ConfigBuilder(4096)
    .header(0x8086, 0x10C9, 0x0406, 0x0010, 0x01, 0x020000, sv=0x8086, sd=0xA03C)
    .w32(0x10, 0xF7A00000)
    .w32(0x18, 0x0000E001)
    .w32(0x1C, 0xF7B00000)
    .caps(
        [
            (0x40, 0x01, le((0xC823, 2), (0x2000, 2))),
            (0x50, 0x05, le((0x0186, 2), (0, 4), (0, 4), (0, 2), (0, 2), (0, 4), (0, 4))),
            (0x70, 0x11, le((0x8009, 2), (0x00000003, 4), (0x00002003, 4))),
            (0xA0, 0x10, _NIC_PCIE),
        ]
    )
    .ext_caps(
        [
            (0x100, 0x0001, 1, _AER),
            (0x140, 0x0003, 1, le((0xDEADBEEF, 4), (0x0011_2233, 4))),
            (0x150, 0x000E, 1, le((0x0100, 2), (0, 2))),
            (0x160, 0x0010, 1, _SRIOV),
            (0x1A0, 0x000D, 1, le((0x001F, 2), (0x001D, 2))),
        ]
    )
    .bytes()
)
NIC_BAR_SIZES = [128 * 1024, 0, 32, 16 * 1024, 0, 0]
