"""Matching tables compiled to tests: IOProviderClass, the generic keys and the family keys.

A personality and an application's matching dictionary are the same kind of table
and go through the same code (:func:`compile_table`). All present keys AND together;
tests run in xnu's order (generic keys, then the family's keys, then resources), and
the first that fails is the reason a personality lost.

Generic keys (iokit-reference §1):

- ``IONameMatch``: a string or array; matches when any entry equals one of the nub's
  names: its registry name, each string of its ``compatible`` property, and for PCI
  nubs ``pciVVVV,DDDD`` and friends. The entry that matched becomes the driver's
  ``IONameMatched``.
- ``IOPropertyMatch``: a dictionary whose every property the nub has with an equal
  value (types must agree: ``true`` is not ``1``), or an array of such dictionaries of
  which any one may match.
- ``IOPropertyExistsMatch``: a property name or array of names; any one present.
- ``IOParentMatch``: a matching dictionary that some ancestor (service plane) matches.
- ``IOPathMatch``: the nub's path (``IOService:/a/b``; a bare ``/a/b`` means the service
  plane). ``IOLocationMatch``: the nub's location string. ``IORegistryEntryID``: its id.
  ``BSD Name``: its ``BSD Name`` property.
- ``IOResourceMatch``: a resource name or array of names, each published on the
  IOResources nub. (macOS makes the driver wait for the resource; hwkit fails the
  match and matches again when a resource is published.)

hwkit's kernel-driver rule: a nub whose ``HWKernelDriver`` property names a bound Linux
driver already has a client in ``IODefaultMatchCategory``; a default-category
personality matches it only with ``HWDetachKernelDriver`` true.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hwkit.matching.context import Failure, MatchContext, Test
from hwkit.matching.pci import KEYS as PCI_KEYS
from hwkit.matching.pci import PCI_DEVICE, compile_pci, nub_index_keys, pci_index_keys, pci_names
from hwkit.matching.usb import COMBINATIONS, compile_usb
from hwkit.matching.usb import KEY_MAX as USB_KEYS

from hwkit.errors import BadArgument
from hwkit.properties import check_value, same_value
from hwkit.registry import SERVICE_PLANE, canonical_class

if TYPE_CHECKING:
    from hwkit.registry import Registry, RegistryEntry

DEFAULT_CATEGORY = "IODefaultMatchCategory"
KERNEL_DRIVER_KEY = "HWKernelDriver"
PROBE_SCORE_MIN, PROBE_SCORE_MAX = -(2**31), 2**31 - 1

#: Keys with a fixed type that are not match keys (validated, then merged into the driver).
_STRING = "a <string>"
_DOTTED = "a dotted Python path (package.module.Class)"
PERSONALITY_KEYS: dict[str, str] = {
    "IOClass": _DOTTED,
    "IOProviderClass": _STRING,
    "IOProbeScore": "an <integer> (32-bit signed)",
    "IOMatchCategory": _STRING,
    "CFBundleIdentifier": _STRING,
    "IOUserClientClass": _DOTTED,
    "IOKitDebug": "an <integer>",
    "IOPCITunnelCompatible": "a boolean",
    "IOProviderMergeProperties": "a <dict>",
    "HWUserClientGroups": "an <array> of group names",
    "HWUserClientUIDs": "an <array> of uids (integers)",
    "HWUserClientRootOnly": "a boolean",
    "HWRestartLimit": "an <integer>",
    "HWDetachKernelDriver": "a boolean",
    "HWHostUser": _STRING,
    "HWHostMemoryLock": "an <integer> (bytes)",
}
GENERIC_KEYS = (
    "IONameMatch",
    "IOPropertyMatch",
    "IOPropertyExistsMatch",
    "IOParentMatch",
    "IOPathMatch",
    "IOLocationMatch",
    "IORegistryEntryID",
    "BSD Name",
    "IOResourceMatch",
)
FAMILY_KEYS = (*USB_KEYS, *PCI_KEYS)
KNOWN_KEYS = (*PERSONALITY_KEYS, *GENERIC_KEYS, *FAMILY_KEYS)


@dataclass
class CompiledTable:
    """A checked matching table: its provider class, tests, family score and index keys."""

    provider_class: str
    tests: list[Test] = field(default_factory=list)
    family_score: int = 0
    family_rule: str = ""
    index_keys: frozenset[tuple[str, int]] = frozenset()
    resources: tuple[str, ...] = ()
    name_match: tuple[str, ...] = ()

    def first_failure(self, ctx: MatchContext) -> Failure | None:
        """The first key the nub fails (IOProviderClass included), or None."""
        if self.provider_class not in ctx.nub.class_chain():
            chain = " > ".join(ctx.nub.class_chain())
            return Failure("IOProviderClass", self.provider_class, chain)
        for test in self.tests:
            failure = test(ctx)
            if failure is not None:
                return failure
        return None

    def matches(self, entry: RegistryEntry, registry: Registry | None = None) -> bool:
        """True when `entry` passes every key."""
        return self.first_failure(MatchContext.for_entry(entry, registry)) is None


def nub_names(ctx: MatchContext) -> list[str]:
    """The names IONameMatch compares with: name, ``compatible`` entries, PCI names."""
    names = [ctx.nub.name]
    compatible = ctx.props.get("compatible")
    if isinstance(compatible, str):
        names.append(compatible)
    elif isinstance(compatible, list):
        names += [c for c in compatible if isinstance(c, str)]
    if PCI_DEVICE in ctx.nub.class_chain():
        names += pci_names(ctx)
    return names


def name_matched(table: CompiledTable, ctx: MatchContext) -> str | None:
    """The IONameMatch entry that matched the nub (recorded as ``IONameMatched``)."""
    names = ctx.derived("names", nub_names)
    return next((n for n in table.name_match if n in names), None)


def _strings(value: Any, key: str, errors: list[tuple[str, str]]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    errors.append((key, f"must be a <string> or a non-empty <array> of strings, not {value!r}"))
    return ()


def _describe(props: Mapping[str, Any], wanted: Mapping[str, Any]) -> tuple[str, str]:
    for name, value in wanted.items():
        if name not in props:
            return f"{name} = {value!r}", f"no {name}"
        if not same_value(props[name], value):
            return f"{name} = {value!r}", f"{name} = {props[name]!r}"
    return "", ""


def _compile_generic(
    table: Mapping[str, Any], errors: list[tuple[str, str]], compiled: CompiledTable
) -> list[Test]:
    tests: list[Test] = []
    if "IONameMatch" in table:
        compiled.name_match = wanted_names = _strings(table["IONameMatch"], "IONameMatch", errors)

        def name_test(ctx: MatchContext) -> Failure | None:
            names = ctx.derived("names", nub_names)
            if any(n in names for n in wanted_names):
                return None
            return Failure("IONameMatch", f"one of {list(wanted_names)}", f"names {names}")

        tests.append(name_test)
    if "IOPropertyMatch" in table:
        tests += _property_match(table["IOPropertyMatch"], errors)
    if "IOPropertyExistsMatch" in table:
        names = _strings(table["IOPropertyExistsMatch"], "IOPropertyExistsMatch", errors)
        tests.append(_exists_test(names))
    if "IOParentMatch" in table:
        tests += _parent_match(table["IOParentMatch"], errors)
    tests += _simple_generic(table, errors)
    return tests


def _property_match(value: Any, errors: list[tuple[str, str]]) -> list[Test]:
    if isinstance(value, dict):
        options = [value]
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        options = value
    else:
        errors.append(("IOPropertyMatch", "must be a <dict> or a non-empty <array> of <dict>"))
        return []

    def test(ctx: MatchContext) -> Failure | None:
        for option in options:
            wanted, got = _describe(ctx.props, option)
            if not wanted:
                return None
        wanted, got = _describe(ctx.props, options[0])
        note = f"none of {len(options)} dictionaries matches" if len(options) > 1 else ""
        return Failure("IOPropertyMatch", wanted, got, note)

    return [test]


def _exists_test(names: tuple[str, ...]) -> Test:
    def test(ctx: MatchContext) -> Failure | None:
        if any(n in ctx.props for n in names):
            return None
        return Failure("IOPropertyExistsMatch", f"one of {list(names)}", "none of them")

    return test


def _parent_match(value: Any, errors: list[tuple[str, str]]) -> list[Test]:
    if not isinstance(value, dict):
        errors.append(("IOParentMatch", f"must be a matching <dict>, not {value!r}"))
        return []
    inner: list[tuple[str, str]] = []
    parent = compile_table(value, inner, require_provider=False)
    errors += [("IOParentMatch", f"{key}: {message}") for key, message in inner]

    def test(ctx: MatchContext) -> Failure | None:
        for ancestor in ctx.nub.ancestors(SERVICE_PLANE):
            if parent.first_failure(MatchContext.for_entry(ancestor, ctx.registry)) is None:
                return None
        return Failure("IOParentMatch", repr(value), "no ancestor that matches")

    return [test]


def _equals_test(key: str, wanted: Any, read: Callable[[MatchContext], Any]) -> Test:
    def test(ctx: MatchContext) -> Failure | None:
        got = read(ctx)
        return None if same_value(got, wanted) else Failure(key, repr(wanted), repr(got))

    return test


def _normal_path(path: str) -> str:
    return path if ":/" in path else f"{SERVICE_PLANE}:{path}"


def _simple_generic(table: Mapping[str, Any], errors: list[tuple[str, str]]) -> list[Test]:
    readers: dict[str, tuple[type, Callable[[MatchContext], Any]]] = {
        "IOPathMatch": (str, lambda ctx: ctx.nub.path(SERVICE_PLANE)),
        "IOLocationMatch": (str, lambda ctx: ctx.nub.location),
        "IORegistryEntryID": (int, lambda ctx: ctx.nub.entry_id),
        "BSD Name": (str, lambda ctx: ctx.props.get("BSD Name")),
    }
    tests = []
    for key, (kind, read) in readers.items():
        if key not in table:
            continue
        value = table[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            errors.append((key, f"must be {'a <string>' if kind is str else 'an <integer>'}"))
            continue
        if key == "IOPathMatch":
            value = _normal_path(str(value))
        tests.append(_equals_test(key, value, read))
    return tests


def _resource_test(names: tuple[str, ...]) -> Test:
    def test(ctx: MatchContext) -> Failure | None:
        resources = ctx.registry.resources if ctx.registry is not None else None
        for name in names:
            if resources is None or not resources.is_published(name):
                wanted = f"resource {name!r}"
                return Failure(
                    "IOResourceMatch", wanted, "not published it", subject="registry has"
                )
        return None

    return test


def _check_personality_keys(table: Mapping[str, Any], errors: list[tuple[str, str]]) -> None:
    for key, what in PERSONALITY_KEYS.items():
        if key not in table:
            continue
        value = table[key]
        ok = {
            _STRING: isinstance(value, str) and bool(value),
            _DOTTED: isinstance(value, str) and _is_dotted(value),
            "a boolean": isinstance(value, bool),
            "a <dict>": isinstance(value, dict),
            "an <array> of group names": isinstance(value, list)
            and all(isinstance(v, str) and v for v in value),
            "an <array> of uids (integers)": isinstance(value, list)
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value),
        }.get(what, isinstance(value, int) and not isinstance(value, bool))
        if key == "IOProbeScore" and ok and not PROBE_SCORE_MIN <= value <= PROBE_SCORE_MAX:
            ok = False
        if key in ("HWRestartLimit", "HWHostMemoryLock") and ok and value < 0:
            ok = False
        if not ok:
            errors.append((key, f"must be {what}, not {value!r}"))
    for key in table:
        if key in KNOWN_KEYS:
            continue
        if key.startswith(("IO", "HW")):
            close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            errors.append((key, f"is not a key hwkit knows{hint}"))
        elif close := difflib.get_close_matches(key, FAMILY_KEYS, n=1, cutoff=0.85):
            errors.append((key, f"looks like a misspelling of the match key {close[0]!r}"))


def _is_dotted(value: str) -> bool:
    parts = value.split(".")
    return len(parts) >= 2 and all(p.isidentifier() for p in parts)


def compile_table(
    table: Mapping[str, Any],
    errors: list[tuple[str, str]],
    *,
    require_provider: bool = True,
) -> CompiledTable:
    """Check and compile a personality or matching dictionary.

    Every problem is appended to `errors` as ``(key, message)``; the returned table is
    only meaningful when no error was added. Never raises on bad input.
    """
    for key, value in table.items():
        if not isinstance(key, str):
            errors.append((repr(key), "keys must be strings"))
            return CompiledTable("IOService")
        try:
            check_value(value, "value")
        except BadArgument as exc:
            errors.append((key, str(exc)))
    provider = table.get("IOProviderClass")
    if provider is None:
        if require_provider:
            errors.append(
                ("IOProviderClass", "is missing (the class of nub this driver attaches to)")
            )
        provider = "IOService"
    elif not isinstance(provider, str) or not provider:
        provider = "IOService"
    compiled = CompiledTable(canonical_class(provider))
    _check_personality_keys(table, errors)
    tests = _compile_generic(table, errors, compiled)
    usb_rule, usb_tests = compile_usb(compiled.provider_class, table, errors)
    pci_keys, pci_tests = compile_pci(compiled.provider_class, table, errors)
    tests += usb_tests + pci_tests
    if usb_rule is not None:
        compiled.family_score = usb_rule.score
        compiled.family_rule = f"USB {usb_rule.label}"
        compiled.index_keys = usb_rule.index_keys()
    elif pci_keys:
        compiled.family_rule = "PCI " + " + ".join(k.key for k in pci_keys) + " (0)"
        compiled.index_keys = pci_index_keys(pci_keys)
    if "IOResourceMatch" in table:
        compiled.resources = _strings(table["IOResourceMatch"], "IOResourceMatch", errors)
        tests.append(_resource_test(compiled.resources))
    compiled.tests = tests
    return compiled


def compile_matching_table(table: Mapping[str, Any]) -> CompiledTable:
    """Compile an application's matching dictionary (IOProviderClass defaults to IOService).

    Raises:
        BadArgument: the dictionary has bad keys; the message names each.
    """
    if not isinstance(table, Mapping):
        raise BadArgument(f"a matching dictionary must be a dict, not {type(table).__name__}")
    errors: list[tuple[str, str]] = []
    compiled = compile_table(table, errors, require_provider=False)
    if errors:
        raise BadArgument("; ".join(f"key {key!r}: {message}" for key, message in errors))
    return compiled


def nub_index_keys_for(ctx: MatchContext) -> set[tuple[str, int]]:
    """Index keys the catalogue looks a nub up under (USB vendor and class, PCI ids)."""
    props = ctx.props
    chain = ctx.nub.class_chain()
    keys: set[tuple[str, int]] = set()
    if any(c in COMBINATIONS for c in chain):
        if isinstance(props.get("idVendor"), int):
            keys.add(("usb-vendor", props["idVendor"]))
        for name in ("bDeviceClass", "bInterfaceClass"):
            if isinstance(props.get(name), int):
                keys.add(("usb-class", props[name]))
    if PCI_DEVICE in chain:
        keys |= nub_index_keys(props)
    return keys


def kernel_driver_failure(
    table: Mapping[str, Any], category: str, ctx: MatchContext
) -> Failure | None:
    """Fail a default-category personality on a nub a Linux driver holds, unless opted in."""
    bound = ctx.props.get(KERNEL_DRIVER_KEY)
    if not bound or category != DEFAULT_CATEGORY or table.get("HWDetachKernelDriver") is True:
        return None
    return Failure(
        KERNEL_DRIVER_KEY,
        "no kernel driver bound (or HWDetachKernelDriver true)",
        f"kernel driver {bound!r} bound",
    )
