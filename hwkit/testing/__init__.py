"""Test support: the pytest plugin for the QEMU lab and its fixtures."""
