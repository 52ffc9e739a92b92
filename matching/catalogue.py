"""The catalogue: every loaded personality, indexed so a nub only meets the ones that can fit.

Personalities are kept in load order (search path order, then file name, then the
order within the file): that order breaks score ties, as I/O Kit's insertion order
does. Two indexes narrow the search before any test runs:

1. by ``IOProviderClass``: a nub only meets personalities naming a class in its chain;
2. within a class, by index key: USB personalities by ``idVendor`` (or, for class
   rows, by the class byte), PCI personalities by the vendor ids in their match
   strings (or by base class for ``IOPCIClassMatch``). A nub is looked up under its own
   vendor ids and classes, plus the personalities that have no index key.

The index only ever drops personalities that would fail anyway; :meth:`Catalogue.linear`
scans everything and is the benchmark's baseline.

Search path: the ``drivers/`` shipped with hwkit, then ``/usr/lib/hwkit/drivers``,
``/etc/hwkit/drivers`` and ``$XDG_DATA_HOME/hwkit/drivers`` (``~/.local/share``). Every
``*.plist`` below a folder is read. :meth:`Catalogue.rescan` picks up files added,
changed or removed since the last scan; :meth:`Catalogue.watch` rescans on a work loop
timer, so a file dropped in is matched without a restart.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from hwkit.matching.context import MatchContext
from hwkit.matching.personality import Personality, Rejection, load_file
from hwkit.matching.rules import nub_index_keys_for

from hwkit.registry import RegistryEntry
from hwkit.workloop import TimerEventSource, WorkLoop

logger = logging.getLogger("hwkit.matching")
_K = TypeVar("_K")

SYSTEM_FOLDERS = (Path("/usr/lib/hwkit/drivers"), Path("/etc/hwkit/drivers"))


def default_search_path() -> list[Path]:
    """The shipped drivers folder, the system folders and the user's folder."""
    folders: list[Path] = []
    spec = importlib.util.find_spec("hwkit.drivers")
    if spec is not None and spec.submodule_search_locations:
        folders += [Path(p) for p in spec.submodule_search_locations]
    folders += SYSTEM_FOLDERS
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    folders.append(Path(data_home) / "hwkit" / "drivers")
    return folders


@dataclass
class CatalogueChange:
    """What a rescan found: files added, changed (reloaded) and removed."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class Catalogue:
    """Loaded personalities, their rejections, and the indexes matching uses.

    Threading: mutate (load, rescan) from one thread; the daemon does it on its loop.
    """

    def __init__(self, search_path: Sequence[str | Path] | None = None) -> None:
        """Make an empty catalogue over `search_path` (files or folders).

        None means :func:`default_search_path`. Nothing is read until
        :meth:`rescan` (or :meth:`load`).
        """
        paths = default_search_path() if search_path is None else search_path
        self.search_path = [Path(p) for p in paths]
        self.personalities: list[Personality] = []
        self.rejected: list[Rejection] = []
        self._files: dict[str, tuple[tuple[int, int, int] | None, list[Personality]]] = {}
        self._rejected_by_file: dict[str, list[Rejection]] = {}
        self._seq = 0
        self._by_class: dict[str, list[Personality]] = {}
        self._by_key: dict[tuple[str, tuple[str, int]], list[Personality]] = {}
        self._unindexed: dict[str, list[Personality]] = {}

    @classmethod
    def load(cls, search_path: Sequence[str | Path] | None = None) -> Catalogue:
        """Make a catalogue and read its search path now."""
        catalogue = cls(search_path)
        catalogue.rescan()
        return catalogue

    # ---- files ------------------------------------------------------------------------
    def _discover(self) -> list[Path]:
        found: list[Path] = []
        for entry in self.search_path:
            if entry.is_dir():
                found += sorted(p for p in entry.rglob("*.plist") if p.is_file())
            elif entry.is_file():
                found.append(entry)
        return list(dict.fromkeys(found))

    def rescan(self) -> CatalogueChange:
        """Load new and changed files, drop removed ones; return what changed."""
        change = CatalogueChange()
        present = {str(p): p for p in self._discover()}
        for name in [n for n in self._files if n not in present]:
            self._unload(name)
            change.removed.append(name)
        for name, path in present.items():
            signature = _signature(path)
            known = self._files.get(name)
            if known is not None and known[0] == signature:
                continue
            if known is not None:
                self._unload(name)
                change.changed.append(name)
            else:
                change.added.append(name)
            self._load_file(name, path, signature)
        if change:
            self.rejected = [r for rs in self._rejected_by_file.values() for r in rs]
            logger.info(
                "catalogue: %d added, %d changed, %d removed; %d personalities, %d problems",
                len(change.added), len(change.changed), len(change.removed),
                len(self.personalities), len(self.rejected),
            )  # fmt: skip
        return change

    def _load_file(self, name: str, path: Path, signature: tuple[int, int, int] | None) -> None:
        personalities, rejections = load_file(path)
        for rejection in rejections:
            logger.warning("%s", rejection)
        self._rejected_by_file[name] = rejections
        self._files[name] = (signature, personalities)
        self.add(personalities)

    def _unload(self, name: str) -> None:
        _, personalities = self._files.pop(name, (None, []))
        self._rejected_by_file.pop(name, None)
        gone = {id(p) for p in personalities}
        if not gone:
            return
        self.personalities = [p for p in self.personalities if id(p) not in gone]
        self._by_class = _without(self._by_class, gone)
        self._by_key = _without(self._by_key, gone)
        self._unindexed = _without(self._unindexed, gone)

    def add(self, personalities: Iterable[Personality]) -> None:
        """Add personalities (after every one already in), indexing them."""
        for personality in personalities:
            self._seq += 1
            personality.seq = self._seq
            self.personalities.append(personality)
            cls = personality.provider_class
            self._by_class.setdefault(cls, []).append(personality)
            keys = personality.compiled.index_keys
            if not keys:
                self._unindexed.setdefault(cls, []).append(personality)
            for key in keys:
                self._by_key.setdefault((cls, key), []).append(personality)

    # ---- lookups ----------------------------------------------------------------------
    def for_provider(self, nub: RegistryEntry) -> list[Personality]:
        """Every personality whose IOProviderClass is in the nub's class chain, in order."""
        found: list[Personality] = []
        for cls in nub.class_chain():
            found += self._by_class.get(cls, ())
        return sorted(found, key=_seq)

    def candidates(self, nub: RegistryEntry, ctx: MatchContext | None = None) -> list[Personality]:
        """The indexed subset of :meth:`for_provider` that can possibly match, in order."""
        ctx = ctx or MatchContext.for_entry(nub)
        keys = nub_index_keys_for(ctx)
        found: dict[int, Personality] = {}
        for cls in nub.class_chain():
            for personality in self._unindexed.get(cls, ()):
                found[personality.seq] = personality
            for key in keys:
                for personality in self._by_key.get((cls, key), ()):
                    found[personality.seq] = personality
        return [found[seq] for seq in sorted(found)]

    def linear(self, nub: RegistryEntry) -> list[Personality]:
        """A plain scan of every personality, testing the provider class of each."""
        chain = set(nub.class_chain())
        return [p for p in self.personalities if p.provider_class in chain]

    def files(self) -> list[str]:
        """The files loaded (or rejected) at the last scan."""
        return list(self._files)

    # ---- watching ---------------------------------------------------------------------
    def watch(
        self,
        work_loop: WorkLoop,
        interval: float = 2.0,
        on_change: Callable[[CatalogueChange], object] | None = None,
    ) -> TimerEventSource:
        """Rescan every `interval` seconds on `work_loop`, calling `on_change` on changes.

        Returns the timer source; remove it from the loop to stop watching.
        """

        def tick(source: TimerEventSource) -> None:
            try:
                change = self.rescan()
                if change and on_change is not None:
                    on_change(change)
            finally:
                source.set_timeout(interval)

        timer = TimerEventSource(self, tick)
        work_loop.add_event_source(timer)
        timer.set_timeout(interval)
        return timer


def _without(index: dict[_K, list[Personality]], gone: set[int]) -> dict[_K, list[Personality]]:
    return {key: [p for p in items if id(p) not in gone] for key, items in index.items()}


def _seq(personality: Personality) -> int:
    return personality.seq
