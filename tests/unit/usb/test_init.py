"""The usb family's public names: each exists, is documented, and nothing else leaks."""

from __future__ import annotations

import hwkit.usb as family

from .exports import assert_exports


def test_exports():
    assert_exports(family)
