"""Serial family: discovery, nubs, ports over termios.

Ports with hardware behind them are found through sysfs and /dev/serial
(:mod:`hwkit.serial.discovery`). Address: ``serial:/dev/ttyUSB0``.
"""

from hwkit.serial.discovery import SerialPort, find_port, list_ports

__all__ = ["SerialPort", "find_port", "list_ports"]
