"""Serial ports as text and as JSON for ``hwkit probe serial``."""

from __future__ import annotations

import dataclasses
from typing import Any

from hwkit.serial.discovery import SerialPort

# include/uapi/linux/serial.h: PORT_* values of /sys/class/tty/ttyS*/type.
UART_TYPES = {
    1: "8250",
    2: "16450",
    3: "16550",
    4: "16550A",
    5: "Cirrus",
    6: "16650",
    7: "16650V2",
    8: "16750",
    9: "Startech",
    10: "16C950",
    11: "16654",
    12: "16850",
    13: "RSA",
}


def port_to_json(port: SerialPort) -> dict[str, Any]:
    """One port for ``--json``: every field, plus its address and device node."""
    out = {"address": port.address, "device_node": port.device_node}
    for f in dataclasses.fields(port):
        value = getattr(port, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    out["sysfs_path"] = str(port.sysfs_path)
    if port.port_type is not None:
        out["uart"] = UART_TYPES.get(port.port_type, f"type {port.port_type}")
    return out


def format_port(port: SerialPort) -> list[str]:
    """Lines describing one port."""
    lines = [f"{port.address}  [{port.kind}, driver {port.driver or '-'}]"]
    if port.port_type is not None:
        lines.append(f"\tUART: {UART_TYPES.get(port.port_type, port.port_type)}")
    if port.usb_vid is not None:
        ids = f"{port.usb_vid:04x}:{port.usb_pid or 0:04x}"
        names = " ".join(x for x in (port.usb_manufacturer, port.usb_product) if x)
        lines.append(f"\tUSB: {ids} {names} at {port.usb_address}".rstrip())
        if port.usb_serial:
            lines.append(f"\tUSB serial number: {port.usb_serial}")
        if port.usb_interface is not None:
            name = f" ({port.usb_interface_name})" if port.usb_interface_name else ""
            lines.append(f"\tUSB interface: {port.usb_interface}{name}")
    if port.pci_address:
        lines.append(f"\tPCI: {port.pci_address}")
    lines.extend(f"\tlink: {link}" for link in (*port.by_id, *port.by_path))
    return lines
