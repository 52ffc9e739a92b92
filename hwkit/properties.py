"""Registry property values: the plist types I/O Kit's registry holds, checked and converted.

An I/O Kit registry holds OSString, OSNumber (integers up to 64 bits), OSBoolean, OSData,
OSArray and OSDictionary: exactly the types `plistlib` reads as ``str``, ``int``,
``bool``, ``bytes``, ``list`` and ``dict`` (a plist's ``<real>`` and ``<date>`` have no
registry counterpart and are refused). Properties are checked when they are set, so a
bad value fails where it was written rather than later in matching or serialisation.

JSON has no byte strings: :func:`to_json` writes ``bytes`` as ``{"$data": "<base64>"}``
and :func:`from_json` reads that form back, so a registry snapshot and a nubs file
round-trip through JSON without losing type information.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from hwkit.errors import BadArgument

#: The widest integers an OSNumber holds (signed or unsigned 64-bit).
INT_MIN = -(2**63)
INT_MAX = 2**64 - 1

#: The JSON object key that tags a base64 byte string.
DATA_TAG = "$data"

PropertyValue = str | int | bool | bytes | list[Any] | dict[str, Any]


def type_name(value: object) -> str:
    """Name a value's type the way a plist author sees it (``<integer>``, ``<real>``...)."""
    names = {
        bool: "<true/> or <false/>",
        int: "<integer>",
        str: "<string>",
        bytes: "<data>",
        bytearray: "<data>",
        list: "<array>",
        tuple: "<array>",
        dict: "<dict>",
        float: "<real>",
    }
    for cls, name in names.items():
        if type(value) is cls:
            return name
    if value is None:
        return "null"
    return type(value).__name__


def check_value(value: object, where: str = "value") -> PropertyValue:
    """Return `value` as a registry property value, converting tuples and bytearrays.

    Why: every writer of properties (drivers, families, the nubs file, personalities)
    goes through this one check, so the registry never holds a value that cannot be
    serialised to plist or matched.

    Args:
        value: the candidate value.
        where: how to name the value in an error (for example ``"property 'idVendor'"``).

    Raises:
        BadArgument: the value (or something inside it) is not one of the plist types,
            an integer does not fit 64 bits, or a dictionary key is not a string.
    """
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise BadArgument(f"{where}: integer {value} does not fit in 64 bits")
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, list | tuple):
        return [check_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise BadArgument(f"{where}: dictionary key {key!r} is not a string")
            out[key] = check_value(item, f"{where}[{key!r}]")
        return out
    raise BadArgument(
        f"{where}: {type_name(value)} is not a registry property type "
        "(use a string, integer, boolean, data, array or dictionary)"
    )


def check_table(table: Mapping[str, object], where: str = "properties") -> dict[str, Any]:
    """Check a whole property table (a dict of name to value) and return a checked copy.

    Raises:
        BadArgument: a key is not a string or a value is not a plist type.
    """
    if not isinstance(table, Mapping):
        raise BadArgument(f"{where}: expected a dictionary, got {type_name(table)}")
    checked = check_value(table, where)
    assert isinstance(checked, dict)
    return checked


def same_value(a: object, b: object) -> bool:
    """Equality as OSObject::isEqualTo sees it: types must agree, so ``True != 1``.

    Why: Python says ``True == 1`` and ``[1] == (1,)``; a personality asking for a
    boolean must not match a nub carrying the number 1.
    """
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if type(a) is not type(b):
        return False
    return a == b


def to_json(value: Any) -> Any:
    """Convert a checked property value to JSON-ready data (bytes become a tagged base64 object)."""
    if isinstance(value, bytes):
        return {DATA_TAG: base64.b64encode(value).decode("ascii")}
    if isinstance(value, list):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    return value


def from_json(value: Any, where: str = "value") -> PropertyValue:
    """Convert JSON data back to a property value, decoding ``{"$data": ...}`` to bytes.

    Raises:
        BadArgument: a JSON value has no registry type (null, a float) or a tagged
            data object is not valid base64.
    """
    if isinstance(value, dict):
        if set(value) == {DATA_TAG}:
            encoded = value[DATA_TAG]
            if not isinstance(encoded, str):
                raise BadArgument(f"{where}: {DATA_TAG} must be a base64 string")
            try:
                return base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise BadArgument(f"{where}: {DATA_TAG} is not valid base64 ({exc})") from None
        return {key: from_json(item, f"{where}[{key!r}]") for key, item in value.items()}
    if isinstance(value, list):
        return [from_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    return check_value(value, where)
