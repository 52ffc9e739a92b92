"""``hwkit-daemon``: the matching daemon.

It owns the registry and the catalogue, matches nubs as they come and go, runs each
started driver in a driver host of its own (:mod:`hwkit.supervisor`; ``--in-process``
runs them in the daemon, for debugging), and brokers clients (:mod:`hwkit.broker`)::

    hwkit-daemon [--socket PATH] [--personalities DIR ...] [--config FILE] [--in-process]

- Foreground; logs go to stderr as ``<priority>hwkit-daemon: logger: message`` lines,
  which journald files at the right priority.
- ``READY=1`` goes to ``$NOTIFY_SOCKET`` (systemd ``Type=notify``) once the socket
  listens and the first enumeration is matched.
- Personality folders are rescanned every ``rescan_interval`` seconds and on SIGHUP:
  new files are matched at once; drivers of removed or changed personalities stop.
- SIGTERM / SIGINT: every nub is terminated (drivers stop leaves first), the hosts
  exit, the socket is removed, and the daemon exits 0.
- Families plug in as nub providers: objects with ``async start(daemon)`` (publish
  nubs with :meth:`Daemon.publish`, terminate them on removal) and ``async stop()``,
  passed to :class:`Daemon` (none are needed yet: the IOResources nub and software
  drivers exercise everything).

The config file (TOML, default ``/etc/hwkit/daemon.toml`` or ``$HWKIT_CONFIG``)::

    socket = "/run/hwkit/hwkit.sock"
    personalities = ["/etc/hwkit/drivers"]   # after the shipped drivers
    shipped_drivers = true                   # include hwkit's own drivers/ folder
    group = "hwkit"                          # may connect (socket 0660 root:hwkit)
    rescan_interval = 2.0
    [restart]                                # see hwkit.supervisor.RestartPolicy
    limit = 3
    backoff = 0.5
    backoff_max = 30.0
    [health]
    interval = 1.0
    timeout = 3.0
    [hosts]                                  # see hwkit.supervisor.HostIdentity
    user = "hwkit-driver"                    # run driver hosts as this user (root daemon)
    group = "hwkit-driver"                   # and group (default: the user's)
    memory_lock = 268435456                  # RLIMIT_MEMLOCK of a host: pinned DMA bytes

The daemon opens the devices of drivers it starts in hosts (it binds a PCI function to
vfio-pci and passes the container, group and device descriptors), so hosts need no
privileges: with ``[hosts] user`` set they run as that user, with no capabilities.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import grp
import logging
import os
import signal
import socket
import sys
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from hwkit.broker import Session, UserClientEntry, refuse
from hwkit.errors import BadArgument, HwkitError, NotFoundError
from hwkit.ipc import Credentials, spawn
from hwkit.matching.catalogue import Catalogue, CatalogueChange, default_search_path
from hwkit.matching.engine import MatchingEngine
from hwkit.matching.personality import Personality
from hwkit.registry import Registry, RegistryEntry
from hwkit.service import Service
from hwkit.supervisor import HostedDriver, HostIdentity, RestartPolicy, Supervisor
from hwkit.workloop import WorkLoop
from hwkit.workloop import run as run_main

logger = logging.getLogger("hwkit.daemon")

DEFAULT_CONFIG = Path("/etc/hwkit/daemon.toml")
DEFAULT_SOCKET = "/run/hwkit/hwkit.sock"


@dataclass
class DaemonConfig:
    """What the config file and the command line set."""

    socket: str = DEFAULT_SOCKET
    personalities: list[str] = field(default_factory=list)
    shipped_drivers: bool = True
    group: str | None = None
    rescan_interval: float = 2.0
    in_process: bool = False
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    hosts: HostIdentity = field(default_factory=HostIdentity)

    @classmethod
    def load(cls, path: str | Path | None = None) -> DaemonConfig:
        """Read a config file; a missing default file means the defaults.

        Raises:
            NotFoundError: an explicitly named file cannot be read.
            BadArgument: the file is not TOML or a key has the wrong type; the
                message names the file and the key.
        """
        explicit = path is not None or "HWKIT_CONFIG" in os.environ
        path = Path(path or os.environ.get("HWKIT_CONFIG") or DEFAULT_CONFIG)
        try:
            text = path.read_text()
        except OSError as exc:
            if not explicit:
                return cls()
            raise NotFoundError(f"{path}: cannot read config: {exc.strerror or exc}") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise BadArgument(f"{path}: not valid TOML: {exc}") from None
        return cls.from_mapping(data, str(path))

    @classmethod
    def from_mapping(cls, data: dict[str, Any], where: str) -> DaemonConfig:
        """Build a config from parsed TOML, checking every key and type."""
        config = cls()
        simple = {"socket": str, "personalities": list, "shipped_drivers": bool,
                  "group": str, "rescan_interval": (int, float)}  # fmt: skip
        for key, value in data.items():
            if key in ("restart", "health", "hosts"):
                continue
            if key not in simple:
                raise BadArgument(f"{where}: unknown key {key!r} (keys: {', '.join(simple)})")
            if not isinstance(value, simple[key]) or isinstance(value, bool) != (
                key == "shipped_drivers"
            ):
                raise BadArgument(f"{where}: {key!r} has the wrong type ({value!r})")
            setattr(config, key, [str(p) for p in value] if key == "personalities" else value)
        policy_keys = {f.name for f in fields(RestartPolicy)}
        for section, prefix in (("restart", ""), ("health", "health_")):
            table = data.get(section, {})
            if not isinstance(table, dict):
                raise BadArgument(f"{where}: [{section}] must be a table")
            for key, value in table.items():
                name = prefix + key
                if name not in policy_keys or isinstance(value, bool):
                    raise BadArgument(f"{where}: [{section}] {key!r} is not a setting")
                if not isinstance(value, int | float) or value < 0:
                    raise BadArgument(f"{where}: [{section}] {key!r} must be a non-negative number")
                setattr(config.policy, name, int(value) if name == "limit" else float(value))
        hosts = data.get("hosts", {})
        if not isinstance(hosts, dict):
            raise BadArgument(f"{where}: [hosts] must be a table")
        for key, value in hosts.items():
            if key in ("user", "group"):
                if not isinstance(value, str) or not value:
                    raise BadArgument(f"{where}: [hosts] {key!r} must be a user or group name")
            elif key == "memory_lock":
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise BadArgument(f"{where}: [hosts] 'memory_lock' must be bytes (>= 0)")
            else:
                raise BadArgument(
                    f"{where}: [hosts] {key!r} is not a setting (user, group, memory_lock)"
                )
            setattr(config.hosts, key, value)
        return config

    def search_path(self) -> list[Path]:
        """The shipped drivers folder (if enabled), then the configured folders."""
        shipped = default_search_path()[:1] if self.shipped_drivers else []
        return [*shipped, *(Path(p) for p in self.personalities)]


def default_socket() -> str:
    """Where clients find the daemon: ``$HWKIT_SOCKET``, the config file's, or the default."""
    if os.environ.get("HWKIT_SOCKET"):
        return os.environ["HWKIT_SOCKET"]
    try:
        return DaemonConfig.load().socket
    except HwkitError:
        return DEFAULT_SOCKET


class NubProvider(Protocol):
    """A family feeding nubs into the daemon (USB, PCI, serial in later issues)."""

    async def start(self, daemon: Daemon) -> None: ...

    async def stop(self) -> None: ...


def default_providers() -> list[NubProvider]:
    """The families of this machine: PCI where sysfs shows a PCI bus."""
    providers: list[NubProvider] = []
    if Path("/sys/bus/pci/devices").is_dir():
        from hwkit.pci.family import PCIFamily

        providers.append(PCIFamily())
    return providers


def sd_notify(message: str) -> bool:
    """Send a state line to systemd (``$NOTIFY_SOCKET``); False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        try:
            sock.sendto(message.encode(), address)
        except OSError as exc:
            logger.warning("cannot notify systemd at %s: %s", address, exc)
            return False
    return True


class Daemon:
    """The registry, catalogue, engine, supervisor and socket of one hwkit-daemon."""

    def __init__(self, config: DaemonConfig, providers: list[NubProvider] | None = None) -> None:
        self.config = config
        self.providers = providers or []
        self.registry = Registry()
        self.catalogue = Catalogue(config.search_path())
        self.sessions: set[Session] = set()
        self.origin: dict[int, Personality] = {}
        self.nubs: list[Service] = []
        self._stop: asyncio.Event | None = None
        self._listener: socket.socket | None = None
        self.engine: MatchingEngine | None = None
        self.supervisor: Supervisor | None = None

    # ---- start-up ---------------------------------------------------------------------
    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; returns the exit status (0)."""
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        work_loop = WorkLoop.current("daemon")
        self.registry.work_loop = work_loop
        self.engine = MatchingEngine(self.registry, self.catalogue, loop=loop,
                                     instantiate=self._instantiate)  # fmt: skip
        self.supervisor = Supervisor(self.engine, self.config.policy, self.config.hosts)
        self.registry.observers.append(self._registry_event)
        self.catalogue.rescan()
        self._listen()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        self.registry.resources.register_service()
        for provider in self.providers:
            await provider.start(self)
        await self.engine.wait_quiet()
        mode = "in-process" if self.config.in_process else "driver hosts"
        logger.info("ready on %s (%d personalities, %s)", self.config.socket,
                    len(self.catalogue.personalities), mode)  # fmt: skip
        sd_notify("READY=1\nSTATUS=matching")
        timer = self.catalogue.watch(
            work_loop, self.config.rescan_interval, self._catalogue_changed
        )
        await self._stop.wait()
        sd_notify("STOPPING=1")
        work_loop.remove_event_source(timer)
        await self.shutdown()
        return 0

    def _instantiate(self, personality: Personality) -> Service:
        assert self.supervisor is not None
        if self.config.in_process:
            instance = personality.resolve_class()()
        else:
            instance = self.supervisor.instantiate(personality)
            assert isinstance(instance, HostedDriver)
            instance.on_client_gone = self._client_gone
        self.origin[instance.entry_id] = personality
        return instance

    def _listen(self) -> None:
        path = Path(self.config.socket)
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
        old = os.umask(0o117)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o660)
        if self.config.group is not None:
            os.chown(path, -1, self._group_id())
        sock.listen(64)
        sock.setblocking(False)
        self._listener = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._accept)

    def _group_id(self) -> int:
        try:
            return grp.getgrnam(str(self.config.group)).gr_gid
        except KeyError:
            raise NotFoundError(
                f"config: group {self.config.group!r} does not exist (groupadd --system "
                f"{self.config.group}, or change 'group')"
            ) from None

    # ---- clients ------------------------------------------------------------------------
    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                logger.error("accept failed: %s", exc)
                return
            creds = Credentials.of(sock)
            reason = self._connection_refusal(creds)
            if reason is not None:
                refuse(sock, creds, reason)
                continue
            logger.debug("client connected: %s", creds)
            self.sessions.add(Session(self, sock, creds))

    def _connection_refusal(self, creds: Credentials) -> str | None:
        if creds.uid in (0, os.geteuid()):
            return None
        if self.config.group is not None and self._group_id() in creds.all_groups():
            return None
        return f"not root and not in group {self.config.group!r}" if self.config.group else (
            "not root (no group is configured to connect)"
        )  # fmt: skip

    def _registry_event(self, event: str, entry: RegistryEntry) -> None:
        for session in list(self.sessions):
            session.registry_event(event, entry)
        if event == "freed":
            self.origin.pop(entry.entry_id, None)

    def _client_gone(self, driver: HostedDriver, connection: Any) -> None:
        entry = next((c for c in driver.children() if c.entry_id == connection), None)
        if isinstance(entry, UserClientEntry):
            logger.debug("%s: user client closed (%s)", driver.path(),
                         entry.get_property("IOUserClientCreator"))  # fmt: skip
            entry.gone()

    # ---- nubs and personalities -------------------------------------------------------------
    async def publish(self, nub: Service, parent: RegistryEntry | None = None) -> None:
        """Attach a nub (from a family) and match it."""
        assert self.engine is not None
        nub.attach(parent or self.registry.root)
        self.nubs.append(nub)
        nub.register_service()

    def reload(self) -> None:
        """SIGHUP: rescan the personality folders now."""
        logger.info("SIGHUP: rescanning personalities")
        change = self.catalogue.rescan()
        if change:
            self._catalogue_changed(change)

    def _catalogue_changed(self, change: CatalogueChange) -> None:
        assert self.engine is not None and self.supervisor is not None
        gone = {name for name in (*change.removed, *change.changed)}
        self.supervisor.forget({*gone, *change.added})  # a new file gets a new chance
        current = {id(p) for p in self.catalogue.personalities}
        stale = [entry for entry in self.registry.entries()
                 if isinstance(entry, Service) and entry.entry_id in self.origin
                 and id(self.origin[entry.entry_id]) not in current]  # fmt: skip
        for driver in stale:
            logger.info("%s: personality file changed or removed (%s): stopping the driver",
                        driver.path(), self.origin[driver.entry_id].file)  # fmt: skip
            spawn(self._terminate_then_rematch(driver), "stopping a stale driver")
        if change.added or gone:
            self.engine.rematch_all()

    async def _terminate_then_rematch(self, driver: Service) -> None:
        provider = driver.provider
        await driver.terminate()
        if provider is not None and not provider.is_inactive and self.engine is not None:
            self.engine.schedule(provider)

    # ---- the registry as clients see it -------------------------------------------------------
    def snapshot(self, plane: str) -> dict[str, Any]:
        """The registry as plain data, with state, personality, score and host pid."""
        tree = self.registry.snapshot(plane)
        stack = [tree]
        while stack:
            node = stack.pop()
            stack.extend(node["children"])
            with contextlib.suppress(NotFoundError):
                entry = self.registry.entry(node["id"])
                node["classes"] = list(entry.class_chain())
                if isinstance(entry, Service):
                    node["state"] = entry.get_property("HWState", entry.state.value)
                personality = self.origin.get(entry.entry_id)
                if personality is not None:
                    node["personality"] = personality.name
                    node["score"] = entry.get_property("IOProbeScore", 0)
                if isinstance(entry, HostedDriver) and entry.pid is not None:
                    node["pid"] = entry.pid
        return tree

    # ---- shutdown ---------------------------------------------------------------------------
    async def shutdown(self) -> None:
        """Stop every driver (leaves first), the providers, the hosts, and the socket."""
        logger.info("stopping: terminating drivers")
        for provider in reversed(self.providers):
            with contextlib.suppress(Exception):
                await provider.stop()
        for nub in [*reversed(self.nubs), self.registry.resources]:
            await nub.terminate()
        if self.engine is not None:
            await self.engine.wait_quiet()
        if self.supervisor is not None:
            await self.supervisor.stop_all()
        for session in list(self.sessions):
            session.channel.close()
        if self._listener is not None:
            asyncio.get_running_loop().remove_reader(self._listener.fileno())
            self._listener.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.config.socket)
        logger.info("stopped")


def main(argv: list[str] | None = None) -> int:
    """The ``hwkit-daemon`` command."""
    from hwkit.host import configure_logging

    parser = argparse.ArgumentParser(prog="hwkit-daemon", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help=f"config file (default {DEFAULT_CONFIG} or $HWKIT_CONFIG)")
    parser.add_argument("--socket", help=f"listening socket (default {DEFAULT_SOCKET})")
    parser.add_argument("--personalities", nargs="+", metavar="DIR", help="personality folders")
    parser.add_argument("--no-shipped-drivers", action="store_true",
                        help="do not load the drivers shipped with hwkit")  # fmt: skip
    parser.add_argument("--in-process", action="store_true", help="run drivers in the daemon")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    configure_logging("hwkit-daemon", logging.DEBUG if args.verbose else logging.INFO)
    try:
        config = DaemonConfig.load(args.config)
    except HwkitError as exc:
        logger.critical("%s", exc)
        return 2
    if args.socket:
        config.socket = args.socket
    if args.personalities:
        config.personalities = args.personalities
    if args.no_shipped_drivers:
        config.shipped_drivers = False
    config.in_process = config.in_process or args.in_process
    try:
        config.hosts.resolve()  # a host user that does not exist fails now, not per driver
    except HwkitError as exc:
        logger.critical("%s: %s", args.config or DEFAULT_CONFIG, exc)
        return 2
    try:
        return run_main(Daemon(config, default_providers()).run())
    except HwkitError as exc:
        logger.critical("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
