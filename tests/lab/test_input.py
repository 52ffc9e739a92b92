"""Input events injected through QMP reach the guest's usb-kbd as key events (evdev)."""

import struct
import sys
import threading

import pytest

from hwkit.lab.machine import Lab

# Finds the usb-kbd's event node, says "ready", then prints the first key press it reads.
READER = r"""
import glob, os, select, struct, sys
nodes = [p for p in glob.glob("/sys/class/input/event*")
         if "QEMU USB Keyboard" in open(p + "/device/name").read()]
if not nodes:
    sys.exit("no evdev node for the QEMU USB Keyboard")
fd = os.open("/dev/input/" + os.path.basename(nodes[0]), os.O_RDONLY)
print("ready", flush=True)
EVENT = struct.Struct("llHHi")  # struct input_event on 64-bit: timeval, type, code, value
buf = b""
while select.select([fd], [], [], 20)[0]:
    buf += os.read(fd, EVENT.size * 64)
    while len(buf) >= EVENT.size:
        _, _, kind, code, value = EVENT.unpack_from(buf)
        buf = buf[EVENT.size:]
        if kind == 1 and value == 1:  # EV_KEY, pressed
            print("key", code, flush=True)
            sys.exit(0)
sys.exit("no key press within 20 s")
"""

KEY_A = 30  # linux/input-event-codes.h


@pytest.mark.lab("usb", host=True)
def test_send_key_arrives_as_an_evdev_key_press(lab: Lab) -> None:
    ready = threading.Event()
    output = bytearray()

    def collect(data: bytes) -> None:
        output.extend(data)
        if b"ready" in output:
            ready.set()

    results = []
    reader = threading.Thread(
        target=lambda: results.append(
            lab.run([sys.executable, "-c", READER], stdout=collect, timeout=60)
        )
    )
    reader.start()
    assert ready.wait(60), "the guest reader did not start"
    lab.qmp.send_key("a")
    reader.join(60)
    assert results and results[0].status == 0, results[0].stderr.decode() if results else ""
    assert f"key {KEY_A}".encode() in output, bytes(output)
    assert struct.calcsize("llHHi") == 24
