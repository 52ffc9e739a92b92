"""Services: the I/O Kit lifecycle, three-phase termination, interest messages, IOResources.

A :class:`Service` is a registry entry that takes part in matching, either as a *nub*
(a device a family published, the provider) or as a *driver* (an instance of a
personality's ``IOClass``, the client). The lifecycle verbs are I/O Kit's, in its
order and with its rules (see ``docs`` in the module docstrings and iokit-reference §3):

    init(properties) -> attach(provider) -> probe(provider, score) -> detach(provider)
    then, for the winner of a match category:
    attach(provider) -> start(provider) ... stop(provider) -> detach(provider) -> free()

- ``init`` receives a private copy of the personality, merged into the properties.
- ``probe`` returns the (possibly changed) score, or None to decline.
- ``start`` returns True when the driver is running. A failed start (False or an
  exception) gets **no** ``stop``: the engine detaches and frees it and tries the next
  candidate. Losing candidates are freed without ever being started.
- Every plug makes fresh instances: a service is never restarted after ``free``.

``probe``, ``start``, ``stop``, ``message``, ``will_terminate`` and ``did_terminate``
may be plain methods or ``async def``; the engine and :meth:`Service.terminate` await
whatever they return. ``init``, ``attach``, ``detach`` and ``free`` are plain: they
only touch the registry.

Termination (:meth:`Service.terminate`) runs I/O Kit's three phases over the subtree:

1. top down: every service whose providers are all going goes inactive; each client is
   sent ``message(SERVICE_IS_TERMINATED, provider)`` and interest handlers hear it;
2. ``will_terminate(provider)`` root to leaf, then ``did_terminate(provider)`` leaf to
   root (abort in-flight I/O here);
3. leaf to root: ``stop(provider)`` (only for services that started), ``detach``,
   ``free``.

Each state change is one log line on the ``hwkit.service`` logger, prefixed with the
service's registry path.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, cast

from hwkit.errors import BadArgument
from hwkit.registry import SERVICE_PLANE, RegistryEntry, known_class_chain
from hwkit.workloop import WorkLoop, call

logger = logging.getLogger("hwkit.service")

#: I/O Kit's default match category.
DEFAULT_MATCH_CATEGORY = "IODefaultMatchCategory"


class ServiceState(enum.Enum):
    """Where a service is in its lifecycle; each transition is logged."""

    CREATED = "created"
    INITIALIZED = "initialized"
    PROBING = "probing"
    PROBED = "probed"
    REGISTERED = "registered"
    STARTING = "starting"
    STARTED = "started"
    START_FAILED = "start failed"
    TERMINATING = "terminating"
    STOPPED = "stopped"
    FREED = "freed"


class Message(enum.IntEnum):
    """Interest message types, with I/O Kit's values (``iokit_common_msg``)."""

    SERVICE_IS_TERMINATED = 0xE0000010
    SERVICE_IS_SUSPENDED = 0xE0000020
    SERVICE_IS_RESUMED = 0xE0000030
    SERVICE_IS_REQUESTING_CLOSE = 0xE0000100
    SERVICE_IS_ATTEMPTING_OPEN = 0xE0000101
    SERVICE_WAS_CLOSED = 0xE0000110
    SERVICE_BUSY_STATE_CHANGE = 0xE0000120
    SERVICE_PROPERTY_CHANGE = 0xE0000130


InterestHandler = Callable[["Service", int, Any], Any]


class _PathLogger(logging.LoggerAdapter):
    """Prefix every line with the service's registry path, as SPDK prefixes controllers."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        service = cast(Service, self.extra["service"])  # type: ignore[index]
        return f"{service.path()} ({service.class_name}): {msg}", kwargs


class Service(RegistryEntry):
    """Base class of nubs and drivers: I/O Kit's IOService.

    Subclass it for a driver and override the lifecycle verbs you need (``start`` and
    ``stop`` almost always, ``probe`` to check the hardware before committing). Set
    ``ioclass`` only to publish an I/O Kit class name (families do for their nubs).

    Threading: lifecycle methods run on the matching engine's loop, one at a time for
    a given service; nothing here is safe to call from two threads at once. Event
    sources run on :meth:`get_work_loop`, which may be another thread (as in I/O Kit,
    where ``start`` runs on the matching thread): touch state shared with them through
    a :class:`~hwkit.workloop.CommandGate`.
    """

    ioclass: ClassVar[str] = "IOService"

    def __init__(
        self,
        name: str | None = None,
        properties: Mapping[str, object] | None = None,
        *,
        location: str | None = None,
    ) -> None:
        super().__init__(name, properties, location=location)
        self.state = ServiceState.CREATED
        self.log = _PathLogger(logger, {"service": self})
        self._inactive = False
        self._started = False
        self._interest: list[InterestHandler] = []
        self._work_loop: WorkLoop | None = None
        self._owns_work_loop = False

    def _set_state(self, state: ServiceState) -> None:
        self.log.info("%s -> %s", self.state.value, state.value)
        self.state = state

    # ---- lifecycle verbs ------------------------------------------------------------
    def init(self, properties: Mapping[str, object] | None = None) -> bool:
        """Take a private copy of the personality's properties; False refuses.

        Raises:
            BadArgument: a value is not a plist type.
        """
        for key, value in (properties or {}).items():
            self.set_property(key, value)
        self._set_state(ServiceState.INITIALIZED)
        return True

    def attach(self, provider: RegistryEntry) -> bool:
        """Become a client of `provider` in the service plane."""
        attached = self.attach_to_parent(provider, SERVICE_PLANE)
        self.log.debug("attached to %s", provider.path())
        return attached

    def detach(self, provider: RegistryEntry) -> None:
        """Stop being a client of `provider`."""
        self.log.debug("detached from %s", provider.path())
        self.detach_from_parent(provider, SERVICE_PLANE)

    def probe(self, provider: Service, score: int) -> Any:
        """Check the hardware actively; return the new score, or None to decline.

        Called attached to `provider` but not started. The default keeps the score.
        May be ``async``.
        """
        return score

    def start(self, provider: Service) -> Any:
        """Bring the driver up; return True when running. May be ``async``.

        Returning False or raising makes the engine detach and free this instance
        and try the next candidate; ``stop`` is then never called.
        """
        return True

    def stop(self, provider: Service) -> Any:
        """Undo ``start``: called once, only after a successful start. May be ``async``."""
        return None

    def free(self) -> None:
        """Release what the instance holds; the last call it gets.

        Closes the work loop :meth:`get_work_loop` made for this service, if any.
        """
        self._interest.clear()
        if self._owns_work_loop and self._work_loop is not None:
            self._work_loop.close()
            self._work_loop = None
        if self.registry is not None:
            self.registry.notify("freed", self)
        self._set_state(ServiceState.FREED)

    def register_service(self) -> None:
        """Publish this service so that matching runs for it (asynchronously).

        Raises:
            BadArgument: the service is inactive (terminated).
        """
        if self._inactive:
            raise BadArgument(f"{self.path()}: cannot register a terminated service")
        if self.state is not ServiceState.STARTED:
            self._set_state(ServiceState.REGISTERED)
        if self.registry is not None:
            self.registry.notify("published", self)
            if self.registry.publish_hook is not None:
                self.registry.publish_hook(self)

    # ---- the engine's sequences (xnu's probeCandidates / startCandidate) ---------------
    async def probe_candidate(self, provider: Service, score: int) -> int | None:
        """attach, probe, detach: the score `probe` returned, or None if it declined.

        An exception from ``probe`` counts as declining and is logged.
        """
        self.attach(provider)
        self._set_state(ServiceState.PROBING)
        try:
            result = await call(self.probe, provider, score)
        except Exception:
            self.log.exception("probe raised: treated as declining")
            result = None
        finally:
            self.detach(provider)
        if result is not None and (isinstance(result, bool) or not isinstance(result, int)):
            self.log.error("probe returned %r, not an int score or None: declined", result)
            result = None
        self._set_state(ServiceState.PROBED)
        return result

    async def start_candidate(self, provider: Service) -> bool:
        """attach, start; on failure detach and free (a failed start gets no stop).

        Returns True when the service is running as a client of `provider`.
        """
        self.attach(provider)
        self._set_state(ServiceState.STARTING)
        try:
            started = await call(self.start, provider)
        except Exception:
            self.log.exception("start raised")
            started = False
        if started:
            self._started = True
            self._set_state(ServiceState.STARTED)
            return True
        self._set_state(ServiceState.START_FAILED)
        self.detach(provider)
        self.free()
        return False

    # ---- relations ------------------------------------------------------------------
    @property
    def provider(self) -> Service | None:
        """The first provider in the service plane."""
        parent = self.parent(SERVICE_PLANE)
        return parent if isinstance(parent, Service) else None

    def clients(self) -> list[Service]:
        """The services attached to this one in the service plane."""
        return [c for c in self.children(SERVICE_PLANE) if isinstance(c, Service)]

    @property
    def is_inactive(self) -> bool:
        """True once termination has begun (I/O Kit's ``isInactive``)."""
        return self._inactive

    @property
    def is_started(self) -> bool:
        """True between a successful start and stop."""
        return self._started

    def get_work_loop(self) -> WorkLoop:
        """The work loop this service runs its event sources on.

        Its own if it has one; else the nearest provider's (I/O Kit's default); else
        the registry's; else a dedicated loop is made for this service (on a thread of
        its own) and closed when the service is freed.
        """
        found = self._inherited_work_loop()
        if found is None:
            found = self._work_loop = WorkLoop(self.name)
            self._owns_work_loop = True
        return found

    def _inherited_work_loop(self) -> WorkLoop | None:
        if self._work_loop is not None:
            return self._work_loop
        provider = self.provider
        if provider is not None:
            return provider._inherited_work_loop()
        return self.registry.work_loop if self.registry is not None else None

    def use_work_loop(self, work_loop: WorkLoop | None) -> None:
        """Give this service (and, by inheritance, its clients) a work loop of its own."""
        self._work_loop = work_loop

    # ---- interest messages ----------------------------------------------------------
    def message(self, message_type: int, provider: Service, argument: Any = None) -> Any:
        """Receive an interest message from `provider` (default: ignore). May be async."""
        return None

    def add_interest_handler(self, handler: InterestHandler) -> Callable[[], None]:
        """Call ``handler(service, message_type, argument)`` for this service's messages.

        Returns a function that removes the handler. Handlers may be ``async``.
        """
        self._interest.append(handler)
        return lambda: self._interest.remove(handler) if handler in self._interest else None

    async def message_clients(self, message_type: int, argument: Any = None) -> None:
        """Send a message to every client's ``message()`` and every interest handler.

        A handler that raises is logged and the others still run.
        """
        for client in self.clients():
            await self._deliver(client.message, message_type, self, argument)
        for handler in list(self._interest):
            await self._deliver(handler, self, message_type, argument)

    async def _deliver(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            await call(fn, *args)
        except Exception:
            self.log.exception("message handler %r failed", fn)

    # ---- termination ----------------------------------------------------------------
    def request_terminate(self, provider: Service, options: int) -> bool:
        """Phase 1 question to a client whose provider is terminating; False keeps it."""
        return True

    def will_terminate(self, provider: Service, options: int) -> Any:
        """Phase 2, root to leaf: the provider is going; stop issuing I/O. May be async."""
        return True

    def did_terminate(self, provider: Service, options: int) -> Any:
        """Phase 2, leaf to root: in-flight I/O should be aborted now. May be async."""
        return True

    async def terminate(self, options: int = 0) -> bool:
        """Terminate this service and every client that depends only on it.

        Runs the three phases described in the module docstring and returns False if
        the service was already terminating. Exceptions from the subclasses' verbs are
        logged and termination goes on, so no service is left half bound.
        """
        if self._inactive:
            return False
        victims = self._terminate_phase1(options)
        for victim in victims:
            if victim.registry is not None:
                victim.registry.notify("terminated", victim)
            await victim.message_clients(Message.SERVICE_IS_TERMINATED)
        for victim in victims:
            for provider in victim._providers():
                await victim._guarded(victim.will_terminate, provider, options)
        for victim in reversed(victims):
            for provider in victim._providers():
                await victim._guarded(victim.did_terminate, provider, options)
        for victim in reversed(victims):
            await victim._terminate_phase3()
        return True

    def _providers(self) -> list[Service]:
        return [p for p in self.parents(SERVICE_PLANE) if isinstance(p, Service)]

    def _terminate_phase1(self, options: int) -> list[Service]:
        self._inactive = True
        self._set_state(ServiceState.TERMINATING)
        victims = [self]
        for victim in victims:  # grows while we walk: breadth first, top down
            for client in victim.clients():
                if client._inactive or not all(p._inactive for p in client._providers()):
                    continue
                if not client.request_terminate(victim, options):
                    continue
                client._inactive = True
                client._set_state(ServiceState.TERMINATING)
                victims.append(client)
        return victims

    async def _terminate_phase3(self) -> None:
        providers = self._providers()
        if self._started and providers:
            self._started = False
            await self._guarded(self.stop, providers[0])
            self._set_state(ServiceState.STOPPED)
        for parent in self.parents(SERVICE_PLANE):  # providers, and the root for nubs
            if isinstance(parent, Service):
                self.detach(parent)
            else:
                self.detach_from_parent(parent, SERVICE_PLANE)
        for survivor in self.clients():  # clients kept by another provider
            survivor.detach(self)
        self.free()

    async def _guarded(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await call(fn, *args)
        except Exception:
            self.log.exception("%s failed during termination", fn.__name__)
            return None


class Nub(Service):
    """A nub whose class is given by name (from a nubs file or a snapshot).

    Families publish nubs with Python classes of their own; this class stands in for
    them where only data exists, taking its class chain from
    :data:`hwkit.registry.CLASS_PARENTS`.

    Raises (constructor):
        NotFoundError: `class_name` is not a known I/O Kit class.
    """

    def __init__(
        self,
        class_name: str,
        name: str | None = None,
        properties: Mapping[str, object] | None = None,
        *,
        location: str | None = None,
    ) -> None:
        self._chain = known_class_chain(class_name)
        super().__init__(name or self._chain[0], properties, location=location)

    def class_chain(self) -> tuple[str, ...]:
        """The chain of the class the nub was described with."""
        return self._chain


class Resources(Service):
    """The IOResources nub: drivers with no hardware match on it with IOResourceMatch.

    Its properties are the published resources; ``IOKit`` is always published, so a
    personality with ``IOProviderClass IOResources`` and ``IOResourceMatch IOKit``
    loads as soon as matching runs, as it does on macOS.
    """

    ioclass: ClassVar[str] = "IOResources"

    def __init__(self) -> None:
        super().__init__("IOResources", {"IOKit": True})

    def publish_resource(self, name: str, value: object = True) -> None:
        """Publish a resource and re-run matching for drivers that were waiting on it.

        Raises:
            BadArgument: the value is not a plist type.
        """
        self.set_property(name, value)
        self.log.info("resource %r published", name)
        if self.registry is not None:
            self.registry.notify("resource", self)
            if self.registry.publish_hook is not None:
                self.registry.publish_hook(self)

    def is_published(self, name: str) -> bool:
        """True if a resource of that name has been published."""
        return self.has_property(name)
