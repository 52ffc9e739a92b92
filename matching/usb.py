"""USB matching: Apple's device and interface key combinations and their scores.

A USB personality names one of the combinations below and nothing else ("You cannot
create your own combinations of keys", QA1076); hwkit rejects any other set of USB
keys when the personality loads, with the nearest allowed combination in the message.
The score of the combination is the personality's family score (IOProbeScore is
added to it, though QA1076 advises USB drivers not to set one).

``IOUSBHostDevice`` (alias ``IOUSBDevice``):

=============================================== ======= ============================
keys                                            score   condition on the nub
=============================================== ======= ============================
idVendor + idProduct + bcdDevice                100000
idVendor + idProduct                            90000
idVendor + bDeviceSubClass + bDeviceProtocol    80000   bDeviceClass == 0xFF
idVendor + bDeviceSubClass                      70000   bDeviceClass == 0xFF
bDeviceClass + bDeviceSubClass + bDeviceProtocol 60000  bDeviceClass != 0xFF
bDeviceClass + bDeviceSubClass                  50000   bDeviceClass != 0xFF
=============================================== ======= ============================

``IOUSBHostInterface`` (alias ``IOUSBInterface``) is the same with the interface's
class triple, and the two id rows also name bConfigurationValue and bInterfaceNumber:
idVendor + idProduct + bcdDevice + bConfigurationValue + bInterfaceNumber (100000),
idVendor + idProduct + bConfigurationValue + bInterfaceNumber (90000), then idVendor +
bInterfaceSubClass [+ bInterfaceProtocol] (80000 / 70000, vendor-specific class 0xFF),
bInterfaceClass + bInterfaceSubClass [+ bInterfaceProtocol] (60000 / 50000, class not
0xFF).

The vendor-specific rows may also carry the class key itself, which must then be 0xFF;
the class rows must not name class 0xFF (use the vendor rows). A USB personality with
no USB keys at all matches every device (or interface) with family score 0, as I/O Kit
defers to IOService's matching then. An interface nub carries its device's idVendor,
idProduct and bcdDevice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hwkit.matching.context import Failure, MatchContext, Test, hex_or_repr

USB_DEVICE = "IOUSBHostDevice"
USB_INTERFACE = "IOUSBHostInterface"
VENDOR_SPECIFIC = 0xFF

#: Every USB matching key and its largest value.
KEY_MAX = {
    "idVendor": 0xFFFF,
    "idProduct": 0xFFFF,
    "bcdDevice": 0xFFFF,
    "bDeviceClass": 0xFF,
    "bDeviceSubClass": 0xFF,
    "bDeviceProtocol": 0xFF,
    "bConfigurationValue": 0xFF,
    "bInterfaceNumber": 0xFF,
    "bInterfaceClass": 0xFF,
    "bInterfaceSubClass": 0xFF,
    "bInterfaceProtocol": 0xFF,
}
DEVICE_ONLY = {"bDeviceClass", "bDeviceSubClass", "bDeviceProtocol"}
INTERFACE_ONLY = {
    "bConfigurationValue",
    "bInterfaceNumber",
    "bInterfaceClass",
    "bInterfaceSubClass",
    "bInterfaceProtocol",
}


@dataclass(frozen=True)
class Combination:
    """One allowed set of keys, its score and the class condition it puts on the nub."""

    keys: tuple[str, ...]
    score: int
    class_key: str
    vendor_specific: bool | None  # True: class must be 0xFF; False: must not; None: no rule

    @property
    def label(self) -> str:
        """The keys joined with '+', as the tables write them."""
        return "+".join(self.keys)


def _table(prefix: str, id_extra: tuple[str, ...]) -> tuple[Combination, ...]:
    cls, sub, proto = f"b{prefix}Class", f"b{prefix}SubClass", f"b{prefix}Protocol"
    ids = ("idVendor", "idProduct")
    return (
        Combination((*ids, "bcdDevice", *id_extra), 100000, cls, None),
        Combination((*ids, *id_extra), 90000, cls, None),
        Combination(("idVendor", sub, proto), 80000, cls, True),
        Combination(("idVendor", sub), 70000, cls, True),
        Combination((cls, sub, proto), 60000, cls, False),
        Combination((cls, sub), 50000, cls, False),
    )


COMBINATIONS: dict[str, tuple[Combination, ...]] = {
    USB_DEVICE: _table("Device", ()),
    USB_INTERFACE: _table("Interface", ("bConfigurationValue", "bInterfaceNumber")),
}


@dataclass
class UsbRule:
    """A validated USB personality: its combination (or None) and wanted values."""

    combination: Combination | None
    wanted: dict[str, int]

    @property
    def score(self) -> int:
        """The family score (0 when the personality names no USB keys)."""
        return self.combination.score if self.combination else 0

    @property
    def label(self) -> str:
        """How the explainer names the rule."""
        if self.combination is None:
            return "no USB keys"
        return f"{self.combination.label} ({self.combination.score})"

    def index_keys(self) -> frozenset[tuple[str, int]]:
        """Catalogue index keys: by vendor when the rule names one, else by class."""
        if "idVendor" in self.wanted:
            return frozenset({("usb-vendor", self.wanted["idVendor"])})
        if self.combination is not None:
            return frozenset({("usb-class", self.wanted[self.combination.class_key])})
        return frozenset()

    def test(self, ctx: MatchContext) -> Failure | None:
        """Compare the nub's keys in the combination's order, then the class condition."""
        combination = self.combination
        if combination is None:
            return None
        props = ctx.props
        for key in combination.keys:
            got = props.get(key)
            wanted = self.wanted[key]
            if got is None:
                return Failure(key, hex_or_repr(wanted, _width(key)), f"no {key}")
            if got != wanted or isinstance(got, bool):
                return Failure(key, hex_or_repr(wanted, _width(key)), hex_or_repr(got, _width(key)))
        if combination.vendor_specific is not None:
            key = combination.class_key
            got = props.get(key)
            is_vendor = got == VENDOR_SPECIFIC
            if is_vendor != combination.vendor_specific:
                rule = "0xff" if combination.vendor_specific else "a class other than 0xff"
                return Failure(
                    key,
                    rule,
                    f"no {key}" if got is None else hex_or_repr(got, 2),
                    f"{combination.label} applies only to that class",
                )
        return None


def _width(key: str) -> int:
    return 4 if KEY_MAX[key] > 0xFF else 2


def is_usb_key(key: str) -> bool:
    """True for the descriptor field names USB matching reads."""
    return key in KEY_MAX


def compile_usb(
    provider: str, table: Mapping[str, Any], errors: list[tuple[str, str]]
) -> tuple[UsbRule | None, list[Test]]:
    """Validate the USB keys of `table` for `provider`; append (key, message) errors.

    Returns the rule and its tests (none when `provider` is not a USB class and the
    table has no USB keys).
    """
    present = [k for k in table if k in KEY_MAX]
    if provider not in COMBINATIONS:
        for key in present:
            errors.append((key, f"is a USB matching key but IOProviderClass is {provider!r}"))
        return None, []
    wanted: dict[str, int] = {}
    foreign = DEVICE_ONLY if provider == USB_INTERFACE else INTERFACE_ONLY
    for key in present:
        value = table[key]
        if key in foreign:
            own = "bInterface" if provider == USB_INTERFACE else "bDevice"
            errors.append((key, f"is not a {provider} key (this provider uses {own}... keys)"))
        elif not isinstance(value, int) or isinstance(value, bool):
            errors.append((key, f"must be an <integer>, not {type(value).__name__}"))
        elif not 0 <= value <= KEY_MAX[key]:
            errors.append((key, f"{value} is out of range 0..{KEY_MAX[key]:#x}"))
        else:
            wanted[key] = value
    if len(wanted) != len(present):
        return None, []
    if not wanted:
        return UsbRule(None, {}), []
    combination = _find_combination(provider, wanted, errors)
    if combination is None:
        return None, []
    rule = UsbRule(combination, wanted)
    return rule, [rule.test]


def _find_combination(
    provider: str, wanted: dict[str, int], errors: list[tuple[str, str]]
) -> Combination | None:
    keys = set(wanted)
    for combination in COMBINATIONS[provider]:
        allowed = set(combination.keys)
        class_key = combination.class_key
        if combination.vendor_specific:
            if keys not in (allowed, allowed | {class_key}):
                continue
            if class_key in wanted and wanted[class_key] != VENDOR_SPECIFIC:
                errors.append((class_key, f"must be 0xff with {combination.label}"))
                return None
            return combination
        if keys == allowed:
            if combination.vendor_specific is False and wanted[class_key] == VENDOR_SPECIFIC:
                vendor_row = "idVendor+" + "+".join(combination.keys[1:])
                errors.append(
                    (class_key, f"0xff (vendor-specific) cannot match by class: use {vendor_row}")
                )
                return None
            return combination
    errors.append(_nearest_complaint(provider, keys))
    return None


def _nearest_complaint(provider: str, keys: set[str]) -> tuple[str, str]:
    def distance(c: Combination) -> tuple[int, int]:
        allowed = set(c.keys)
        return (len(keys ^ allowed), -c.score)

    nearest = min(COMBINATIONS[provider], key=distance)
    allowed = set(nearest.keys)
    given = "+".join(k for k in KEY_MAX if k in keys)
    listing = "; ".join(c.label for c in COMBINATIONS[provider])
    optional = nearest.class_key if nearest.vendor_specific else None
    extra = [k for k in KEY_MAX if k in keys - allowed and k != optional]
    missing = [k for k in nearest.keys if k not in keys]
    if extra:
        key, what = extra[0], f"is not part of the nearest combination {nearest.label}"
    else:
        key, what = missing[0], f"is missing: the nearest combination is {nearest.label}"
    return key, f"{what}; {given} is not an allowed {provider} combination (allowed: {listing})"
