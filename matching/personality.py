"""Personalities: loading and validating plists shaped like an Info.plist's IOKitPersonalities.

A personality file is an XML (or binary) plist whose top-level dictionary holds
``IOKitPersonalities``, a dictionary of named personalities, and optionally a
``CFBundleIdentifier`` that personalities without their own inherit::

    <dict>
      <key>CFBundleIdentifier</key><string>org.hwkit.edu</string>
      <key>IOKitPersonalities</key>
      <dict>
        <key>EduDriver</key>
        <dict>
          <key>IOClass</key><string>hwkit.drivers.edu.EduDriver</string>
          <key>IOProviderClass</key><string>IOPCIDevice</string>
          <key>IOPCIPrimaryMatch</key><string>0x11e81234</string>
        </dict>
      </dict>
    </dict>

Every key and value type is checked when the file loads (:func:`load_file`). A bad
file is reported as ``path: personality 'X': key 'Y': what is wrong`` (one line per
problem) and **skipped as a whole**, like a kext whose Info.plist is invalid; other
files still load. ``IOClass`` is only imported when a driver is about to be
instantiated (:meth:`Personality.resolve_class`), so matching and checking never run
driver code.
"""

from __future__ import annotations

import copy
import importlib
import plistlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwkit.matching.rules import DEFAULT_CATEGORY, CompiledTable, compile_table

from hwkit.errors import BadArgument, NotFoundError

if TYPE_CHECKING:
    from hwkit.service import Service


@dataclass(frozen=True)
class Rejection:
    """One problem with a personality file: where, and what is wrong."""

    file: str
    personality: str | None
    key: str | None
    reason: str

    def __str__(self) -> str:
        parts = [self.file]
        if self.personality is not None:
            parts.append(f"personality {self.personality!r}")
        if self.key is not None:
            parts.append(f"key {self.key!r}")
        return ": ".join([*parts, self.reason])

    def to_json(self) -> dict[str, Any]:
        """The ``rejected`` entry of ``hwkit match --json``."""
        key = f"key {self.key!r}: " if self.key is not None else ""
        return {"file": self.file, "personality": self.personality, "reason": key + self.reason}


@dataclass(eq=False)
class Personality:
    """One validated personality: its table, compiled tests and place in the catalogue."""

    name: str
    file: str
    table: dict[str, Any]
    compiled: CompiledTable
    seq: int = 0
    _class: type | None = field(default=None, repr=False)

    @property
    def provider_class(self) -> str:
        """IOProviderClass, canonical spelling."""
        return self.compiled.provider_class

    @property
    def io_class(self) -> str:
        """The dotted Python path of the driver class."""
        return str(self.table["IOClass"])

    @property
    def category(self) -> str:
        """IOMatchCategory (default ``IODefaultMatchCategory``)."""
        return str(self.table.get("IOMatchCategory", DEFAULT_CATEGORY))

    @property
    def probe_score(self) -> int:
        """IOProbeScore (default 0)."""
        return int(self.table.get("IOProbeScore", 0))

    @property
    def passive_score(self) -> int:
        """Family score (USB combination) plus IOProbeScore."""
        return self.compiled.family_score + self.probe_score

    def driver_properties(self) -> dict[str, Any]:
        """A private deep copy of the table, for the driver instance's ``init``."""
        return copy.deepcopy(self.table)

    def resolve_class(self) -> type[Service]:
        """Import ``IOClass`` (once) and return it.

        Raises:
            NotFoundError: the module cannot be imported or has no such class; the
                message names the file, the personality and the import error.
            BadArgument: the object is not a subclass of :class:`hwkit.service.Service`.
        """
        if self._class is not None:
            return self._class
        from hwkit.service import Service

        module_name, _, class_name = self.io_class.rpartition(".")
        where = f"{self.file}: personality {self.name!r}: IOClass {self.io_class!r}"
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise NotFoundError(
                f"{where}: cannot import {module_name!r} ({type(exc).__name__}: {exc})"
            ) from exc
        cls = getattr(module, class_name, None)
        if cls is None:
            raise NotFoundError(f"{where}: module {module_name!r} has no {class_name!r}")
        if not (isinstance(cls, type) and issubclass(cls, Service)):
            raise BadArgument(f"{where}: {cls!r} is not a subclass of hwkit.Service")
        self._class = cls
        return cls


def _read(path: Path) -> tuple[Any, Rejection | None]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, Rejection(str(path), None, None, f"cannot read: {exc.strerror or exc}")
    try:
        return plistlib.loads(data), None
    except Exception as exc:  # plistlib raises many types for malformed input
        detail = str(exc) or type(exc).__name__
        return None, Rejection(str(path), None, None, f"not a valid plist: {detail}")


def parse_personalities(document: Any, file: str) -> tuple[list[Personality], list[Rejection]]:
    """Validate a parsed plist document; return its personalities or its problems.

    When there is any problem the personality list is empty: the file is skipped.
    Never raises on bad input.
    """
    if not isinstance(document, dict):
        kind = type(document).__name__
        return [], [Rejection(file, None, None, f"top level is {kind}, expected a <dict>")]
    table = document.get("IOKitPersonalities")
    if not isinstance(table, dict):
        what = "missing" if table is None else f"a {type(table).__name__}, not a <dict>"
        return [], [Rejection(file, None, "IOKitPersonalities", f"is {what}")]
    bundle = document.get("CFBundleIdentifier")
    rejections: list[Rejection] = []
    if bundle is not None and not isinstance(bundle, str):
        rejections.append(Rejection(file, None, "CFBundleIdentifier", "must be a <string>"))
    if not table:
        rejections.append(Rejection(file, None, "IOKitPersonalities", "is empty"))
    personalities = []
    for name, body in table.items():
        label = name if isinstance(name, str) else repr(name)
        if not isinstance(body, dict):
            reason = f"is a {type(body).__name__}, expected a <dict>"
            rejections.append(Rejection(file, label, None, reason))
            continue
        errors: list[tuple[str, str]] = []
        if "IOClass" not in body:
            errors.append(("IOClass", "is missing (the Python class of the driver)"))
        compiled = compile_table(body, errors)
        first = {key: message for key, message in reversed(errors)}  # first per key
        rejections += [Rejection(file, label, key, first[key]) for key in dict(errors)]
        if not errors:
            merged = dict(body)
            if isinstance(bundle, str):
                merged.setdefault("CFBundleIdentifier", bundle)
            personalities.append(Personality(label, file, merged, compiled))
    return ([] if rejections else personalities), rejections


def load_file(path: str | Path) -> tuple[list[Personality], list[Rejection]]:
    """Read and validate one personality file.

    Returns the file's personalities (empty when it has problems) and the problems.
    Never raises on bad content or an unreadable file.
    """
    path = Path(path)
    document, problem = _read(path)
    if problem is not None:
        return [], [problem]
    return parse_personalities(document, str(path))
