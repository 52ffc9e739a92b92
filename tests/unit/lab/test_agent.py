import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwkit.lab import agent


def test_messages_round_trip_through_a_pipe() -> None:
    r, w = os.pipe()
    try:
        messages = [
            {"op": "run", "id": 1, "argv": ["echo", "é"], "env": {"A": "b"}},
            {"op": "out", "id": 1, "fd": 1, "data": agent.pack_bytes(bytes(range(256)))},
            {"op": "exit", "id": 1, "status": -9},
        ]
        for m in messages:
            agent.write_all(w, agent.encode(m))
        os.close(w)
        reader = agent.LineReader(r)
        got = []
        while (batch := reader.read()) is not None:
            got += batch
        assert got == messages
        assert agent.unpack_bytes(got[1]["data"]) == bytes(range(256))
    finally:
        os.close(r)


def test_a_message_split_anywhere_reassembles() -> None:
    line = agent.encode({"op": "log", "text": "x" * 100})
    for cut in range(len(line)):
        reader = agent.LineReader(-1)
        assert reader.feed(line[:cut]) == []
        assert reader.feed(line[cut:]) == [{"op": "log", "text": "x" * 100}]


@pytest.mark.parametrize(
    "line", [b"not json", b"[1, 2]", b'{"id": 1}', b'{"op": 3}', b"\xff\xfe", b'"op"']
)
def test_malformed_lines_are_protocol_errors_naming_the_line(line: bytes) -> None:
    with pytest.raises(agent.ProtocolError, match="agent channel"):
        agent.LineReader(-1).feed(line + b"\n")


def test_an_endless_line_is_refused() -> None:
    reader = agent.LineReader(-1)
    with pytest.raises(agent.ProtocolError, match="longer than"):
        reader.feed(b"x" * (agent.MAX_LINE + 1))


@given(st.binary(max_size=300))
def test_any_bytes_give_messages_or_protocol_errors(data: bytes) -> None:
    try:
        for message in agent.LineReader(-1).feed(data + b"\n"):
            assert isinstance(message["op"], str)
    except agent.ProtocolError:
        pass


def test_bad_base64_is_refused() -> None:
    with pytest.raises(ValueError):
        agent.unpack_bytes("not base64!")
