"""The serial family's public names: each exists, is documented, and nothing else leaks."""

from __future__ import annotations

import hwkit.serial as family

from ..usb.exports import assert_exports


def test_exports():
    assert_exports(family)
