"""The matching engine: passive match, probe, and start-until-success per category.

When a nub registers (:meth:`hwkit.service.Service.register_service`), the engine
runs xnu's ``probeCandidates`` for it:

1. passive match (:func:`hwkit.matching.matcher.match_nub`): candidates sorted by
   score, ties in catalogue order;
2. for each candidate: import ``IOClass``, make a **new instance**, ``init`` it with a
   private copy of the personality, then ``attach``, ``probe``, ``detach``. A probe that
   returns None (or raises) declines; otherwise its score replaces the passive one;
3. survivors are sorted again by score (stable) and, **per IOMatchCategory**, started in
   order until one ``start()`` succeeds. A failed start gets no ``stop``; the instance
   is detached and freed and the next one is tried. Every instance that does not end
   up running is freed. The winner's ``IOProbeScore``, ``IOMatchCategory`` and
   ``IONameMatched`` properties record how it won, and its personality's
   ``IOProviderMergeProperties`` are merged into the nub's properties.

Resources: a personality that failed only on ``IOResourceMatch`` is retried when
the resource is published (I/O Kit makes the driver wait instead).

Threading: the engine runs on one asyncio loop (the daemon's or a driver host's);
:meth:`schedule` may be called from any thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING

from hwkit.matching.matcher import (
    Candidate,
    NubMatch,
    choose_winners,
    match_nub,
    occupied_categories,
)

from hwkit.errors import HwkitError
from hwkit.service import Resources, Service

if TYPE_CHECKING:
    from collections.abc import Callable

    from hwkit.matching.catalogue import Catalogue
    from hwkit.matching.personality import Personality

    from hwkit.registry import Registry

logger = logging.getLogger("hwkit.matching")


class MatchingEngine:
    """Binds drivers to nubs of one registry from one catalogue.

    Creating the engine makes it the registry's publish hook, so every
    ``register_service()`` schedules matching.
    """

    def __init__(
        self,
        registry: Registry,
        catalogue: Catalogue,
        loop: asyncio.AbstractEventLoop | None = None,
        instantiate: Callable[[Personality], Service] | None = None,
    ) -> None:
        """Bind `registry` to `catalogue`.

        Args:
            instantiate: makes the instance for a candidate personality (default:
                import ``IOClass`` and call it). The daemon passes one that makes a
                stand-in running the driver in a driver host.
        """
        self.registry = registry
        self._instantiate = instantiate or (lambda p: p.resolve_class()())
        self.catalogue = catalogue
        self._loop = loop
        self._tasks: set[asyncio.Future[NubMatch]] = set()
        self._lock = threading.Lock()
        self._waiting: dict[int, Service] = {}
        self._published: dict[int, Service] = {}
        self._locks: dict[int, asyncio.Lock] = {}
        #: The last outcome per nub id (the daemon's explain-match reads it).
        self.results: dict[int, NubMatch] = {}
        registry.publish_hook = self.schedule
        registry.observers.append(self._observe)

    def _observe(self, event: str, entry: object) -> None:
        """Forget a nub once it is freed (hot-plug churn must not grow the engine)."""
        if event == "freed" and isinstance(entry, Service):
            for table in (self._published, self._waiting, self._locks, self.results):
                table.pop(entry.entry_id, None)

    def schedule(self, nub: Service) -> None:
        """Queue matching for `nub` on the engine's loop (from any thread)."""
        loop = self._loop
        if loop is None:
            try:
                loop = self._loop = asyncio.get_running_loop()
            except RuntimeError:
                raise HwkitError(
                    "the matching engine has no loop: create it with loop=... or inside one"
                ) from None
        targets = [nub]
        if isinstance(nub, Resources):
            targets += list(self._waiting.values())
            self._waiting.clear()

        def start() -> None:
            for target in targets:
                task = asyncio.ensure_future(self.publish(target))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            start()
        else:
            loop.call_soon_threadsafe(start)

    def rematch_all(self, *_: object) -> None:
        """Match every published, active nub again (after personalities were added).

        I/O Kit starts matching when drivers are added to its catalogue; call this
        from :meth:`~hwkit.matching.catalogue.Catalogue.watch`'s ``on_change``. Drivers
        already running keep their categories; removing a personality does not stop
        the drivers it started.
        """
        for nub in list(self._published.values()):
            if nub.is_inactive or nub.registry is not self.registry:
                self._published.pop(nub.entry_id, None)
            else:
                self.schedule(nub)

    async def wait_quiet(self) -> None:
        """Wait until no matching is queued or running (I/O Kit's ``waitQuiet``)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            await asyncio.sleep(0)

    async def publish(self, nub: Service) -> NubMatch:
        """Match, probe and start drivers for `nub` now; return the full outcome.

        Matching runs for one nub at a time (I/O Kit holds the nub's arbitration
        lock), so two publications of the same nub never bind two drivers in one
        category.
        """
        lock = self._locks.setdefault(nub.entry_id, asyncio.Lock())
        async with lock:
            return await self._publish(nub)

    async def _publish(self, nub: Service) -> NubMatch:
        result = match_nub(self.catalogue, nub, registry=self.registry)
        if nub.is_inactive:
            return result
        self._published[nub.entry_id] = nub
        self._note_waiting(nub)
        probed: list[tuple[Candidate, Service]] = []
        for candidate in result.ranked():
            instance = await self._probe(candidate, nub)
            if instance is not None:
                probed.append((candidate, instance))
        probed.sort(key=lambda item: (-(item[0].final_score or 0), item[0].personality.seq))
        await self._start_per_category(nub, probed, result)
        choose_winners(result)
        for candidate in result.candidates:
            if candidate.started is None and candidate.matched:
                candidate.started = False
                candidate.start_problem = "another driver won its category"
        self.results[nub.entry_id] = result
        return result

    def _note_waiting(self, nub: Service) -> None:
        """Remember nubs with personalities that only lack a resource."""
        if isinstance(nub, Resources):
            return
        if not any(p.compiled.resources for p in self.catalogue.for_provider(nub)):
            return
        explained = match_nub(self.catalogue, nub, registry=self.registry, explain=True)
        if any(c.failure and c.failure.key == "IOResourceMatch" for c in explained.candidates):
            self._waiting[nub.entry_id] = nub

    async def _probe(self, candidate: Candidate, nub: Service) -> Service | None:
        personality = candidate.personality
        try:
            instance = self._instantiate(personality)
            initialised = instance.init(personality.driver_properties())
        except Exception as exc:
            problem = str(exc) if isinstance(exc, HwkitError) else (
                f"{personality.file}: personality {personality.name!r}: cannot create "
                f"{personality.io_class}: {type(exc).__name__}: {exc}"
            )  # fmt: skip
            logger.error("%s", problem)
            candidate.probe, candidate.started, candidate.start_problem = "failed", False, problem
            return None
        if not initialised:
            candidate.probe = "declined"
            instance.free()
            return None
        score = await instance.probe_candidate(nub, candidate.score or 0)
        if score is None:
            candidate.probe = "declined"
            instance.free()
            return None
        candidate.probe = "accepted" if score == candidate.score else "changed score"
        candidate.probe_score = score
        return instance

    async def _start_per_category(
        self, nub: Service, probed: list[tuple[Candidate, Service]], result: NubMatch
    ) -> None:
        taken = set(result.occupied)
        for candidate, instance in probed:
            category = candidate.personality.category
            taken |= set(occupied_categories(nub))  # a driver started by other means
            if category in taken or nub.is_inactive:
                candidate.started = False
                candidate.start_problem = f"category {category!r} was taken by a better candidate"
                instance.free()
                continue
            instance.set_property("IOProbeScore", candidate.final_score or 0)
            instance.set_property("IOMatchCategory", category)
            if candidate.name_matched is not None:
                instance.set_property("IONameMatched", candidate.name_matched)
            if await instance.start_candidate(nub):
                candidate.started = True
                taken.add(category)
                merge = candidate.personality.table.get("IOProviderMergeProperties", {})
                for key, value in merge.items():
                    nub.set_property(key, value)
                self.registry.notify("matched", instance)
            else:
                candidate.started = False
                candidate.start_problem = "start() failed (no stop() was called)"
