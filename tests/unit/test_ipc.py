"""The wire protocol: frames, large bodies through a memfd, descriptors, credentials, errors."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwkit.errors import BadArgument, DeviceGoneError, HwkitError, PermissionDenied
from hwkit.ipc import (
    FD_BODY,
    MAX_FDS,
    MAX_FRAME,
    STRUCT_INLINE_MAX,
    Credentials,
    Kind,
    LeanCall,
    ProtocolError,
    decode,
    encode,
    encode_plist,
    error_body,
    raise_error,
    recv_frame,
    send_encoded,
    send_frame,
    seqpacket_pair,
)

u64 = st.integers(0, 2**64 - 1)


@given(selector=st.integers(0, 2**32 - 1), scalars=st.lists(u64, max_size=16),
       outputs=st.lists(u64, max_size=16), request_id=u64)  # fmt: skip
def test_lean_call_bytes_are_the_general_frames(selector, scalars, outputs, request_id):
    """Both ends recognise a plain scalar call by LeanCall: it must be exactly encode()'s."""
    lean = LeanCall(selector, len(scalars), len(outputs))
    call, _ = encode(Kind.CALL, code=selector, request_id=request_id, scalars=scalars,
                     capacity=(len(outputs), 0))  # fmt: skip
    assert call == lean.call.pack(Kind.CALL, 0, len(scalars), 0, selector, request_id,
                                  len(outputs), 0, *scalars)  # fmt: skip
    assert len(call) == lean.call_size and call[:8] == lean.prefix
    assert call[16:24] == lean.capacities
    assert lean.unpack_call(call) == (request_id, *scalars)
    result, _ = encode(Kind.RESULT, request_id=request_id, scalars=outputs)
    assert len(result) == lean.result_size and result[:8] == lean.result_prefix
    assert lean.unpack_result(result) == (request_id, *outputs)
    frame = decode(result, [])
    assert (frame.kind, frame.request_id, frame.scalars) == (Kind.RESULT, request_id, (*outputs,))


@given(
    kind=st.sampled_from([Kind.CALL, Kind.RESULT, Kind.ASYNC_RESULT]),
    code=st.integers(0, 2**32 - 1), request_id=u64, scalars=st.lists(u64, max_size=16),
    body=st.binary(max_size=STRUCT_INLINE_MAX), capacity=st.tuples(st.integers(0, 16), u64.map(
        lambda v: v & 0xFFFFFFFF)),
)  # fmt: skip
def test_binary_frames_round_trip(kind, code, request_id, scalars, body, capacity):
    cap = capacity if kind == Kind.CALL else None
    data, fds = encode(kind, code=code, request_id=request_id, scalars=scalars, body=body,
                       capacity=cap)  # fmt: skip
    assert fds == []
    frame = decode(data, [])
    assert (frame.kind, frame.code, frame.request_id) == (kind, code, request_id)
    assert frame.scalars == tuple(scalars) and bytes(frame.body) == body
    assert frame.capacity == (capacity if kind == Kind.CALL else (0, 0))


@pytest.mark.parametrize("bad", [-1, 2**64, 1.0, True, "1"])
def test_scalars_must_be_u64_integers(bad):
    with pytest.raises(BadArgument, match="is not an integer in"):
        encode(Kind.RESULT, scalars=[bad])
    with pytest.raises(BadArgument, match="at most 16"):
        encode(Kind.RESULT, scalars=[0] * 17)


def test_a_large_structure_travels_as_a_memfd_and_arrives_intact():
    a, b = seqpacket_pair()
    body = os.urandom(STRUCT_INLINE_MAX + 1)
    encoded = encode(Kind.CALL, body=body, capacity=(0, 0))
    assert len(encoded[1]) == 1
    send_encoded(a, encoded)
    frame = recv_frame(b)
    assert frame.flags & FD_BODY and bytes(frame.body) == body and frame.fds == []


def test_descriptors_pass_and_too_many_are_refused():
    a, b = seqpacket_pair()
    r, w = os.pipe()
    send_frame(a, encode_plist(Kind.REPLY, {})[0], [w])
    frame = recv_frame(b)
    os.write(frame.take_fd(), b"x")
    assert os.read(r, 1) == b"x"
    send_frame(a, encode_plist(Kind.REPLY, {})[0], [w] * (MAX_FDS + 4))
    with pytest.raises(ProtocolError, match=f"more than {MAX_FDS} descriptors"):
        recv_frame(b)


def test_oversized_short_and_unknown_frames_are_protocol_errors():
    a, b = seqpacket_pair()
    a.send(bytes(MAX_FRAME + 1))
    with pytest.raises(ProtocolError, match="larger than"):
        recv_frame(b)
    with pytest.raises(ProtocolError, match="shorter than the header"):
        decode(b"\x01\x00", [])
    with pytest.raises(ProtocolError, match="unknown frame kind 99"):
        decode(bytes([99]) + bytes(15), [])
    with pytest.raises(ProtocolError, match="claims 3 scalars"):
        decode(bytes([Kind.RESULT, 0, 3]) + bytes(13) + bytes(8), [])
    a.close()
    assert recv_frame(b) is None


def test_errors_keep_their_class_across_the_wire():
    for exc in (PermissionDenied("no"), DeviceGoneError("gone"), KeyError("k")):
        code, body = error_body(exc)
        frame = decode(encode_plist(Kind.ERROR, body, code=code)[0], [])
        expected = type(exc) if isinstance(exc, HwkitError) else HwkitError
        with pytest.raises(expected) as caught:
            raise_error(frame)
        assert str(exc) in str(caught.value)


def test_credentials_come_from_the_kernel():
    a, b = seqpacket_pair()
    creds = Credentials.of(a)
    assert (creds.pid, creds.uid, creds.gid) == (os.getpid(), os.getuid(), os.getgid())
    assert Credentials.from_plist(creds.to_plist()) == creds
    a.close()
    b.close()
