"""Drivers shipped with hwkit, each with its personality plist beside it.

Installed as ``hwkit.drivers`` (pyproject's package-dir mapping).
"""
