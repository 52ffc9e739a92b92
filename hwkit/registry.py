"""The registry: entries with ids, names, classes and properties, linked in named planes.

I/O Kit keeps every device, nub and driver in one in-memory tree, the I/O Registry.
hwkit keeps the same tree in the daemon (and in any script that matches drivers
itself):

- an entry has a 64-bit id that is never reused, a name, an optional location, a class
  and a property table of plist types (:mod:`hwkit.properties`);
- entries are linked parent to child in named *planes*: :data:`SERVICE_PLANE`
  (``IOService``, providers above clients) and :data:`POWER_PLANE` (``IOPower``, the
  power-domain tree), each entry in as many planes as it is attached to;
- a path names an entry in a plane, ``IOService:/pci0000:00/0000:00:03.0``; a path
  component is the entry's name, or ``name@location`` when it has a location;
- :meth:`Registry.matching` looks entries up by a matching dictionary with the very
  code that matches personalities, as ``IOServiceGetMatchingServices`` does;
- :meth:`Registry.snapshot` serialises a subtree to JSON or to a plist.

Classes: an entry's class chain is its Python MRO, named with each class's ``ioclass``
(I/O Kit's names, ``IOPCIDevice``) or else its Python name and dotted path; a
personality's ``IOProviderClass`` matches any name in the chain, as ``metaCast`` does.
Entries described by data rather than by a Python class (the nubs of a nubs file) take
their chain from :data:`CLASS_PARENTS`. ``IOUSBDevice`` and ``IOUSBInterface`` are
accepted as aliases of ``IOUSBHostDevice`` and ``IOUSBHostInterface``. Serial ports are
published as ``IOSerialStreamSync`` nubs (the base class of I/O Kit's RS-232 and modem
stream classes, since a Linux tty does not say which one it is).

Threading: topology changes (attach, detach) and snapshots hold one registry-wide
lock, so readers on other threads see whole trees. Property reads and writes are
single dictionary operations.
"""

from __future__ import annotations

import itertools
import json
import plistlib
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from hwkit.errors import BadArgument, NotFoundError, UnsupportedError
from hwkit.properties import check_table, check_value, to_json

if TYPE_CHECKING:
    from hwkit.service import Resources

SERVICE_PLANE = "IOService"
POWER_PLANE = "IOPower"
PLANES = (SERVICE_PLANE, POWER_PLANE)

#: Superclass of every I/O Kit class name hwkit knows as data (nubs files, snapshots).
CLASS_PARENTS: dict[str, str | None] = {
    "IORegistryEntry": None,
    "IOService": "IORegistryEntry",
    "IOResources": "IOService",
    "IOUSBHostDevice": "IOService",
    "IOUSBHostInterface": "IOService",
    "IOPCIDevice": "IOService",
    "IOSerialStreamSync": "IOService",
}

#: Older I/O Kit names accepted wherever a class is named.
CLASS_ALIASES: dict[str, str] = {
    "IOUSBDevice": "IOUSBHostDevice",
    "IOUSBInterface": "IOUSBHostInterface",
}

_ids = itertools.count(0x100000100)
_MISSING = object()
#: Called as ``observer(entry, key)`` when one of the entry's properties changes.
PropertyObserver = Callable[["RegistryEntry", str], None]
_topology = threading.RLock()
_chains: dict[type, tuple[str, ...]] = {}


def canonical_class(name: str) -> str:
    """Return the canonical spelling of an I/O Kit class name (resolving aliases)."""
    return CLASS_ALIASES.get(name, name)


def known_class_chain(name: str) -> tuple[str, ...]:
    """Return the class chain (most specific first) of a class known by name.

    Raises:
        NotFoundError: the name is neither in :data:`CLASS_PARENTS` nor an alias.
    """
    current: str | None = canonical_class(name)
    if current not in CLASS_PARENTS:
        known = ", ".join(sorted(set(CLASS_PARENTS) | set(CLASS_ALIASES)))
        raise NotFoundError(f"class {name!r} is not a known provider class (known: {known})")
    chain = []
    while current is not None:
        chain.append(current)
        current = CLASS_PARENTS[current]
    return tuple(chain)


def _python_class_chain(cls: type) -> tuple[str, ...]:
    chain = _chains.get(cls)
    if chain is None:
        names: list[str] = []
        for klass in cls.__mro__:
            if not issubclass(klass, RegistryEntry):
                continue
            if "ioclass" in klass.__dict__:
                names.append(klass.__dict__["ioclass"])
            else:
                names += [klass.__name__, f"{klass.__module__}.{klass.__qualname__}"]
        chain = _chains[cls] = tuple(dict.fromkeys(names))
    return chain


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name or "/" in name or "@" in name:
        raise BadArgument(f"{what} {name!r} must be a non-empty string without '/' or '@'")
    return name


class RegistryEntry:
    """One node of the registry: id, name, class, properties and links in planes.

    Why a class of its own: nubs, drivers and the root all need the same bookkeeping,
    and snapshots and lookups work on any entry whatever it is.

    Threading: see the module docstring.
    """

    #: The I/O Kit class name of this Python class (subclasses set their own).
    ioclass: ClassVar[str] = "IORegistryEntry"

    def __init__(
        self,
        name: str | None = None,
        properties: Mapping[str, object] | None = None,
        *,
        location: str | None = None,
    ) -> None:
        """Make an unattached entry.

        Raises:
            BadArgument: the name or location contains '/' or '@', or a property is
                not a plist type.
        """
        self.entry_id: int = next(_ids)
        self._name = _check_name(name if name is not None else self.class_chain()[0], "name")
        self._location = None if location is None else _check_name(location, "location")
        self._properties: dict[str, Any] = check_table(properties or {})
        self._parents: dict[str, list[RegistryEntry]] = {}
        self._children: dict[str, list[RegistryEntry]] = {}
        self.registry: Registry | None = None
        self._property_observers: list[PropertyObserver] = []
        #: The once-per-entry events already announced (see Registry.notify).
        self._first_events: set[str] = set()

    # ---- identity -----------------------------------------------------------------
    @property
    def name(self) -> str:
        """The entry's name (the last component of its path, with the location)."""
        return self._name

    @property
    def location(self) -> str | None:
        """The entry's location (bus address within its parent), or None."""
        return self._location

    def class_chain(self) -> tuple[str, ...]:
        """The class names this entry answers to, most specific first."""
        return _python_class_chain(type(self))

    @property
    def class_name(self) -> str:
        """The most specific class name (what ``ioreg`` shows)."""
        return self.class_chain()[0]

    def conforms_to(self, class_name: str) -> bool:
        """True if the entry is of class `class_name` or a subclass (``metaCast``)."""
        return canonical_class(class_name) in self.class_chain()

    def __repr__(self) -> str:
        return f"<{self.class_name} {self._name!r} id={self.entry_id:#x}>"

    # ---- properties ---------------------------------------------------------------
    def get_property(self, key: str, default: Any = None) -> Any:
        """Return a property value, or `default` when the entry lacks it."""
        return self._properties.get(key, default)

    def has_property(self, key: str) -> bool:
        """True if the entry has the property."""
        return key in self._properties

    def properties(self) -> dict[str, Any]:
        """A shallow copy of the property table."""
        return dict(self._properties)

    def set_property(self, key: str, value: object) -> None:
        """Set one property (the entry's own code; clients go through set_properties).

        Raises:
            BadArgument: the key is not a string or the value not a plist type.
        """
        if not isinstance(key, str):
            raise BadArgument(f"property name {key!r} is not a string")
        value = check_value(value, f"property {key!r} of {self._name}")
        old = self._properties.get(key, _MISSING)
        self._properties[key] = value
        if self._property_observers and (type(old) is not type(value) or old != value):
            self._property_changed(key)

    def remove_property(self, key: str) -> None:
        """Remove a property if present."""
        if self._properties.pop(key, _MISSING) is not _MISSING and self._property_observers:
            self._property_changed(key)

    def add_property_observer(self, observer: PropertyObserver) -> Callable[[], None]:
        """Call ``observer(entry, key)`` whenever a property changes value, appears or goes.

        Why: clients with interest in a service get ``SERVICE_PROPERTY_CHANGE`` with the
        changed keys (the daemon's broker batches them per loop turn). A property set
        to the value it had is no change. Observers run on the thread that set the
        property and must not block.

        Returns:
            A function that removes the observer.
        """
        self._property_observers.append(observer)

        def remove() -> None:
            if observer in self._property_observers:
                self._property_observers.remove(observer)

        return remove

    def _property_changed(self, key: str) -> None:
        for observer in list(self._property_observers):
            observer(self, key)

    def set_properties(self, properties: Mapping[str, object]) -> None:
        """Apply properties a client asked to set; the default refuses, as I/O Kit's does.

        Subclasses that accept settings override this and validate every key.

        Raises:
            UnsupportedError: always, unless overridden.
        """
        raise UnsupportedError(
            f"{self.class_name} {self._name!r} does not accept properties from clients"
        )

    # ---- planes -------------------------------------------------------------------
    def attach_to_parent(self, parent: RegistryEntry, plane: str = SERVICE_PLANE) -> bool:
        """Link this entry under `parent` in `plane`; False if already linked there.

        Raises:
            BadArgument: unknown plane, or the link would make a cycle.
        """
        _check_plane(plane)
        with _topology:
            if parent is self or self in parent.ancestors(plane):
                raise BadArgument(f"attaching {self!r} under {parent!r} would make a cycle")
            parents = self._parents.setdefault(plane, [])
            if parent in parents:
                return False
            parents.append(parent)
            parent._children.setdefault(plane, []).append(self)
            if parent.registry is not None:
                parent.registry._adopt(self)
            return True

    def detach_from_parent(self, parent: RegistryEntry, plane: str = SERVICE_PLANE) -> None:
        """Remove the link to `parent` in `plane` (nothing happens if there is none)."""
        _check_plane(plane)
        with _topology:
            if parent in self._parents.get(plane, []):
                self._parents[plane].remove(parent)
                parent._children[plane].remove(self)
            if self.registry is not None:
                self.registry._forget_unreachable(self)

    def parent(self, plane: str = SERVICE_PLANE) -> RegistryEntry | None:
        """The first parent in `plane`, or None."""
        parents = self._parents.get(plane)
        return parents[0] if parents else None

    def parents(self, plane: str = SERVICE_PLANE) -> list[RegistryEntry]:
        """All parents in `plane`, in attach order."""
        return list(self._parents.get(plane, ()))

    def children(self, plane: str = SERVICE_PLANE) -> list[RegistryEntry]:
        """All children in `plane`, in attach order."""
        return list(self._children.get(plane, ()))

    def in_plane(self, plane: str) -> bool:
        """True if the entry has a parent (or is the root) in `plane`."""
        return bool(self._parents.get(plane)) or (
            self.registry is not None and self is self.registry.root
        )

    def ancestors(self, plane: str = SERVICE_PLANE) -> Iterator[RegistryEntry]:
        """Parents, grandparents, ... following first parents, nearest first."""
        seen: set[int] = set()
        current = self.parent(plane)
        while current is not None and current.entry_id not in seen:
            seen.add(current.entry_id)
            yield current
            current = current.parent(plane)

    def descendants(self, plane: str = SERVICE_PLANE) -> Iterator[RegistryEntry]:
        """Every entry below this one, depth first, each once."""
        seen: set[int] = set()
        stack = list(reversed(self.children(plane)))
        while stack:
            entry = stack.pop()
            if entry.entry_id in seen:
                continue
            seen.add(entry.entry_id)
            yield entry
            stack.extend(reversed(entry.children(plane)))

    def path_component(self) -> str:
        """``name`` or ``name@location``."""
        return self._name if self._location is None else f"{self._name}@{self._location}"

    def path(self, plane: str = SERVICE_PLANE) -> str:
        """The entry's path in `plane`, ``IOService:/a/b``; the root is ``IOService:/``."""
        chain = [self, *self.ancestors(plane)]
        top = chain[-1]
        if top.registry is not None and top is top.registry.root:
            chain.pop()
        return f"{plane}:/" + "/".join(e.path_component() for e in reversed(chain))

    # ---- snapshots ----------------------------------------------------------------
    def snapshot(self, plane: str = SERVICE_PLANE) -> dict[str, Any]:
        """This entry and its subtree as plain data (see :meth:`Registry.snapshot`)."""
        with _topology:
            node: dict[str, Any] = {
                "id": self.entry_id,
                "name": self._name,
                "class": self.class_name,
                "path": self.path(plane),
                "properties": self.properties(),
                "children": [child.snapshot(plane) for child in self.children(plane)],
            }
            if self._location is not None:
                node["location"] = self._location
            return node


def _check_plane(plane: str) -> None:
    if plane not in PLANES:
        raise BadArgument(f"unknown plane {plane!r} (planes: {', '.join(PLANES)})")


Observer = Callable[[str, RegistryEntry], None]

#: Events an entry gets once, the first time its recurring event happens: I/O Kit's
#: kIOFirstPublishNotification and kIOFirstMatchNotification, which unlike publish and
#: match do not fire again when a service registers again.
FIRST_EVENTS = {"published": "first_published", "matched": "first_matched"}


class Registry:
    """One registry: a root entry, the IOResources nub, an id index and observers.

    Why an object rather than a global: tests, ``hwkit match`` and the daemon each
    build their own registry, and none must see another's entries.

    Observers are called as ``observer(event, entry)`` for ``"published"``,
    ``"matched"``, ``"terminated"`` and ``"freed"`` events, on the thread that caused
    them; they must not block. The first ``"published"`` and the first ``"matched"``
    of an entry are preceded by ``"first_published"`` / ``"first_matched"``
    (:data:`FIRST_EVENTS`).
    """

    def __init__(self) -> None:
        from hwkit.service import Resources

        self.root = RegistryEntry("Root")
        self.root.registry = self
        self._entries: dict[int, RegistryEntry] = {self.root.entry_id: self.root}
        self.observers: list[Observer] = []
        #: Called with a nub when it registers (the matching engine sets this).
        self.publish_hook: Callable[[Any], None] | None = None
        #: The work loop nubs without a provider of their own run on (none by default).
        self.work_loop: Any = None
        self.resources: Resources = Resources()
        self.resources.attach_to_parent(self.root)

    def _adopt(self, entry: RegistryEntry) -> None:
        for item in [entry, *entry.descendants(SERVICE_PLANE), *entry.descendants(POWER_PLANE)]:
            item.registry = self
            self._entries[item.entry_id] = item

    def _forget_unreachable(self, entry: RegistryEntry) -> None:
        """Drop `entry` and its subtree from the id index if the root no longer reaches them."""
        for item in [entry, *entry.descendants(SERVICE_PLANE), *entry.descendants(POWER_PLANE)]:
            if not self._reaches_root(item):
                self._entries.pop(item.entry_id, None)

    def _reaches_root(self, entry: RegistryEntry) -> bool:
        seen: set[int] = set()
        stack = [entry]
        while stack:
            current = stack.pop()
            if current is self.root:
                return True
            if current.entry_id in seen:
                continue
            seen.add(current.entry_id)
            for plane in PLANES:
                stack.extend(current.parents(plane))
        return False

    def notify(self, event: str, entry: RegistryEntry) -> None:
        """Tell every observer about `event` on `entry` (and its first-time twin, once)."""
        first = FIRST_EVENTS.get(event)
        if first is not None and first not in entry._first_events:
            entry._first_events.add(first)
            for observer in list(self.observers):
                observer(first, entry)
        for observer in list(self.observers):
            observer(event, entry)

    def entry(self, entry_id: int) -> RegistryEntry:
        """Look an entry up by id.

        Raises:
            NotFoundError: no attached entry has that id.
        """
        try:
            return self._entries[entry_id]
        except KeyError:
            raise NotFoundError(f"no registry entry with id {entry_id:#x}") from None

    def from_path(self, path: str) -> RegistryEntry:
        """Look an entry up by path (``IOService:/a/b@3``; a bare ``/a/b`` is the service plane).

        Raises:
            BadArgument: the plane is unknown.
            NotFoundError: a component names no child; the message says which.
        """
        plane, sep, rest = path.partition(":/")
        if not sep:
            if not path.startswith("/"):
                raise BadArgument(f"path {path!r} must start with '/' or 'PLANE:/'")
            plane, rest = SERVICE_PLANE, path[1:]
        _check_plane(plane)
        entry = self.root
        for component in filter(None, rest.split("/")):
            entry = next(
                (c for c in entry.children(plane) if c.path_component() == component), None
            ) or self._missing(path, component, entry)
        return entry

    @staticmethod
    def _missing(path: str, component: str, entry: RegistryEntry) -> RegistryEntry:
        raise NotFoundError(f"{path}: {entry.path()} has no child {component!r}")

    def entries(self, plane: str = SERVICE_PLANE) -> list[RegistryEntry]:
        """Every entry in `plane`, root first, depth first."""
        with _topology:
            return [self.root, *self.root.descendants(plane)]

    def matching(self, table: Mapping[str, object]) -> list[RegistryEntry]:
        """Entries that a matching dictionary matches (``IOServiceGetMatchingServices``).

        The dictionary is a personality without ``IOClass``: ``IOProviderClass`` (the
        class to look for), any generic key, and the family keys, compiled and run by
        the same code that matches personalities.

        Raises:
            BadArgument: the dictionary is not valid; the message names the key.
        """
        from hwkit.matching.rules import compile_matching_table

        compiled = compile_matching_table(table)
        return [e for e in self.entries() if compiled.matches(e, self)]

    def snapshot(self, plane: str = SERVICE_PLANE, root: RegistryEntry | None = None) -> dict:
        """The tree below `root` (default: the registry root) as nested plain data.

        Each node is ``{"id", "name", "class", "path", "properties", "children"}`` plus
        ``"location"`` when the entry has one.
        """
        _check_plane(plane)
        return (root or self.root).snapshot(plane)

    def snapshot_json(self, plane: str = SERVICE_PLANE, root: RegistryEntry | None = None) -> str:
        """The snapshot as JSON text (data properties as ``{"$data": base64}``)."""
        return json.dumps(to_json(self.snapshot(plane, root)), indent=2, sort_keys=True)

    def snapshot_plist(
        self, plane: str = SERVICE_PLANE, root: RegistryEntry | None = None
    ) -> bytes:
        """The snapshot as an XML plist (bytes), as ``ioreg -a`` gives."""
        return plistlib.dumps(self.snapshot(plane, root), sort_keys=True)
