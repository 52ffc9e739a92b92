"""The usb family's public names: each exists, is documented, and nothing else leaks."""

from __future__ import annotations

import hwkit.usb as family


def test_exports_exist_and_are_documented():
    for name in family.__all__:
        obj = getattr(family, name)
        assert obj.__doc__ and obj.__doc__.strip(), f"{name} has no docstring"
    assert sorted(family.__all__) == family.__all__


def test_star_import_gives_exactly_the_exports():
    namespace: dict = {}
    exec("from hwkit.usb import *", namespace)
    assert sorted(k for k in namespace if not k.startswith("__")) == family.__all__
