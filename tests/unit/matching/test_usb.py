"""USB matching: every allowed device and interface combination, its score and failures."""

from __future__ import annotations

import pytest
from hwkit.matching.usb import COMBINATIONS, USB_DEVICE, USB_INTERFACE

from tests.unit.matching.support import failure, nub, personality, problems

DEVICE = {
    "idVendor": 0x0403,
    "idProduct": 0x6001,
    "bcdDevice": 0x0600,
    "bDeviceClass": 0x00,
    "bDeviceSubClass": 0x00,
    "bDeviceProtocol": 0x00,
}
VENDOR_DEVICE = {**DEVICE, "bDeviceClass": 0xFF, "bDeviceSubClass": 0x42, "bDeviceProtocol": 0x07}
INTERFACE = {
    "idVendor": 0x0403,
    "idProduct": 0x6001,
    "bcdDevice": 0x0600,
    "bConfigurationValue": 1,
    "bInterfaceNumber": 2,
    "bInterfaceClass": 0x02,
    "bInterfaceSubClass": 0x02,
    "bInterfaceProtocol": 0x01,
}
VENDOR_INTERFACE = {
    **INTERFACE,
    "bInterfaceClass": 0xFF,
    "bInterfaceSubClass": 0x42,
    "bInterfaceProtocol": 0x07,
}

# provider, keys, score, the nub the keys are taken from
ROWS = [
    (USB_DEVICE, "idVendor idProduct bcdDevice", 100000, DEVICE),
    (USB_DEVICE, "idVendor idProduct", 90000, DEVICE),
    (USB_DEVICE, "idVendor bDeviceSubClass bDeviceProtocol", 80000, VENDOR_DEVICE),
    (USB_DEVICE, "idVendor bDeviceSubClass", 70000, VENDOR_DEVICE),
    (USB_DEVICE, "bDeviceClass bDeviceSubClass bDeviceProtocol", 60000, DEVICE),
    (USB_DEVICE, "bDeviceClass bDeviceSubClass", 50000, DEVICE),
    (
        USB_INTERFACE,
        "idVendor idProduct bcdDevice bConfigurationValue bInterfaceNumber",
        100000,
        INTERFACE,
    ),
    (USB_INTERFACE, "idVendor idProduct bConfigurationValue bInterfaceNumber", 90000, INTERFACE),
    (USB_INTERFACE, "idVendor bInterfaceSubClass bInterfaceProtocol", 80000, VENDOR_INTERFACE),
    (USB_INTERFACE, "idVendor bInterfaceSubClass", 70000, VENDOR_INTERFACE),
    (USB_INTERFACE, "bInterfaceClass bInterfaceSubClass bInterfaceProtocol", 60000, INTERFACE),
    (USB_INTERFACE, "bInterfaceClass bInterfaceSubClass", 50000, INTERFACE),
]


def test_the_table_is_apples():
    for provider in (USB_DEVICE, USB_INTERFACE):
        rows = [(c.label.replace("+", " "), c.score) for c in COMBINATIONS[provider]]
        assert rows == [(keys, score) for p, keys, score, _ in ROWS if p == provider]


@pytest.mark.parametrize(("provider", "keys", "score", "props"), ROWS)
def test_each_combination_matches_with_its_score(provider, keys, score, props):
    table = {k: props[k] for k in keys.split()}
    p = personality({"IOProviderClass": provider, **table})
    assert p.compiled.family_score == score
    assert p.passive_score == score
    assert failure(p, nub(provider, props)) is None
    with_probe = personality({"IOProviderClass": provider, "IOProbeScore": 7, **table})
    assert with_probe.passive_score == score + 7


@pytest.mark.parametrize(("provider", "keys", "score", "props"), ROWS)
def test_each_key_of_each_combination_can_fail(provider, keys, score, props):
    table = {k: props[k] for k in keys.split()}
    p = personality({"IOProviderClass": provider, **table})
    for key in keys.split():
        other = dict(props, **{key: (props[key] + 1) % 0xFF})
        if key.endswith("Class") and props[key] == 0xFF:
            other[key] = 0xFE
        found = failure(p, nub(provider, other))
        assert found is not None and found.key == key, (key, found)
        width = 6 if key in ("idVendor", "idProduct", "bcdDevice") else 4
        assert found.wanted == f"{props[key]:#0{width}x}"
        assert found.got == f"{other[key]:#0{width}x}"
        missing = failure(p, nub(provider, {k: v for k, v in props.items() if k != key}))
        assert missing is not None and missing.key == key and missing.got == f"no {key}"


@pytest.mark.parametrize(
    ("provider", "keys", "score", "props"), [r for r in ROWS if r[2] in (80000, 70000)]
)
def test_vendor_rows_need_the_vendor_specific_class(provider, keys, score, props):
    p = personality({"IOProviderClass": provider, **{k: props[k] for k in keys.split()}})
    class_key = "bDeviceClass" if provider == USB_DEVICE else "bInterfaceClass"
    found = failure(p, nub(provider, {**props, class_key: 0x02}))
    assert found is not None and found.key == class_key
    assert found.wanted == "0xff" and found.got == "0x02"
    assert "applies only to that class" in str(found)
    # The row may name the class itself, as 0xff only.
    explicit = personality(
        {"IOProviderClass": provider, class_key: 0xFF, **{k: props[k] for k in keys.split()}}
    )
    assert explicit.compiled.family_score == score


@pytest.mark.parametrize(
    ("provider", "table", "key", "message"),
    [
        (
            USB_DEVICE,
            {"idVendor": 1, "bcdDevice": 2},
            "idProduct",
            "is missing: the nearest combination is idVendor+idProduct+bcdDevice",
        ),
        (USB_DEVICE, {"idVendor": 1}, "idProduct", "is missing"),
        (USB_DEVICE, {"idProduct": 1}, "idVendor", "is missing"),
        (
            USB_DEVICE,
            {"idVendor": 1, "idProduct": 2, "bDeviceProtocol": 3},
            "bDeviceProtocol",
            "is not part of the nearest combination idVendor+idProduct",
        ),
        (USB_DEVICE, {"bDeviceClass": 9}, "bDeviceSubClass", "is missing"),
        (
            USB_DEVICE,
            {"bDeviceClass": 0xFF, "bDeviceSubClass": 1},
            "bDeviceClass",
            "0xff (vendor-specific) cannot match by class: use idVendor+bDeviceSubClass",
        ),
        (
            USB_DEVICE,
            {"idVendor": 1, "bDeviceClass": 2, "bDeviceSubClass": 3},
            "bDeviceClass",
            "must be 0xff with idVendor+bDeviceSubClass",
        ),
        (
            USB_DEVICE,
            {"bInterfaceClass": 2, "bInterfaceSubClass": 2},
            "bInterfaceClass",
            "is not a IOUSBHostDevice key",
        ),
        (
            USB_INTERFACE,
            {"bDeviceClass": 2, "bDeviceSubClass": 2},
            "bDeviceClass",
            "is not a IOUSBHostInterface key",
        ),
        (USB_INTERFACE, {"idVendor": 1, "idProduct": 2}, "bConfigurationValue", "is missing"),
        (
            USB_INTERFACE,
            {"idVendor": 1, "idProduct": 2, "bInterfaceNumber": 0},
            "bConfigurationValue",
            "is missing",
        ),
        (USB_DEVICE, {"idVendor": 0x10000, "idProduct": 1}, "idVendor", "out of range"),
        (USB_DEVICE, {"idVendor": -1, "idProduct": 1}, "idVendor", "out of range"),
        (USB_DEVICE, {"idVendor": "0x0403", "idProduct": 1}, "idVendor", "must be an <integer>"),
        (USB_DEVICE, {"idVendor": True, "idProduct": 1}, "idVendor", "must be an <integer>"),
        (
            "IOPCIDevice",
            {"idVendor": 1, "idProduct": 2},
            "idVendor",
            "is a USB matching key but IOProviderClass is 'IOPCIDevice'",
        ),
    ],
)
def test_invalid_combinations_are_rejected_at_load(provider, table, key, message):
    found = problems({"IOProviderClass": provider, **table})
    assert found[0].key == key, [str(f) for f in found]
    assert message in found[0].reason
    assert str(found[0]).startswith(f"test.plist: personality 'P': key '{key}': ")


def test_the_rejection_lists_the_allowed_combinations():
    (found,) = problems({"IOProviderClass": "IOUSBDevice", "idVendor": 1, "bcdDevice": 2})
    assert "idVendor+bcdDevice is not an allowed IOUSBHostDevice combination" in found.reason
    assert "allowed: idVendor+idProduct+bcdDevice; idVendor+idProduct;" in found.reason


def test_no_usb_keys_matches_everything_with_score_zero():
    p = personality({"IOProviderClass": USB_INTERFACE})
    assert p.compiled.family_score == 0
    assert failure(p, nub(USB_INTERFACE, INTERFACE)) is None
    assert p.compiled.family_rule == "USB no USB keys"


def test_aliases_name_the_same_class():
    p = personality(
        {
            "IOProviderClass": "IOUSBInterface",
            "idVendor": 0x0403,
            "idProduct": 0x6001,
            "bConfigurationValue": 1,
            "bInterfaceNumber": 2,
        }
    )
    assert p.provider_class == USB_INTERFACE
    assert failure(p, nub("IOUSBHostInterface", INTERFACE)) is None
    assert failure(p, nub("IOUSBInterface", INTERFACE)) is None
    found = failure(p, nub(USB_DEVICE, DEVICE))
    assert found is not None and found.key == "IOProviderClass"


def test_bool_on_the_nub_is_not_an_integer():
    p = personality({"IOProviderClass": USB_DEVICE, "bDeviceClass": 1, "bDeviceSubClass": 0})
    found = failure(p, nub(USB_DEVICE, {**DEVICE, "bDeviceClass": True}))
    assert found is not None and found.key == "bDeviceClass"
