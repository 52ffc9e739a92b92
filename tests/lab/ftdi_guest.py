"""Guest half of the FTDI round trip: talk to QEMU's usb-serial over libusb.

    python ftdi_guest.py read N      # read N payload bytes from bulk IN, print them as hex
    python ftdi_guest.py write HEX   # write the bytes to bulk OUT

FTDI FT232 framing (as QEMU's hw/usb/dev-serial.c implements it): every IN packet of
up to wMaxPacketSize bytes starts with two status bytes (modem status, line status),
and the payload follows; OUT packets carry payload only.
"""

import sys
import time

import usb1

FTDI_VID, FTDI_PID = 0x0403, 0x6001
EP_IN, EP_OUT = 0x81, 0x02


def main() -> int:
    mode, arg = sys.argv[1], sys.argv[2]
    with usb1.USBContext() as context:
        handle = context.openByVendorIDAndProductID(FTDI_VID, FTDI_PID, skip_on_error=False)
        if handle is None:
            sys.exit("no FTDI 0403:6001 in this guest")
        handle.setAutoDetachKernelDriver(True)  # ftdi_sio has it
        with handle.claimInterface(0):
            packet = handle.getDevice()[0][0][0][0].getMaxPacketSize()  # cfg 1, if 0, alt 0, ep IN
            if mode == "write":
                data = bytes.fromhex(arg)
                sent = handle.bulkWrite(EP_OUT, data, timeout=5000)
                print(sent)
                return 0 if sent == len(data) else 1
            want = int(arg)
            payload = bytearray()
            deadline = time.monotonic() + 20
            while len(payload) < want and time.monotonic() < deadline:
                try:
                    data = handle.bulkRead(EP_IN, 16 * packet, timeout=500)
                except usb1.USBErrorTimeout:
                    continue
                for start in range(0, len(data), packet):
                    payload += data[start + 2 : start + packet]
            print(payload.hex())
            return 0 if len(payload) == want else 1


if __name__ == "__main__":
    sys.exit(main())
