"""Driver-host supervision in the daemon: one process per driver, health checks, restarts.

The daemon's matching engine instantiates a :class:`HostedDriver` for each candidate
personality instead of the driver class itself (the daemon never imports driver
code). Its ``start`` launches a driver host (:mod:`hwkit.host`), passes it the nub and
the device descriptors, and returns what the real driver's ``probe`` and ``start``
returned there; a failure makes the engine try the next candidate, as I/O Kit does.
(The real ``probe`` therefore runs just before ``start``, in the host, rather than
over all candidates first.)

Once started, the host is watched:

- its exit is seen at once through a pidfd (crash, ``exit``, a signal);
- every ``health_interval`` seconds it is pinged; no answer within ``health_timeout``
  seconds means it hangs, and it is killed (``SIGKILL``).

Either way the driver's registry entry is terminated (clients with interest get
``SERVICE_IS_TERMINATED``, matching notifications ``terminated``) and the nub is
matched again after a backoff (``backoff * 2**(n-1)``, at most ``backoff_max``). After
``limit`` restarts (``HWRestartLimit`` in the personality overrides the config) the
personality is not started on that nub again, and the nub carries ``HWState`` =
``"failed"`` and ``HWFailureReason``. A driver that ran ``stable_after`` seconds
before failing starts a new count; reloading its personality file (changed, or
removed and installed again) clears the failure.

Threading: everything runs on the daemon's asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import pwd
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from hwkit.errors import ClosedResourceError, HwkitError, NotFoundError, PermissionDenied
from hwkit.host import describe_entry
from hwkit.ipc import Channel, Credentials, Frame, Kind, seqpacket_pair, spawn
from hwkit.service import Service

if TYPE_CHECKING:
    import socket

    from hwkit.matching.engine import MatchingEngine
    from hwkit.matching.personality import Personality

logger = logging.getLogger("hwkit.supervisor")


@dataclass
class RestartPolicy:
    """How hosts are watched and restarted (the config file's ``[restart]`` and ``[health]``)."""

    limit: int = 3
    backoff: float = 0.5
    backoff_max: float = 30.0
    stable_after: float = 60.0
    health_interval: float = 1.0
    health_timeout: float = 3.0
    start_timeout: float = 30.0
    stop_timeout: float = 10.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before restart number `attempt` (1-based)."""
        return min(self.backoff * 2 ** (attempt - 1), self.backoff_max)


@dataclass
class HostIdentity:
    """Who driver hosts run as (the config file's ``[hosts]``).

    The daemon opens devices (binding them to vfio-pci needs root) and passes the
    descriptors, so a host needs no privileges of its own: with `user` set, a root
    daemon starts hosts as that user, with its groups and no capabilities.
    `memory_lock` (bytes) becomes the host's ``RLIMIT_MEMLOCK``: the DMA memory its
    driver may pin through VFIO. A personality can override both (``HWHostUser``,
    ``HWHostMemoryLock``).
    """

    user: str | None = None
    group: str | None = None
    memory_lock: int | None = None

    def resolve(
        self, personality: Mapping[str, Any] = MappingProxyType({})
    ) -> tuple[int | None, int | None, list[int] | None]:
        """(uid, gid, supplementary groups) to start a host with; Nones mean the daemon's.

        Raises:
            NotFoundError: the user or group does not exist.
            PermissionDenied: the daemon is not root and cannot become them.
        """
        user = personality.get("HWHostUser", self.user)
        if user is None:
            return None, None, None
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            raise NotFoundError(
                f"driver hosts are to run as user {user!r}, which does not exist (useradd "
                f"--system --no-create-home {user}, or change [hosts] user / HWHostUser)"
            ) from None
        gid = entry.pw_gid
        if self.group is not None:
            try:
                gid = grp.getgrnam(self.group).gr_gid
            except KeyError:
                raise NotFoundError(
                    f"[hosts] group {self.group!r} does not exist (groupadd --system {self.group})"
                ) from None
        if entry.pw_uid == os.geteuid():
            return None, None, None
        if os.geteuid() != 0:
            raise PermissionDenied(
                f"the daemon runs as uid {os.geteuid()} and cannot start driver hosts as "
                f"{user!r}: run it as root, or unset [hosts] user"
            )
        return entry.pw_uid, gid, os.getgrouplist(user, gid)

    def memlock(self, personality: Mapping[str, Any]) -> int | None:
        value = personality.get("HWHostMemoryLock", self.memory_lock)
        return None if value is None else int(value)


@dataclass
class _Record:
    crashes: int = 0
    failed: str | None = None
    history: list[str] = field(default_factory=list)


def _exit_reason(status: int | None) -> str:
    if status is None:
        return "vanished"
    if status < 0:
        try:
            return f"was killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"was killed by signal {-status}"
    return f"exited with status {status}"


class Supervisor:
    """Crash records per (nub, personality) and the factory the engine calls."""

    def __init__(
        self, engine: MatchingEngine, policy: RestartPolicy, identity: HostIdentity | None = None
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.identity = identity or HostIdentity()
        self._records: dict[tuple[int, str, str], _Record] = {}
        self._nubs: dict[tuple[int, str, str], Service] = {}
        self.hosts: set[HostedDriver] = set()

    def instantiate(self, personality: Personality) -> Service:
        """The engine's factory: a stand-in that runs the driver in a host."""
        return HostedDriver(personality, self)

    def record(self, nub: Service, personality: Personality) -> _Record:
        key = (nub.entry_id, personality.file, personality.name)
        self._nubs[key] = nub
        return self._records.setdefault(key, _Record())

    def forget(self, files: set[str]) -> None:
        """Drop the crash records of personalities from `files` (they were reloaded).

        A nub marked failed by one of them loses the mark, so a fixed driver is
        matched again at the next rematch.
        """
        for key in [k for k in self._records if k[1] in files]:
            record = self._records.pop(key)
            nub = self._nubs.pop(key, None)
            if record.failed is not None and nub is not None and not nub.is_inactive:
                for name in ("HWState", "HWFailureReason"):
                    nub.remove_property(name)
                logger.info("%s: %s reloaded: failure cleared", nub.path(), key[1])

    def crashed(self, driver: HostedDriver, nub: Service, reason: str, uptime: float) -> None:
        """Count a failure and schedule the restart, or mark the nub failed."""
        personality = driver.personality
        record = self.record(nub, personality)
        if uptime >= self.policy.stable_after:
            record.crashes = 0
        record.crashes += 1
        record.history.append(reason)
        limit = personality.table.get("HWRestartLimit", self.policy.limit)
        nub.set_property("HWRestartCount", record.crashes)
        if record.crashes > limit:
            record.failed = (
                f"{personality.io_class} (personality {personality.name!r}) {reason}; "
                f"restart limit {limit} reached after {record.crashes} failures"
            )
            nub.set_property("HWState", "failed")
            nub.set_property("HWFailureReason", record.failed)
            logger.error("%s: %s: not restarting", nub.path(), record.failed)
            return
        delay = self.policy.delay(record.crashes)
        logger.warning(
            "%s: %s %s; restarting in %.2f s (restart %d of %d)",
            nub.path(), personality.io_class, reason, delay, record.crashes, limit,
        )  # fmt: skip
        asyncio.get_running_loop().call_later(delay, self._restart, nub)

    def _restart(self, nub: Service) -> None:
        if not nub.is_inactive and nub.registry is not None:
            self.engine.schedule(nub)

    async def stop_all(self) -> None:
        """Kill every host still running (after termination asked them to stop)."""
        for driver in list(self.hosts):
            await driver.kill_host("the daemon is stopping")


class HostedDriver(Service):
    """A driver as the daemon's registry holds it: a stand-in for the one in its host.

    Its class chain becomes the real driver's once the host reports it, so clients
    find it by its real class name; its properties follow the driver's.
    """

    def __init__(self, personality: Personality, supervisor: Supervisor) -> None:
        short = personality.io_class.rpartition(".")[2]
        self._chain = (short, personality.io_class, "IOService", "IORegistryEntry")
        super().__init__(short)
        self.personality = personality
        self.supervisor = supervisor
        self.process: subprocess.Popen[bytes] | None = None
        self.channel: Channel | None = None
        self._pidfd: int | None = None
        self._started_at = 0.0
        self._stopping = False
        self._gone: asyncio.Future[str] | None = None
        self._health: asyncio.Task[None] | None = None
        self._children: dict[int, Service] = {}
        self._register_when_started = False
        self._device_nub: Service | None = None  # opened device descriptors came from it
        #: Called with (driver, connection id) when a user-client connection ends.
        self.on_client_gone: Any = None

    def class_chain(self) -> tuple[str, ...]:
        return self._chain

    @property
    def pid(self) -> int | None:
        """The host's process id while it runs."""
        return self.process.pid if self.process is not None else None

    # ---- start --------------------------------------------------------------------------
    async def start(self, provider: Service) -> bool:
        """Run the real driver's probe and start in a new host; True if it is running."""
        record = self.supervisor.record(provider, self.personality)
        if record.failed is not None:
            self.log.warning("not started: %s", record.failed)
            return False
        fds: list[int] = []
        try:
            if hasattr(provider, "driver_host_fds"):
                self._device_nub = provider
                fds = list(provider.driver_host_fds())
            await self._spawn()
            assert self.channel is not None
            reply = await self.channel.request(
                "start", self._start_request(provider), fds=fds,
                timeout=self.supervisor.policy.start_timeout,
            )  # fmt: skip
            result = reply.plist()
        except (HwkitError, TimeoutError) as exc:
            reason = "did not answer start in time" if isinstance(exc, TimeoutError) else str(exc)
            self.log.error("%s: host failed: %s", self.personality.io_class, reason)
            await self.kill_host(reason)
            if self._gone is None:  # no host was watched, so none will exit: give back now
                self._give_back_device()
            return False
        finally:
            for fd in fds:
                os.close(fd)
        if not result.get("started"):
            self.log.error("%s did not start: %s", self.personality.io_class, result.get("reason"))
            await self.kill_host("start failed")
            return False
        self._chain = tuple(result["classes"])
        for key, value in result["properties"].items():
            self.set_property(key, value)
        self.set_property("HWHostPID", result["pid"])
        self._started_at = time.monotonic()
        self._health = spawn(self._health_checks(), "health checks")
        self.supervisor.hosts.add(self)
        if self._register_when_started:
            asyncio.get_running_loop().call_soon(self._register_if_running)
        return True

    def _register_if_running(self) -> None:
        if self.is_started and not self.is_inactive:
            self.register_service()

    def _start_request(self, provider: Service) -> dict[str, Any]:
        p = self.personality
        return {
            "nub": describe_entry(provider), "personality": p.table, "file": p.file,
            "name": p.name, "score": self.get_property("IOProbeScore", 0),
            "properties": self.properties(),
        }  # fmt: skip

    async def _spawn(self) -> None:
        identity = self.supervisor.identity
        uid, gid, groups = identity.resolve(self.personality.table)
        memlock = identity.memlock(self.personality.table)
        ours, theirs = seqpacket_pair()
        command = [sys.executable, "-m", "hwkit.host", "--control-fd", str(theirs.fileno()),
                   "--name", self.personality.io_class]  # fmt: skip
        try:
            self.process = subprocess.Popen(
                command, pass_fds=[theirs.fileno()], close_fds=True,
                user=uid, group=gid, extra_groups=groups,
            )  # fmt: skip
        finally:
            theirs.close()
        if memlock is not None:
            # Before "start" is sent, so before the host can map anything.
            try:
                resource.prlimit(self.process.pid, resource.RLIMIT_MEMLOCK, (memlock, memlock))
            except OSError as exc:
                self.process.kill()
                self.process.wait()
                raise PermissionDenied(
                    f"cannot set the driver host's RLIMIT_MEMLOCK to {memlock} bytes "
                    f"({exc.strerror}): the daemon needs root (CAP_SYS_RESOURCE) for that"
                ) from None
        loop = asyncio.get_running_loop()
        self._gone = loop.create_future()
        self._pidfd = os.pidfd_open(self.process.pid)
        loop.add_reader(self._pidfd, self._exited)
        self.channel = Channel(ours, self._notice, name=f"host {self.process.pid}")
        self.log.info("driver host %d launched for %s", self.process.pid, self.personality.io_class)

    # ---- watching -----------------------------------------------------------------------
    def _exited(self) -> None:
        assert self.process is not None and self._pidfd is not None
        asyncio.get_running_loop().remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None
        reason = f"host {self.process.pid} {_exit_reason(self.process.wait())}"
        if self.channel is not None:
            self.channel.close()
        self.supervisor.hosts.discard(self)
        self._give_back_device()  # the host's descriptors closed when it exited
        if self._health is not None:
            self._health.cancel()
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(reason)
        if self._stopping or not self.is_started:
            self.log.info("%s", reason)
            return
        self.log.error("%s while running", reason)
        spawn(self._after_crash(reason), "crash handling")

    async def _after_crash(self, reason: str) -> None:
        provider = self.provider
        uptime = time.monotonic() - self._started_at
        await self.terminate()
        if provider is not None:
            self.supervisor.crashed(self, provider, reason, uptime)

    def _give_back_device(self) -> None:
        if self._device_nub is not None:
            nub, self._device_nub = self._device_nub, None
            nub.driver_host_exited()  # type: ignore[attr-defined]

    async def _health_checks(self) -> None:
        policy = self.supervisor.policy
        while self.channel is not None and not self.channel.closed:
            await asyncio.sleep(policy.health_interval)
            try:
                reply = await self.channel.request("ping", timeout=policy.health_timeout)
            except TimeoutError:
                await self.kill_host(
                    f"stopped answering health checks ({policy.health_timeout} s)", crash=True
                )
                return
            except ClosedResourceError:
                return
            for key, value in reply.plist().get("properties", {}).items():
                self.set_property(key, value)

    async def kill_host(self, reason: str, crash: bool = False) -> None:
        """SIGKILL the host and wait for it; a `crash` is handled as one (restart...)."""
        if self.process is None or self._gone is None:
            return
        if not self._gone.done():
            self.log.warning("killing host %d: %s", self.process.pid, reason)
            self._stopping = self._stopping or not crash
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._gone), 5)

    # ---- what the host tells us ------------------------------------------------------------
    async def _notice(self, frame: Frame) -> None:
        if frame.kind != Kind.NOTIFY:
            frame.close_fds()
            return
        body = frame.plist()
        kind = body.get("kind")
        if kind == "registered":
            for key, value in body.get("properties", {}).items():
                self.set_property(key, value)
            if self.is_started:
                self.register_service()
            else:  # registered inside start(): publish once start has returned here
                self._register_when_started = True
        elif kind == "publish":
            self._publish_child(body)
        elif kind == "terminate":
            child = self._children.pop(int(body.get("id", 0)), None)
            if child is not None:
                await child.terminate()
        elif kind == "client_gone" and self.on_client_gone is not None:
            self.on_client_gone(self, body.get("connection"))

    def _publish_child(self, body: dict[str, Any]) -> None:
        description = body["nub"]
        child = _RemoteNub(description)
        parent = self._children.get(int(body.get("parent", 0)), self)
        child.attach(parent)
        self._children[int(description["id"])] = child
        child.register_service()

    # ---- requests from clients -----------------------------------------------------------
    async def open_user_client(
        self, sock: socket.socket, creds: Credentials, kind: int, connection: int = 0
    ) -> str:
        """Hand a client's socket to the host, which makes the user client.

        Raises:
            ClosedResourceError: the host is gone.
            HwkitError: the host refused (PermissionDenied, UnsupportedError...).
        """
        if self.channel is None or self.channel.closed:
            raise ClosedResourceError(f"{self.path()}: the driver host is not running")
        reply = await self.channel.request(
            "open", {"credentials": creds.to_plist(), "type": kind, "connection": connection},
            fds=[sock.fileno()],
            timeout=self.supervisor.policy.health_timeout,
        )  # fmt: skip
        return str(reply.plist().get("class", ""))

    async def set_properties_remote(self, properties: dict[str, Any]) -> None:
        """Pass a client's properties to the driver's ``set_properties`` in the host."""
        if self.channel is None or self.channel.closed:
            raise ClosedResourceError(f"{self.path()}: the driver host is not running")
        await self.channel.request(
            "set_properties", {"properties": properties},
            timeout=self.supervisor.policy.health_timeout,
        )  # fmt: skip

    # ---- stop ---------------------------------------------------------------------------
    async def stop(self, provider: Service) -> None:
        """Ask the host to stop the driver and exit; kill it if it does not in time."""
        self._stopping = True
        if self._health is not None:
            self._health.cancel()
        if self.channel is None or self.channel.closed or self._gone is None:
            return
        timeout = self.supervisor.policy.stop_timeout
        with contextlib.suppress(HwkitError, TimeoutError):
            await self.channel.request("stop", timeout=timeout)
        try:
            await asyncio.wait_for(asyncio.shield(self._gone), timeout)
        except TimeoutError:
            await self.kill_host(f"did not exit within {timeout} s of stop")


class _RemoteNub(Service):
    """A nub a driver published in its host, as the daemon's registry holds it."""

    def __init__(self, description: dict[str, Any]) -> None:
        self._chain = tuple(description["classes"])
        super().__init__(
            description["name"], description["properties"], location=description.get("location")
        )

    def class_chain(self) -> tuple[str, ...]:
        return self._chain
