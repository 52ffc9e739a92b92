"""`hwkit ioreg` and `hwkit call` without a daemon: tree rendering, argument parsing, and
the message when no daemon answers (tests/daemon runs both against a real daemon)."""

from __future__ import annotations

import pytest
from hwkit.tools.cli import main
from hwkit.tools.cmd_call import hex_dump, parse_scalar, parse_struct
from hwkit.tools.cmd_ioreg import format_tree, select_class

from hwkit.errors import BadArgument, NotFoundError

TREE = {
    "name": "Root", "class": "IORegistryEntry", "id": 0x100, "properties": {}, "children": [
        {"name": "IOResources", "class": "IOResources", "id": 0x101, "state": "registered",
         "properties": {"IOKit": True}, "children": [
             {"name": "SampleDriver", "class": "SampleDriver", "id": 0x102, "state": "started",
              "classes": ["SampleDriver", "IOService"], "personality": "SampleDriver",
              "score": 0, "pid": 42, "properties": {"TickIntervalMS": 50, "Blob": b"\x01\x02"},
              "children": []},
         ]},
    ],
}  # fmt: skip


def test_the_tree_reads_like_ioreg():
    assert format_tree(TREE, long=False) == [
        "+-o Root  <class IORegistryEntry, id 0x100>",
        "  +-o IOResources  <class IOResources, id 0x101, registered>",
        "    +-o SampleDriver  <class SampleDriver, id 0x102, started, "
        "personality 'SampleDriver' score 0, pid 42>",
    ]


def test_long_form_lists_properties_with_data_as_base64():
    lines = format_tree(TREE["children"][0]["children"][0], long=True)
    assert '      "TickIntervalMS" = 50' in lines
    assert '      "Blob" = {"$data": "AQI="}' in lines


def test_class_selection_follows_the_class_chain():
    assert [n["name"] for n in select_class(TREE, "IOService")] == ["SampleDriver"]
    assert [n["name"] for n in select_class(TREE, "IOResources")] == ["IOResources"]
    assert select_class(TREE, "Nothing") == []


@pytest.mark.parametrize(("text", "value"), [("5", 5), ("0x10", 16), (str(2**64 - 1), 2**64 - 1)])
def test_scalars(text, value):
    assert parse_scalar(text) == value


@pytest.mark.parametrize(("text", "message"), [("-1", "outside"), ("x", "not an integer"),
                                               (str(2**64), "outside")])  # fmt: skip
def test_bad_scalars_name_the_argument(text, message):
    with pytest.raises(BadArgument, match=message):
        parse_scalar(text)


def test_structures(tmp_path):
    (tmp_path / "s.bin").write_bytes(b"\x00\xff")
    assert parse_struct("hex:00ff") == b"\x00\xff"
    assert parse_struct("text:hi") == b"hi"
    assert parse_struct(f"@{tmp_path / 's.bin'}") == b"\x00\xff"
    with pytest.raises(BadArgument, match="write hex:"):
        parse_struct("00ff")
    with pytest.raises(NotFoundError, match="structure file"):
        parse_struct(f"@{tmp_path / 'missing'}")


def test_structure_outputs_print_as_hex_and_text():
    data = b"QEMU NVMe Ctrl" + bytes([0, 0x7F, 0xFF]) + b"HWKITLAB0001"
    assert hex_dump(data) == [
        "  00000000: 5145 4d55 204e 564d 6520 4374 726c 007f  QEMU NVMe Ctrl..",
        "  00000010: ff48 574b 4954 4c41 4230 3030 31         .HWKITLAB0001",
    ]
    assert hex_dump(b"") == []


@pytest.mark.parametrize("argv", [["ioreg"], ["call", "SampleDriver", "add", "1", "2"]])
def test_no_daemon_is_a_clear_error(tmp_path, capsys, argv):
    socket = str(tmp_path / "absent.sock")
    assert main([*argv[:1], "--socket", socket, *argv[1:]]) == 1
    err = capsys.readouterr().err
    assert f"cannot connect to hwkit-daemon at {socket}" in err
    assert "HWKIT_SOCKET" in err
