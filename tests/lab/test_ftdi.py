"""Bytes cross between a host test and the guest's FTDI pipes, read through libusb."""

import os
import socket
import sys
from pathlib import Path

import pytest

from hwkit.lab.machine import Lab

GUEST_SCRIPT = str(Path(__file__).with_name("ftdi_guest.py"))


def recv_exactly(sock: socket.socket, n: int, timeout: float = 20) -> bytes:
    sock.settimeout(timeout)
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


@pytest.mark.lab("usb", host=True)
def test_host_to_guest_bulk_in(lab: Lab) -> None:
    data = os.urandom(1000)  # more than QEMU's 384-byte receive buffer: flow control too
    lab.ftdi.sendall(data)
    result = lab.run([sys.executable, GUEST_SCRIPT, "read", str(len(data))])
    assert result.status == 0, result.stderr.decode()
    assert bytes.fromhex(result.text.strip()) == data


@pytest.mark.lab("usb", host=True)
def test_guest_bulk_out_to_host(lab: Lab) -> None:
    data = os.urandom(1000)
    result = lab.run([sys.executable, GUEST_SCRIPT, "write", data.hex()])
    assert result.status == 0, result.stderr.decode()
    assert recv_exactly(lab.ftdi, len(data)) == data
