"""Tests of hwkit.serial.report."""

from __future__ import annotations

import json
from pathlib import Path

from hwkit.serial import report
from hwkit.serial.discovery import SerialPort

FTDI = SerialPort(
    "ttyUSB0",
    Path("/sys/class/tty/ttyUSB0"),
    "usb",
    driver="ftdi_sio",
    usb_vid=0x0403,
    usb_pid=0x6001,
    usb_serial="A50285BI",
    usb_manufacturer="FTDI",
    usb_product="FT232R USB UART",
    usb_interface=0,
    usb_address="usb:1-2",
    by_id=("/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0",),
)
UART = SerialPort("ttyS0", Path("/sys/class/tty/ttyS0"), "platform", "serial", port_type=4)


def test_text():
    assert report.format_port(FTDI) == [
        "serial:/dev/ttyUSB0  [usb, driver ftdi_sio]",
        "\tUSB: 0403:6001 FTDI FT232R USB UART at usb:1-2",
        "\tUSB serial number: A50285BI",
        "\tUSB interface: 0",
        "\tlink: /dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0",
    ]
    assert report.format_port(UART)[1] == "\tUART: 16550A"


def test_json():
    out = report.port_to_json(FTDI)
    assert json.loads(json.dumps(out)) == out
    assert out["address"] == "serial:/dev/ttyUSB0" and out["usb_vid"] == 0x0403
    assert out["by_id"] == list(FTDI.by_id)
    assert report.port_to_json(UART)["uart"] == "16550A"
