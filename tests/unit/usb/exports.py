"""The check every family's public names pass (shared by the families' test_init)."""

from __future__ import annotations

from types import ModuleType


def assert_exports(family: ModuleType) -> None:
    """Each name in ``__all__`` exists and is documented; ``import *`` gives exactly them."""
    for name in family.__all__:
        obj = getattr(family, name)
        assert obj.__doc__ and obj.__doc__.strip(), f"{name} has no docstring"
    assert sorted(family.__all__) == family.__all__
    namespace: dict = {}
    exec(f"from {family.__name__} import *", namespace)
    assert sorted(k for k in namespace if not k.startswith("__")) == family.__all__
