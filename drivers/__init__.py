"""Drivers shipped with hwkit, each with its personality plist beside it (imported as hwkit.drivers)."""
