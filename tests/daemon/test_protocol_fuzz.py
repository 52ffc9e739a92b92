"""Property-based: malformed, truncated, oversized and wrong-count frames to a real daemon.

Every frame must get an ERROR reply or a clean close, never a hang, and the daemon and
the driver must keep serving a well-behaved client throughout. Descriptors sent along
with garbage must not leak.
"""

from __future__ import annotations

import os
import plistlib
import socket
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwkit import VARIABLE, client
from hwkit.ipc import (
    CAPACITY,
    ERROR_TYPES,
    HEADER,
    MAX_FRAME,
    PROTOCOL_VERSION,
    Kind,
    recv_frame,
    send_frame,
)  # fmt: skip

from .conftest import SAMPLE_PLIST, wait_for

SETTINGS = settings(max_examples=120, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))  # fmt: skip
REPLY_TIMEOUT = 5.0

u8, u32, u64 = (st.integers(0, 2**n - 1) for n in (8, 32, 64))
garbage = st.binary(max_size=200)
headers = st.builds(lambda kind, flags, count, reserved, code, rid, body:
                    HEADER.pack(kind, flags, count, reserved, code, rid) + body,
                    u8, u8, u8, u8, u32, u64, garbage)  # fmt: skip
truncated = st.binary(min_size=0, max_size=HEADER.size - 1)
oversized = st.integers(MAX_FRAME + 1, MAX_FRAME + 4096).map(lambda n: os.urandom(n))
plist_values = st.recursive(
    st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20) | st.binary(max_size=20)
    | st.booleans(),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)  # fmt: skip
OPS = ["find", "lookup", "open", "set_properties", "add_matching", "add_interest", "remove",
       "get_properties", "hello", "nonsense"]  # fmt: skip
bad_requests = st.builds(
    lambda op, args, rid: HEADER.pack(Kind.REQUEST, 0, 0, 0, 0, rid)
    + plistlib.dumps({"op": op, **args}, fmt=plistlib.FMT_BINARY),
    st.sampled_from(OPS),
    st.fixed_dictionaries({}, optional={
        "id": plist_values, "path": plist_values, "matching": plist_values, "type": plist_values,
        "properties": plist_values, "version": plist_values, "notification": plist_values}),
    u64,
)  # fmt: skip
wrong_kinds = st.builds(lambda body: HEADER.pack(Kind.CALL, 0, 0, 0, 0, 1) + body, garbage)
daemon_frames = st.one_of(headers, truncated, oversized, bad_requests, wrong_kinds, garbage)


def _answer(sock: socket.socket, detail: list[str] | None = None) -> str:
    """'error', 'closed', or 'reply' for what came back; fails on silence.

    An error's class name and message are appended to `detail`.
    """
    sock.settimeout(REPLY_TIMEOUT)
    while True:
        frame = recv_frame(sock)
        if frame is None:
            return "closed"
        frame.close_fds()
        if frame.kind == Kind.ERROR:
            if detail is not None:
                body = frame.plist()
                detail.append(f"{ERROR_TYPES[frame.code].__name__}: {body['message']}")
            return "error"
        if frame.kind in (Kind.REPLY, Kind.RESULT):
            return "reply"
        # NOTIFY and the like: keep reading until the answer


def _hello(sock: socket.socket) -> None:
    send_frame(sock, HEADER.pack(Kind.REQUEST, 0, 0, 0, 0, 1)
               + plistlib.dumps({"op": "hello", "version": PROTOCOL_VERSION},
                                fmt=plistlib.FMT_BINARY))  # fmt: skip
    assert _answer(sock) == "reply"


def _fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_malformed_frames_get_errors_and_the_daemon_keeps_serving(start_daemon):
    daemon = start_daemon()
    daemon.add_personality(SAMPLE_PLIST)
    hub = client.connect(daemon.socket)
    [service] = wait_for(lambda: hub.find({"IOProviderClass": "SampleDriver"}), 15, "driver")
    good = hub.open(service)
    host_pid = service.properties["HWHostPID"]
    fds_before = _fd_count(daemon.proc.pid), _fd_count(host_pid)

    @SETTINGS
    @given(data=daemon_frames, greet=st.booleans(), with_fd=st.booleans())
    def daemon_side(data: bytes, greet: bool, with_fd: bool) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
            sock.connect(daemon.socket)
            if greet:
                _hello(sock)
            memfd = os.memfd_create("fuzz")
            try:
                send_frame(sock, data, [memfd] if with_fd else [])
            finally:
                os.close(memfd)
            answer = _answer(sock)
            malformed = not data.startswith(HEADER.pack(Kind.REQUEST, 0, 0, 0, 0, 0)[:4])
            assert answer in (("error", "closed") if malformed or not greet else
                              ("error", "closed", "reply"))  # fmt: skip
        assert good.call("add", 1, 2).scalars == (3,)

    daemon_side()

    methods = {m.selector: m for m in good.methods.values()}

    @st.composite
    def calls(draw) -> tuple[int, list[int], bytes, int, int, int]:
        """A call near a declaration with one field wrong (or none), or one at random."""
        if draw(st.booleans()):
            return (draw(st.integers(0, 8) | u32), draw(st.lists(u64, max_size=20)),
                    draw(st.binary(max_size=64)), draw(st.integers(0, 20)),
                    draw(st.integers(0, 64) | u32), draw(st.integers(0, 255)))  # fmt: skip
        m = draw(st.sampled_from(sorted(methods.values(), key=lambda m: m.selector)))
        size_in = draw(st.integers(0, 64)) if m.struct_in == VARIABLE else m.struct_in
        size_out = draw(st.integers(0, 64)) if m.struct_out == VARIABLE else m.struct_out
        fields = [m.scalar_in, size_in, m.scalar_out, size_out]
        wrong = draw(st.sampled_from([None, 0, 1, 2, 3]))
        variable = {1: m.struct_in == VARIABLE, 3: m.struct_out == VARIABLE}
        if wrong is not None and not variable.get(wrong, False):
            limit = 16 if wrong in (0, 2) else 64
            fields[wrong] = draw(st.integers(0, limit).filter(lambda v: v != fields[wrong]))
        scalars = draw(st.lists(u64, min_size=fields[0], max_size=fields[0]))
        return m.selector, scalars, bytes(fields[1]), fields[2], fields[3], fields[0]

    @SETTINGS
    @given(call=calls())
    def user_client_side(call) -> None:
        selector, scalars, struct_in, scalar_out, struct_out, count = call
        conn = hub.open(service)
        try:
            sock = conn._io.sock
            listed = scalars[:16]
            frame = (HEADER.pack(Kind.CALL, 0, min(count, len(listed)), 0, selector, 99)
                     + CAPACITY.pack(scalar_out, struct_out)
                     + struct.pack(f"<{len(listed)}Q", *listed) + struct_in)  # fmt: skip
            send_frame(sock, frame)
            detail: list[str] = []
            answer = _answer(sock, detail)
            method = methods.get(selector)
            sent = min(count, len(listed))
            body = len(struct_in) + 8 * (len(listed) - sent)
            exact = method is not None and (
                sent == method.scalar_in and scalar_out == method.scalar_out
                and (method.struct_in == VARIABLE or body == method.struct_in)
                and (method.struct_out == VARIABLE or struct_out == method.struct_out)
            )  # fmt: skip
            expected = "reply" if exact and not method.is_async else "error"
            assert answer == expected, (selector, sent, body, scalar_out, struct_out, detail)
            if method is None:
                assert detail[0].startswith("UnsupportedError: SampleUserClient has no")
            elif not exact:
                # refused by the dispatch check, before the driver's method ran
                assert detail[0].startswith(f"BadArgument: SampleUserClient.{method.name} "
                                            f"(selector {selector}) expects"), detail  # fmt: skip
            elif method.is_async:
                assert "is async" in detail[0]
        finally:
            conn.close()
        assert good.call("add", 2, 3).scalars == (5,)

    user_client_side()
    assert daemon.proc.poll() is None
    fds_after = _fd_count(daemon.proc.pid), _fd_count(host_pid)
    assert fds_after[0] <= fds_before[0] + 3 and fds_after[1] <= fds_before[1] + 3, (
        fds_before, fds_after)  # fmt: skip
    good.close()
    hub.close()
