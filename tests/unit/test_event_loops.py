"""The event loop under work loops: uvloop where installed, asyncio's otherwise, one contract.

(hwkit.workloop's loop factory; the rest of the work loop is tested in test_workloop.py.)
"""

from __future__ import annotations

import asyncio
import time

import pytest

from hwkit import workloop
from hwkit.workloop import TimerEventSource, WorkLoop

uvloop = pytest.importorskip("uvloop")


@pytest.fixture(params=["uvloop", "asyncio"])
def loop_kind(request, monkeypatch) -> str:
    monkeypatch.setenv(workloop.LOOP_ENV, request.param)
    return request.param


def test_the_environment_picks_the_loop(loop_kind):
    loop = workloop.new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop) == (loop_kind == "uvloop")
        assert loop.time() == pytest.approx(time.monotonic(), abs=0.01)
    finally:
        loop.close()


def test_work_loop_threads_get_the_chosen_loop(loop_kind):
    with WorkLoop("kind") as wl:
        assert isinstance(wl.loop, uvloop.Loop) == (loop_kind == "uvloop")


def test_timers_never_fire_before_their_deadline(loop_kind):
    """Sub-millisecond delays, and timers armed after the loop's clock went stale.

    libuv counts whole milliseconds from a clock read at the start of an iteration;
    uvloop's own loop fired these up to 0.4 ms early.
    """
    lateness: list[float] = []

    async def arm_late(delay: float) -> None:
        busy_until = time.monotonic() + 0.003  # the iteration's cached clock goes stale
        while time.monotonic() < busy_until:
            pass
        deadline = time.monotonic() + delay
        fired = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_at(
            asyncio.get_running_loop().time() + delay, fired.set_result, None
        )
        await fired
        lateness.append(time.monotonic() - deadline)

    async def main() -> None:
        for delay in (0.0, 0.0001, 0.0004, 0.0009, 0.0015, 0.004) * 5:
            await arm_late(delay)
            await asyncio.sleep(0)

    workloop.run(main())
    assert min(lateness) >= 0, f"a timer fired {-min(lateness) * 1e6:.0f} us early"
    assert max(lateness) < 0.5  # and none was lost


def test_timer_source_on_the_chosen_loop(loop_kind):
    with WorkLoop("timer") as wl:
        fired: list[float] = []
        timer = TimerEventSource(None, lambda s: fired.append(time.monotonic()))
        wl.add_event_source(timer)
        for us in (100, 700, 1300):
            deadline = time.monotonic() + us / 1e6
            timer.wake_at_time(deadline)
            end = time.monotonic() + 2
            while len(fired) < 1 and time.monotonic() < end:
                time.sleep(0.001)
            assert fired and fired.pop() >= deadline
