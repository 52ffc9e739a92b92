"""Work loops and event sources: interrupts, fds, timers and the command gate."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import threading
import time

import pytest

from hwkit.errors import BadArgument, BusyResourceError, ClosedResourceError
from hwkit.workloop import (
    CommandGate,
    FdEventSource,
    FilterInterruptEventSource,
    InterruptEventSource,
    TimerEventSource,
    WorkLoop,
)


@pytest.fixture
def loop():
    with WorkLoop("test") as work_loop:
        yield work_loop


@pytest.fixture
def eventfd():
    fd = os.eventfd(0, os.EFD_NONBLOCK)
    yield fd
    os.close(fd)


def wait_for(predicate, timeout=2.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.002)


def enabled_interrupt(loop: WorkLoop, eventfd: int, action) -> InterruptEventSource:
    """An interrupt source on `eventfd`, added to the loop and enabled."""
    source = InterruptEventSource(None, action, eventfd)
    loop.add_event_source(source)
    source.enable()
    return source


def settle(loop: WorkLoop, seconds=0.03):
    """Let the loop run what is ready, then return."""
    time.sleep(seconds)
    loop.run_sync(lambda: None)


# ---- the loop -------------------------------------------------------------------------
def test_run_sync_runs_on_the_loop_thread_and_raises(loop):
    assert loop.run_sync(threading.get_ident) != threading.get_ident()
    assert loop.run_sync(lambda a, b: a + b, 2, 3) == 5
    with pytest.raises(ZeroDivisionError):
        loop.run_sync(lambda: 1 / 0)

    async def coro(x):
        await asyncio.sleep(0)
        return x * 2

    assert loop.run_sync(coro, 21) == 42
    assert loop.submit(coro, 1).result(timeout=1) == 2


def test_async_function_on_the_loop_thread_is_refused(loop):
    async def coro():
        return 1

    with pytest.raises(BadArgument, match="is async"):
        loop.run_sync(lambda: loop.run_sync(coro))


def test_closed_loop_refuses_work_and_fails_waiters():
    work_loop = WorkLoop("closing")

    async def forever():
        await asyncio.Event().wait()

    pending = work_loop.submit(forever)
    work_loop.run_sync(lambda: None)
    work_loop.close()
    with pytest.raises(ClosedResourceError, match="closed"):
        pending.result(timeout=1)
    with pytest.raises(ClosedResourceError, match="closed"):
        work_loop.submit(lambda: None)
    with pytest.raises(ClosedResourceError):
        work_loop.add_event_source(TimerEventSource(None, lambda s: None))
    work_loop.close()  # idempotent


def test_current_wraps_the_running_loop():
    async def main():
        work_loop = WorkLoop.current("here")
        assert work_loop.in_loop_thread()
        fired = asyncio.Event()
        timer = TimerEventSource(None, lambda source: fired.set())
        work_loop.add_event_source(timer)
        timer.set_timeout_ms(1)
        await asyncio.wait_for(fired.wait(), 1)
        work_loop.close()

    asyncio.run(main())
    with pytest.raises(BadArgument, match="inside a running loop"):
        WorkLoop.current()


def test_a_source_belongs_to_one_loop(loop):
    timer = TimerEventSource(None, lambda s: None)
    loop.add_event_source(timer)
    with WorkLoop("other") as other, pytest.raises(BusyResourceError):
        other.add_event_source(timer)


# ---- interrupts ---------------------------------------------------------------------------
def test_interrupt_source_is_disabled_until_enabled(loop, eventfd):
    counts = []
    unmasks = []
    source = InterruptEventSource(
        "owner", lambda s, n: counts.append(n), eventfd, unmask=lambda: unmasks.append(1)
    )
    loop.add_event_source(source)
    assert not source.enabled
    os.eventfd_write(eventfd, 1)
    os.eventfd_write(eventfd, 1)
    settle(loop)
    assert counts == []
    source.enable()
    wait_for(lambda: counts == [2])
    assert unmasks == [1]
    os.eventfd_write(eventfd, 5)
    wait_for(lambda: counts == [2, 5])
    assert loop.statistics()["interrupts"] == 2


def test_disable_stops_delivery(loop, eventfd):
    counts = []
    source = InterruptEventSource(None, lambda s, n: counts.append(n), eventfd)
    loop.add_event_source(source)
    source.enable()
    source.disable()
    os.eventfd_write(eventfd, 1)
    settle(loop)
    assert counts == []
    source.enable()
    wait_for(lambda: counts == [1])
    loop.remove_event_source(source)
    os.eventfd_write(eventfd, 1)
    settle(loop)
    assert counts == [1]


def test_interrupt_stays_masked_while_an_async_action_runs(loop, eventfd):
    release = asyncio.Event()
    calls = []

    async def action(source, count):
        calls.append(count)
        if len(calls) == 1:
            await release.wait()

    enabled_interrupt(loop, eventfd, action)
    os.eventfd_write(eventfd, 1)
    wait_for(lambda: calls == [1])
    os.eventfd_write(eventfd, 3)
    settle(loop)
    assert calls == [1], "a second action started while the first was running"
    loop.run_sync(release.set)
    wait_for(lambda: calls == [1, 3])


def test_interrupt_stays_watched_through_a_sync_action(loop, eventfd):
    """The eventfd is read before the action, so the watch stays (no epoll_ctl per IRQ).

    An interrupt raised inside the action is delivered once, after it returns.
    """
    calls = []
    source = None

    def action(src, count):
        calls.append(count)
        if len(calls) == 1:
            assert src._watching, "the watch was dropped for a synchronous action"
            os.eventfd_write(eventfd, 4)

    source = enabled_interrupt(loop, eventfd, action)
    registrations = []
    real_add = loop.loop.add_reader
    loop.loop.add_reader = lambda fd, cb, *a: (registrations.append(fd), real_add(fd, cb, *a))
    try:
        os.eventfd_write(eventfd, 1)
        wait_for(lambda: calls == [1, 4])
        os.eventfd_write(eventfd, 2)
        wait_for(lambda: calls == [1, 4, 2])
    finally:
        loop.loop.add_reader = real_add
    assert registrations == [], "the eventfd was re-registered after an action"
    assert source._watching


def test_failing_action_does_not_kill_the_source(loop, eventfd):
    calls = []

    def action(source, count):
        calls.append(count)
        raise RuntimeError("driver bug")

    enabled_interrupt(loop, eventfd, action)
    os.eventfd_write(eventfd, 1)
    wait_for(lambda: calls == [1])
    os.eventfd_write(eventfd, 1)
    wait_for(lambda: calls == [1, 1])


def test_filter_decides_and_unmasks_when_it_declines(loop, eventfd):
    actions, unmasks, mine = [], [], [False]
    source = FilterInterruptEventSource(
        None,
        lambda s, n: actions.append(n),
        eventfd,
        lambda s, n: mine[0],
        unmask=lambda: unmasks.append(1),
    )
    loop.add_event_source(source)
    source.enable()
    os.eventfd_write(eventfd, 1)
    wait_for(lambda: unmasks == [1])
    assert actions == []
    mine[0] = True
    os.eventfd_write(eventfd, 1)
    wait_for(lambda: actions == [1])
    assert unmasks == [1, 1]


def test_fd_source_for_sockets(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    got = []
    source = FdEventSource(None, lambda s: got.append(a.recv(100)), a.fileno())
    loop.add_event_source(source)
    b.send(b"hello")
    wait_for(lambda: got == [b"hello"])
    writable = []
    out = FdEventSource(
        None, lambda s: (writable.append(1), s.disable()), b.fileno(), writable=True
    )
    loop.add_event_source(out)
    wait_for(lambda: writable == [1])
    a.close()
    b.close()
    with pytest.raises(BadArgument, match="not a file descriptor"):
        FdEventSource(None, lambda s: None, -1)


# ---- timers ----------------------------------------------------------------------------------
def test_timer_is_one_shot_and_rearmable(loop):
    fired = []
    timer = TimerEventSource("me", lambda s: fired.append(time.monotonic()))
    loop.add_event_source(timer)
    start = time.monotonic()
    timer.set_timeout_ms(20)
    assert timer.pending
    wait_for(lambda: len(fired) == 1)
    assert fired[0] - start >= 0.019
    settle(loop, 0.05)
    assert len(fired) == 1 and not timer.pending
    timer.set_timeout_us(1000)
    wait_for(lambda: len(fired) == 2)


def test_new_timeout_replaces_the_pending_one(loop):
    fired = []
    timer = TimerEventSource(None, lambda s: fired.append(1))
    loop.add_event_source(timer)
    timer.set_timeout(10)
    timer.set_timeout_ms(5)
    wait_for(lambda: fired == [1])
    settle(loop, 0.05)
    assert fired == [1]


def test_wake_at_time_uses_an_absolute_deadline(loop):
    fired = []
    timer = TimerEventSource(None, lambda s: fired.append(time.monotonic()))
    loop.add_event_source(timer)
    deadline = time.monotonic() + 0.03
    timer.wake_at_time(deadline)
    wait_for(lambda: fired)
    assert fired[0] >= deadline


def test_cancel_guarantees_the_action_will_not_run(loop):
    """From another thread: after cancel returns, the action has run (False) or never will."""
    ran = []
    timer = TimerEventSource(None, lambda s: ran.append(s.owner))
    loop.add_event_source(timer)
    rng = random.Random(7)
    outcomes = []
    for i in range(200):
        timer.owner = i
        timer.set_timeout_us(rng.choice([0, 50, 200]))
        time.sleep(rng.choice([0, 0, 0.0001]))
        cancelled = timer.cancel_timeout()
        outcomes.append((i, cancelled, i in ran))
    settle(loop, 0.02)
    for i, cancelled, had_run in outcomes:
        assert had_run != cancelled, f"arming {i}: cancelled={cancelled}, ran={had_run}"
        assert (i in ran) == had_run, f"arming {i} ran after cancel_timeout returned"
    assert not timer.cancel_timeout()


def test_timer_errors(loop):
    timer = TimerEventSource(None, lambda s: None)
    with pytest.raises(BadArgument, match="must be added to a work loop"):
        timer.set_timeout(1)
    assert timer.cancel_timeout() is False
    loop.add_event_source(timer)
    with pytest.raises(BadArgument, match="negative"):
        timer.set_timeout(-1)


def test_disabled_timer_does_not_fire(loop):
    fired = []
    timer = TimerEventSource(None, lambda s: fired.append(1))
    loop.add_event_source(timer)
    timer.set_timeout_ms(5)
    timer.disable()
    settle(loop, 0.03)
    assert fired == []


# ---- command gate ------------------------------------------------------------------------------
def test_gate_serialises_calls_from_other_threads(loop):
    gate = CommandGate("driver")
    loop.add_event_source(gate)
    state = {"n": 0, "threads": set()}

    def bump():
        value = state["n"]
        time.sleep(0)  # would lose updates if two threads ran this at once
        state["n"] = value + 1
        state["threads"].add(threading.get_ident())

    def worker():
        for _ in range(100):
            gate.run_action(bump)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state["n"] == 400
    assert state["threads"] == {loop.run_sync(threading.get_ident)}
    assert loop.statistics()["gate_calls"] == 400


def test_gate_returns_results_raises_and_runs_async_actions(loop):
    gate = CommandGate(None, action=lambda x: x + 1)
    loop.add_event_source(gate)
    assert gate.run_action(None, 1) == 2
    with pytest.raises(KeyError):
        gate.run_action(lambda: {}["missing"])

    async def slow(x):
        await asyncio.sleep(0.001)
        return x

    assert gate.run_action(slow, "done") == "done"
    assert asyncio.run(gate.run_action_async(slow, 5)) == 5


def test_gate_is_recursive_on_the_loop_thread(loop):
    gate = CommandGate(None)
    loop.add_event_source(gate)
    assert gate.run_action(lambda: gate.run_action(lambda: "inner")) == "inner"


def test_disabled_gate_holds_actions_until_enabled(loop):
    gate = CommandGate(None)
    loop.add_event_source(gate)
    gate.disable()
    with pytest.raises(BusyResourceError, match="disabled"):
        gate.attempt_action(lambda: 1)
    results = []
    caller = threading.Thread(target=lambda: results.append(gate.run_action(lambda: "ran")))
    caller.start()
    time.sleep(0.03)
    assert results == []
    gate.enable()
    caller.join(1)
    assert results == ["ran"]


def test_removed_gate_fails_held_actions(loop):
    gate = CommandGate(None)
    loop.add_event_source(gate)
    gate.disable()
    errors = []

    def call():
        try:
            gate.run_action(lambda: 1)
        except ClosedResourceError as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.02)
    loop.remove_event_source(gate)
    caller.join(1)
    assert len(errors) == 1


def test_command_sleep_and_wakeup(loop):
    gate = CommandGate(None)
    loop.add_event_source(gate)

    async def sleeper(event, timeout):
        return await gate.command_sleep(event, timeout)

    woken = loop.submit(sleeper, "ready", 2)
    time.sleep(0.02)
    gate.command_wakeup("ready")
    assert woken.result(1) is True
    assert loop.submit(sleeper, "never", 0.01).result(1) is False
    first, second = loop.submit(sleeper, "one", 0.2), loop.submit(sleeper, "one", 0.2)
    time.sleep(0.02)
    gate.command_wakeup("one", one_thread=True)
    assert first.result(1) is True
    assert second.result(1) is False
    with pytest.raises(BadArgument, match="must be awaited on the gate's work loop"):
        asyncio.run(gate.command_sleep("x"))


def test_gate_without_action_or_loop():
    gate = CommandGate(None)
    with pytest.raises(BadArgument, match="added to a work loop"):
        gate.run_action(lambda: 1)
    with WorkLoop() as work_loop:
        work_loop.add_event_source(gate)
        with pytest.raises(BadArgument, match="no action"):
            gate.run_action()


def test_a_loop_cannot_close_itself(loop):
    with pytest.raises(BadArgument, match="cannot close itself"):
        loop.run_sync(loop.close)
