"""Registry property values: the plist types, checked where they are written."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwkit.errors import BadArgument
from hwkit.properties import (
    INT_MAX,
    INT_MIN,
    check_table,
    check_value,
    from_json,
    same_value,
    to_json,
    type_name,
)

plist_values = st.recursive(
    st.one_of(
        st.booleans(),
        st.integers(INT_MIN, INT_MAX),
        st.text(max_size=8),
        st.binary(max_size=8),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("x", "x"),
        (7, 7),
        (True, True),
        (b"\x01", b"\x01"),
        (bytearray(b"ab"), b"ab"),
        ((1, 2), [1, 2]),
        ({"a": [1, (2,)]}, {"a": [1, [2]]}),
        (INT_MIN, INT_MIN),
        (INT_MAX, INT_MAX),
    ],
)
def test_check_value_accepts_and_normalises(value, expected):
    assert check_value(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "<real> is not a registry property type"),
        (None, "null is not a registry property type"),
        (datetime.datetime(2020, 1, 1), "datetime is not a registry property type"),
        (INT_MAX + 1, "does not fit in 64 bits"),
        (INT_MIN - 1, "does not fit in 64 bits"),
        ({1: "x"}, "dictionary key 1 is not a string"),
        ({"a": [1, 2.0]}, "where['a'][1]: <real>"),
    ],
)
def test_check_value_rejects_with_the_place(value, message):
    with pytest.raises(BadArgument, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_value(value, "where")


def test_check_table_requires_a_mapping():
    with pytest.raises(BadArgument, match="expected a dictionary, got <array>"):
        check_table([1])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (True, 1, False),
        (1, True, False),
        (False, 0, False),
        (True, True, True),
        (1, 1, True),
        ([1, True], [1, True], True),
        ([1, True], [1, 1], False),
        ({"a": 1}, {"a": True}, False),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        ("1", 1, False),
        (b"a", "a", False),
    ],
)
def test_same_value_is_type_strict(a, b, equal):
    assert same_value(a, b) is equal


@given(plist_values)
def test_json_round_trip_keeps_types(value):
    assert same_value(from_json(to_json(value)), value)


def test_from_json_rejects_bad_data_and_floats():
    with pytest.raises(BadArgument, match="not valid base64"):
        from_json({"$data": "!!"})
    with pytest.raises(BadArgument, match=r"\$data must be a base64 string"):
        from_json({"$data": 3})
    with pytest.raises(BadArgument, match="<real>"):
        from_json([1.0])


def test_type_names_read_like_plist_tags():
    assert type_name(1) == "<integer>"
    assert type_name(True) == "<true/> or <false/>"
    assert type_name(1.0) == "<real>"
    assert type_name(object()) == "object"
