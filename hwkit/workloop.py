"""Work loops and event sources: one asyncio loop per driver, fed by interrupts, timers, gates.

I/O Kit runs each driver's event sources serially on one work-loop thread, so driver
code needs no locks between its interrupt handler, its timers and the calls that come
in from other threads. hwkit's :class:`WorkLoop` is an asyncio event loop on a thread
of its own (or the loop already running, :meth:`WorkLoop.current`), and the sources
are I/O Kit's:

- :class:`InterruptEventSource`: an eventfd (a VFIO interrupt) watched for
  readability. It is **disabled until** :meth:`~EventSource.enable` and the fd is not
  watched while the action runs (I/O Kit keeps the interrupt masked during the
  action); an optional ``unmask`` callable runs after each action (VFIO INTx is
  auto-masked and needs ``VFIO_IRQ_SET_ACTION_UNMASK``).
  :class:`FilterInterruptEventSource` first asks a filter; there is no primary
  interrupt context on Linux, so the filter runs on the loop too.
- :class:`FdEventSource`: any other readable or writable fd (libusb's poll fds,
  sockets); the action must consume what made the fd ready.
- :class:`TimerEventSource`: one-shot timeouts, relative or absolute
  (``wake_at_time``, on the ``time.monotonic`` clock, so periodic re-arming does not
  drift). :meth:`~TimerEventSource.cancel_timeout` guarantees the action will not run
  after it returns, from any thread.
- :class:`CommandGate`: calls from other threads, run serialised with everything else
  on the loop. Unlike I/O Kit's gate (which runs the action on the caller's thread
  under the loop's recursive lock), the action runs *on the loop thread*: an
  ``RLock`` cannot fence the steps of a coroutine, and moving the call gives the same
  guarantee. Called on the loop thread, the action runs at once (the lock is
  recursive in I/O Kit too).

Actions may be plain functions or ``async def``; an async action's source stays
masked until the coroutine finishes.

Threading: the methods of a loop and its sources may be called from any thread; they
move the work onto the loop and, where the I/O Kit call is synchronous, wait for it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import logging
import math
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from hwkit.errors import BadArgument, BusyResourceError, ClosedResourceError

logger = logging.getLogger("hwkit.workloop")


#: Set to ``asyncio`` to use the standard library's loop even where uvloop is installed.
LOOP_ENV = "HWKIT_EVENT_LOOP"


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop for a work loop: uvloop's when it is installed, else asyncio's.

    Why: a user-client call costs one loop iteration in the driver host, about 5.7 us
    of CPU with asyncio's pure-Python selector loop and 1.6 us with uvloop's (a reader
    callback on this project's 2-core test machine), and that is most of what a
    scalar call adds over a bare socket round trip. ``$HWKIT_EVENT_LOOP`` =
    ``asyncio`` picks the standard loop (to compare, or to rule uvloop out).

    Timers keep asyncio's contract on either loop: ``loop.time()`` is
    ``time.monotonic()`` and a callback never runs before its deadline (see
    :func:`_uvloop_class`; libuv's own timers may run up to a few ms early).
    """
    if os.environ.get(LOOP_ENV, "").lower() != "asyncio":
        try:
            loop_class = _uvloop_class()
        except ImportError:
            pass
        else:
            return loop_class()
    # Not asyncio.new_event_loop(): that asks the policy, which may be the caller.
    return asyncio.SelectorEventLoop()


@functools.cache
def _uvloop_class() -> type[asyncio.AbstractEventLoop]:
    """uvloop's loop with asyncio's timer contract.

    libuv counts timers in whole milliseconds from a clock cached at the start of each
    loop iteration (``CLOCK_MONOTONIC_COARSE`` where that is fine enough), and uvloop
    rounds a delay to the nearest millisecond: a timer armed late in an iteration, or
    with a sub-millisecond delay, fired up to 0.4 ms before its ``time.monotonic``
    deadline here. This loop tells time with ``time.monotonic()`` and arms libuv's
    timer for the delay plus the cached clock's lag, rounded up to a millisecond, so
    it runs at or after the deadline (up to ~1 ms later; asyncio's loop has no such
    granularity).

    Raises:
        ImportError: uvloop is not installed.
    """
    import uvloop

    uv_time = uvloop.Loop.time
    uv_call_later = uvloop.Loop.call_later

    class Loop(uvloop.Loop):  # type: ignore[misc, valid-type]
        def time(self) -> float:
            return time.monotonic()

        def call_at(self, when: float, callback: Any, *args: Any, context: Any = None) -> Any:
            return self.call_later(when - time.monotonic(), callback, *args, context=context)

        def call_later(self, delay: float, callback: Any, *args: Any, context: Any = None) -> Any:
            lag = time.monotonic() - uv_time(self)
            ms = math.ceil((max(delay, 0.0) + lag) * 1000)
            return uv_call_later(self, ms / 1000, callback, *args, context=context)

    return Loop


def run(main: Awaitable[Any]) -> Any:
    """Run a process's main coroutine on a :func:`new_event_loop` (``asyncio.run``'s twin).

    The daemon and the driver hosts start this way, so their work loops get uvloop
    where it is installed.
    """
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)  # type: ignore[arg-type]


async def call(fn: Callable[..., Any], *args: Any) -> Any:
    """Call `fn` and await the result if it is awaitable (driver methods may be either)."""
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


class WorkLoop:
    """An asyncio event loop that serialises a driver's event sources.

    ``WorkLoop()`` starts a loop on a new daemon thread; :meth:`current` wraps the loop
    the caller is running in. Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, name: str = "workloop", *, _loop: asyncio.AbstractEventLoop | None = None):
        self.name = name
        self._sources: list[EventSource] = []
        self._pending: set[concurrent.futures.Future[Any]] = set()
        self._closed = False
        self._stats = {"actions": 0, "interrupts": 0, "timeouts": 0, "gate_calls": 0}
        if _loop is not None:
            self._loop = _loop
            self._thread: threading.Thread | None = None
            self._thread_id = threading.get_ident()
            return
        self._loop = new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(ready,), name=f"hwkit-{name}", daemon=True
        )
        self._thread.start()
        ready.wait()

    @classmethod
    def current(cls, name: str = "workloop") -> WorkLoop:
        """Wrap the asyncio loop running in this thread (no thread of its own).

        Raises:
            BadArgument: no loop is running in this thread.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise BadArgument("WorkLoop.current() must be called inside a running loop") from None
        return cls(name, _loop=loop)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._thread_id = threading.get_ident()
        self._loop.call_soon(ready.set)
        self._loop.run_forever()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The asyncio loop (schedule coroutines on it with :meth:`submit`)."""
        return self._loop

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def in_loop_thread(self) -> bool:
        """True when called on the loop's own thread (I/O Kit's ``onThread``)."""
        return threading.get_ident() == self._thread_id

    def statistics(self) -> dict[str, int]:
        """Debug counters: actions run, interrupts, timeouts fired, gate calls."""
        return {**self._stats, "sources": len(self._sources)}

    def _count(self, what: str) -> None:
        self._stats[what] += 1

    # ---- running things on the loop ----------------------------------------------------
    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        """Run ``fn(*args)`` on the loop soon (awaiting it if async); return a Future.

        Raises:
            ClosedResourceError: the loop is closed.
        """
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def job() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args)
            except BaseException as exc:
                future.set_exception(exc)
                return
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                task.add_done_callback(lambda t: _copy_outcome(t, future))
            else:
                future.set_result(result)

        if self._closed:
            raise ClosedResourceError(f"work loop {self.name!r} is closed")
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        try:
            self._loop.call_soon_threadsafe(job)
        except RuntimeError:
            self._pending.discard(future)
            raise ClosedResourceError(f"work loop {self.name!r} is closed") from None
        return future

    def run_sync(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on the loop and wait for its result, from any thread.

        On the loop thread a plain function runs at once.

        Raises:
            BadArgument: `fn` is async and this is the loop thread (await it instead).
            ClosedResourceError: the loop closed before the call ran.
            Exception: whatever `fn` raised.
        """
        if self.in_loop_thread():
            if self._closed:
                raise ClosedResourceError(f"work loop {self.name!r} is closed")
            result = fn(*args)
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                raise BadArgument(
                    f"{getattr(fn, '__name__', fn)!r} is async: await it on the loop thread"
                )
            return result
        return self.submit(fn, *args).result()

    # ---- sources --------------------------------------------------------------------
    def add_event_source(self, source: EventSource) -> None:
        """Attach a source to this loop (I/O Kit's ``addEventSource``).

        Raises:
            BusyResourceError: the source already belongs to a loop.
            ClosedResourceError: the loop is closed.
        """
        if self._closed:
            raise ClosedResourceError(f"work loop {self.name!r} is closed")
        if source.work_loop is not None:
            raise BusyResourceError(f"{source!r} is already on work loop {source.work_loop.name!r}")
        source.work_loop = self
        self._sources.append(source)
        self.run_sync(source._attached)

    def remove_event_source(self, source: EventSource) -> None:
        """Detach a source; when this returns its action will not run again."""
        if source.work_loop is not self:
            return
        if not self._closed:
            self.run_sync(source._detached)
        self._sources.remove(source)
        source.work_loop = None

    def close(self) -> None:
        """Remove every source, stop the loop thread and fail calls still waiting.

        Idempotent.

        Raises:
            BadArgument: called on the loop's own thread (it would wait for itself).
        """
        if self._closed:
            return
        if self._thread is not None and self.in_loop_thread():
            raise BadArgument(f"work loop {self.name!r} cannot close itself from its own thread")
        for source in list(self._sources):
            self.remove_event_source(source)
        self._closed = True
        if self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
        for future in list(self._pending):
            if not future.done():
                future.set_exception(ClosedResourceError(f"work loop {self.name!r} closed"))

    def __enter__(self) -> WorkLoop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _copy_outcome(task: asyncio.Future[Any], future: concurrent.futures.Future[Any]) -> None:
    if future.done():
        return
    if task.cancelled():
        future.set_exception(ClosedResourceError("the call was cancelled"))
    elif task.exception() is not None:
        future.set_exception(task.exception())
    else:
        future.set_result(task.result())


class EventSource:
    """Base of every source: an owner, an action, an enabled flag and a loop.

    The action is called with the source (and the event's arguments); owner is
    whatever the driver wants to find there (usually the driver itself).
    """

    enabled_at_start = True
    # A source whose event is consumed before the action runs (an eventfd read resets
    # its counter) can stay watched while a synchronous action runs: the loop cannot
    # re-enter it, and leaving the watch in place saves two epoll_ctl calls per event.
    _watch_during_sync_action = False

    def __init__(self, owner: Any, action: Callable[..., Any] | None) -> None:
        self.owner = owner
        self.action = action
        self.work_loop: WorkLoop | None = None
        self._enabled = self.enabled_at_start
        self._running = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} owner={self.owner!r}>"

    @property
    def enabled(self) -> bool:
        """Whether the source delivers events."""
        return self._enabled

    def enable(self) -> None:
        """Start delivering events (from any thread)."""
        self._on_loop(self._set_enabled, True)

    def disable(self) -> None:
        """Stop delivering events; when this returns no new action will start."""
        self._on_loop(self._set_enabled, False)

    def _set_enabled(self, enabled: bool) -> None:
        self._enabled = enabled
        if self.work_loop is not None:
            self._update()

    def _on_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.work_loop is None:
            return fn(*args)
        return self.work_loop.run_sync(fn, *args)

    # Hooks run on the loop thread.
    def _attached(self) -> None:
        self._update()

    def _detached(self) -> None:
        self._enabled = False
        self._update()

    def _update(self) -> None:
        """Make the loop's watches agree with the enabled flag."""

    def _dispatch(self, *args: Any) -> None:
        """Run the action on the loop; the source is masked until it finishes."""
        assert self.work_loop is not None and self.action is not None
        self.work_loop._count("actions")
        self._running = True
        if not self._watch_during_sync_action:
            self._update()
        try:
            result = self.action(self, *args)
        except Exception:
            logger.exception("%r: action failed", self)
            self._finish()
            return
        if inspect.isawaitable(result):
            self._update()  # masked until the coroutine finishes
            task = asyncio.ensure_future(result)
            task.add_done_callback(self._async_done)
        else:
            self._finish()

    def _async_done(self, task: asyncio.Future[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("%r: async action failed", self, exc_info=task.exception())
        self._finish()

    def _finish(self) -> None:
        self._running = False
        self._after_action()
        if self.work_loop is not None:
            self._update()

    def _after_action(self) -> None:
        """Run after every action (interrupt sources unmask here)."""


class FdEventSource(EventSource):
    """Calls ``action(source)`` when a file descriptor is readable (or writable).

    The fd is not watched while the action runs, so a level-triggered fd is not
    reported again until the action has consumed what made it ready.
    """

    def __init__(
        self, owner: Any, action: Callable[..., Any], fd: int, *, writable: bool = False
    ) -> None:
        super().__init__(owner, action)
        if not isinstance(fd, int) or fd < 0:
            raise BadArgument(f"{fd!r} is not a file descriptor")
        self.fd = fd
        self.writable = writable
        self._watching = False

    def _update(self) -> None:
        assert self.work_loop is not None
        loop = self.work_loop.loop
        want = self._enabled and not self._running
        if want and not self._watching:
            add = loop.add_writer if self.writable else loop.add_reader
            add(self.fd, self._ready)
        elif not want and self._watching:
            remove = loop.remove_writer if self.writable else loop.remove_reader
            remove(self.fd)
        self._watching = want

    def _ready(self) -> None:
        if not self._enabled or self._running:
            return
        args = self._consume()
        if args is not None:
            self._dispatch(*args)

    def _consume(self) -> tuple[Any, ...] | None:
        """Read what the event carries; None means a spurious wake-up (no action)."""
        return ()


class InterruptEventSource(FdEventSource):
    """An interrupt delivered through an eventfd: ``action(source, count)``.

    `count` is how many interrupts the eventfd counted since the last action.
    **Disabled until** :meth:`enable`, as in I/O Kit. ``unmask`` (optional) runs after
    each action; pass the VFIO INTx unmask there.
    """

    enabled_at_start = False
    _watch_during_sync_action = True

    def __init__(
        self,
        owner: Any,
        action: Callable[..., Any],
        fd: int,
        *,
        unmask: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(owner, action, fd)
        self.unmask = unmask

    def _consume(self) -> tuple[Any, ...] | None:
        try:
            data = os.read(self.fd, 8)
        except BlockingIOError:
            return None
        if self.work_loop is not None:
            self.work_loop._count("interrupts")
        return (int.from_bytes(data, "little"),)

    def _after_action(self) -> None:
        if self.unmask is not None:
            try:
                self.unmask()
            except Exception:
                logger.exception("%r: unmask failed", self)


class FilterInterruptEventSource(InterruptEventSource):
    """An interrupt source whose ``filter(source, count)`` decides if the action runs.

    The filter runs on the loop thread (Linux has no primary interrupt context to run
    it in); it should only read a status register and return quickly.
    """

    def __init__(
        self,
        owner: Any,
        action: Callable[..., Any],
        fd: int,
        filter: Callable[[FilterInterruptEventSource, int], bool],
        *,
        unmask: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(owner, action, fd, unmask=unmask)
        self.filter = filter

    def _consume(self) -> tuple[Any, ...] | None:
        args = super()._consume()
        if args is None:
            return None
        if self.filter(self, *args):
            return args
        self._after_action()  # not ours: unmask and keep listening
        return None


class TimerEventSource(EventSource):
    """A one-shot timer: ``action(source)`` once per ``set_timeout``/``wake_at_time``.

    Setting a new timeout replaces the pending one. :meth:`cancel_timeout` guarantees
    that the action will not run after it returns, whichever thread calls it.
    """

    def __init__(self, owner: Any, action: Callable[..., Any]) -> None:
        super().__init__(owner, action)
        self._handle: asyncio.TimerHandle | None = None
        self._generation = 0

    def set_timeout(self, seconds: float) -> None:
        """Fire `seconds` from now (replacing any pending timeout).

        Raises:
            BadArgument: negative interval.
            ClosedResourceError: the source is on a closed loop.
        """
        if seconds < 0:
            raise BadArgument(f"timeout {seconds} s is negative")
        self.wake_at_time(time.monotonic() + seconds)

    def set_timeout_ms(self, ms: float) -> None:
        """Fire `ms` milliseconds from now."""
        self.set_timeout(ms / 1000)

    def set_timeout_us(self, us: float) -> None:
        """Fire `us` microseconds from now."""
        self.set_timeout(us / 1_000_000)

    def wake_at_time(self, deadline: float) -> None:
        """Fire at an absolute ``time.monotonic()`` deadline (no drift when re-armed).

        Raises:
            BadArgument: the source is not on a work loop.
        """
        if self.work_loop is None:
            raise BadArgument(f"{self!r} must be added to a work loop before it is armed")
        self.work_loop.run_sync(self._arm, deadline)

    def cancel_timeout(self) -> bool:
        """Cancel the pending timeout; True if one was pending.

        When this returns the action is neither running nor going to run for the
        cancelled timeout.
        """
        if self.work_loop is None:
            return False
        return bool(self.work_loop.run_sync(self._cancel))

    @property
    def pending(self) -> bool:
        """True while a timeout is armed and has not fired."""
        return self._handle is not None

    def _arm(self, deadline: float) -> None:
        self._cancel()
        assert self.work_loop is not None
        loop = self.work_loop.loop
        generation = self._generation
        # asyncio's clock is time.monotonic; translate in case a loop uses another.
        when = loop.time() + (deadline - time.monotonic())
        self._handle = loop.call_at(when, self._fire, generation)

    def _cancel(self) -> bool:
        self._generation += 1
        handle, self._handle = self._handle, None
        if handle is None:
            return False
        handle.cancel()
        return True

    def _fire(self, generation: int) -> None:
        if generation != self._generation or not self._enabled:
            return
        self._handle = None
        assert self.work_loop is not None
        self.work_loop._count("timeouts")
        self._dispatch()

    def _update(self) -> None:
        if not self._enabled:
            self._cancel()


class CommandGate(EventSource):
    """Runs calls from other threads on the work loop, serialised with its sources.

    :meth:`run_action` blocks the calling thread until the action has run on the loop
    and returns its result (or raises its exception). While the gate is disabled,
    actions wait until it is enabled again; :meth:`attempt_action` refuses instead.
    :meth:`command_sleep` / :meth:`command_wakeup` let loop code wait for an event.
    """

    def __init__(self, owner: Any, action: Callable[..., Any] | None = None) -> None:
        super().__init__(owner, action)
        self._held: list[tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]]] = []
        self._sleepers: dict[object, list[asyncio.Future[bool]]] = {}
        self._tasks: set[asyncio.Future[None]] = set()

    def _loop_or_fail(self) -> WorkLoop:
        if self.work_loop is None:
            raise BadArgument(f"{self!r} must be added to a work loop first")
        return self.work_loop

    def run_action(self, fn: Callable[..., Any] | None = None, *args: Any) -> Any:
        """Run ``fn(*args)`` (default: the gate's action) on the loop; return its result.

        On the loop thread a plain function runs at once (the gate is recursive).

        Raises:
            BadArgument: no function; or `fn` is async and this is the loop thread
                (use :meth:`run_action_async`).
            ClosedResourceError: the loop closed first.
            Exception: whatever the action raised.
        """
        loop = self._loop_or_fail()
        fn = self._function(fn)
        loop._count("gate_calls")
        if loop.in_loop_thread():
            return loop.run_sync(fn, *args)
        return loop.submit(self._gated, fn, args).result()

    async def run_action_async(self, fn: Callable[..., Any] | None = None, *args: Any) -> Any:
        """Like :meth:`run_action` for async callers on any loop (including this one)."""
        loop = self._loop_or_fail()
        fn = self._function(fn)
        loop._count("gate_calls")
        if loop.in_loop_thread():
            return await self._gated(fn, args)
        return await asyncio.wrap_future(loop.submit(self._gated, fn, args))

    def attempt_action(self, fn: Callable[..., Any] | None = None, *args: Any) -> Any:
        """Like :meth:`run_action`, but refuse at once while the gate is disabled.

        Raises:
            BusyResourceError: the gate is disabled.
        """
        if not self._enabled:
            raise BusyResourceError(f"{self!r} is disabled")
        return self.run_action(fn, *args)

    def _function(self, fn: Callable[..., Any] | None) -> Callable[..., Any]:
        fn = fn or self.action
        if fn is None:
            raise BadArgument(f"{self!r}: no action given and the gate has none")
        return fn

    def _gated(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Awaitable[Any]:
        assert self.work_loop is not None
        future: asyncio.Future[Any] = self.work_loop.loop.create_future()
        if self._enabled:
            self._run_now(fn, args, future)
        else:
            self._held.append((fn, args, future))
        return future

    def _run_now(self, fn: Callable[..., Any], args: tuple[Any, ...], future: Any) -> None:
        try:
            result = fn(*args)
        except Exception as exc:
            future.set_exception(exc)
            return
        if not inspect.isawaitable(result):
            future.set_result(result)
            return

        async def finish(awaitable: Awaitable[Any]) -> None:
            try:
                future.set_result(await awaitable)
            except Exception as exc:
                future.set_exception(exc)

        task = asyncio.ensure_future(finish(result))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _update(self) -> None:
        while self._enabled and self._held:
            fn, args, future = self._held.pop(0)
            self._run_now(fn, args, future)

    def _detached(self) -> None:
        super()._detached()
        for _fn, _args, future in self._held:
            future.set_exception(ClosedResourceError(f"{self!r} was removed from its loop"))
        self._held.clear()

    async def command_sleep(self, event: object, timeout: float | None = None) -> bool:
        """Wait on the loop until :meth:`command_wakeup` (`event`); False on timeout.

        Raises:
            BadArgument: not called on the gate's loop thread.
        """
        loop = self._loop_or_fail()
        if not loop.in_loop_thread():
            raise BadArgument("command_sleep must be awaited on the gate's work loop")
        waiter: asyncio.Future[bool] = loop.loop.create_future()
        self._sleepers.setdefault(event, []).append(waiter)
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            return False
        finally:
            waiters = self._sleepers.get(event, [])
            if waiter in waiters:
                waiters.remove(waiter)

    def command_wakeup(self, event: object, one_thread: bool = False) -> None:
        """Wake the waiters of `event` (only the oldest if `one_thread`), from any thread."""

        def wake() -> None:
            waiters = self._sleepers.get(event, [])
            for waiter in waiters[:1] if one_thread else list(waiters):
                waiters.remove(waiter)
                if not waiter.done():
                    waiter.set_result(True)

        self._loop_or_fail().run_sync(wake)
