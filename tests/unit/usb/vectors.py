"""Real-shaped USB descriptor bytes, written out from the USB specs and known dumps.

Each vector is what the device returns for GET_DESCRIPTOR (and what the sysfs
``descriptors`` file holds: the device descriptor, then each whole configuration).
The real files of the lab guest's devices are in data/lab-*.descriptors, checked
against lsusb -v in test_lab_descriptors.py.
"""

from __future__ import annotations


def h(text: str) -> bytes:
    """Hex bytes from a readable multi-line string (comments after '#' dropped)."""
    lines = (line.split("#", 1)[0] for line in text.splitlines())
    return bytes.fromhex(" ".join(lines))


# A USB 2.0 root hub (1d6b:0002): one hub interface, one interrupt endpoint.
ROOT_HUB_DEVICE = h("12 01 00 02 09 00 01 40 6b 1d 02 00 01 06 03 02 01 01")
ROOT_HUB_CONFIG = h("09 02 19 00 01 01 00 e0 00  09 04 00 00 01 09 00 00 00  07 05 81 03 04 00 0c")

# QEMU usb-kbd (0627:0001), a HID boot keyboard, as the guest sees it behind xHCI.
KEYBOARD_DEVICE = h("12 01 00 02 00 00 00 40 27 06 01 00 00 00 01 04 0b 01")
KEYBOARD_CONFIG = h(
    """
    09 02 22 00 01 01 07 a0 32   # config 1, 34 bytes, remote wakeup, 100 mA
    09 04 00 00 01 03 01 01 00   # interface 0: HID, boot, keyboard
    09 21 11 01 00 01 22 3f 00   # HID 1.11, one report descriptor of 63 bytes
    07 05 81 03 08 00 07         # EP 1 IN interrupt, 8 bytes, bInterval 7
    """
)

# QEMU usb-storage (46f4:0001) at SuperSpeed: bulk-only SCSI, 1024-byte packets,
# each endpoint with its SuperSpeed companion (bMaxBurst 15).
STORAGE_DEVICE = h("12 01 00 03 00 00 00 09 f4 46 01 00 00 00 01 02 03 01")
STORAGE_CONFIG = h(
    """
    09 02 2c 00 01 01 00 c0 32   # config 1, 44 bytes, self-powered
    09 04 00 00 02 08 06 50 00   # interface 0: mass storage, SCSI, bulk-only
    07 05 81 02 00 04 00         # EP 1 IN bulk 1024
    06 30 0f 00 00 00            # companion: bMaxBurst 15
    07 05 02 02 00 04 00         # EP 2 OUT bulk 1024
    06 30 0f 00 00 00
    """
)

# FTDI FT232R (0403:6001): one vendor-specific interface, bulk 0x81 / 0x02 of 64 bytes.
FTDI_DEVICE = h("12 01 00 02 00 00 00 08 03 04 01 60 00 06 01 02 03 01")
FTDI_CONFIG = h(
    """
    09 02 20 00 01 01 00 a0 2d   # config 1, 32 bytes, bus-powered, remote wakeup, 90 mA
    09 04 00 00 02 ff ff ff 02   # interface 0: vendor specific
    07 05 81 02 40 00 00         # EP 1 IN bulk 64
    07 05 02 02 40 00 00         # EP 2 OUT bulk 64
    """
)
FTDI_STRINGS = {1: "FTDI", 2: "FT232R USB UART", 3: "A50285BI"}

# A Linux composite gadget (1d6b:0104) like the lab's: a vendor SourceSink interface and
# a CDC ACM function (interfaces 1 and 2) grouped by an IAD.
ACM_COMPOSITE_DEVICE = h("12 01 00 02 ef 02 01 40 6b 1d 04 01 00 01 01 02 03 01")
ACM_COMPOSITE_CONFIG = h(
    """
    09 02 62 00 03 01 04 80 fa   # config 1, 98 bytes, 3 interfaces, 500 mA
    09 04 00 00 02 ff 00 00 05   # interface 0: vendor (SourceSink)
    07 05 81 02 00 02 00         # EP 1 IN bulk 512
    07 05 02 02 00 02 00         # EP 2 OUT bulk 512
    08 0b 01 02 02 02 01 06      # IAD: interfaces 1-2, CDC ACM AT-commands
    09 04 01 00 01 02 02 01 07   # interface 1: CDC comm, ACM, AT commands
    05 24 00 10 01               # CDC header, bcdCDC 1.10
    05 24 01 00 02               # call management, data interface 2
    04 24 02 02                  # ACM, line coding + serial state
    05 24 06 01 02               # union: control 1, subordinate 2
    07 05 83 03 0a 00 09         # EP 3 IN interrupt 10 bytes
    09 04 02 00 02 0a 00 00 08   # interface 2: CDC data
    07 05 84 02 00 02 00         # EP 4 IN bulk 512
    07 05 03 02 00 02 00         # EP 3 OUT bulk 512
    """
)

# The BOS of a USB 3 device: USB 2.0 extension (LPM), SuperSpeed, container ID.
BOS = h(
    """
    05 0f 2a 00 03
    07 10 02 02 00 00 00
    0a 10 03 00 0e 00 01 0a ff 07
    14 10 04 00 2b 33 68 97 55 d1 45 40 8c 16 bd 3a 4e 1c 2f 8e
    """
)

LANGIDS = h("04 03 09 04")


def string(text: str) -> bytes:
    """A string descriptor for ``text``."""
    body = text.encode("utf-16-le")
    return bytes([2 + len(body), 3]) + body
