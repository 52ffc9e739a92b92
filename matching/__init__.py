"""Personalities, the catalogue, family scoring rules, the engine and the explainer.

Installed as ``hwkit.matching``. The names below are its public API; the modules
behind them are private.

How it follows I/O Kit (xnu ``probeCandidates``, IOUSBHostFamily, IOPCIFamily,
QA1076), and where Linux makes hwkit differ:

- Matching runs when a nub registers: passive match (IOProviderClass by class chain,
  generic keys, family keys), sort by score with ties in catalogue order, ``probe``,
  then start-until-success per ``IOMatchCategory`` (:mod:`.engine`).
- USB keys allow only Apple's combinations (:mod:`.usb`); PCI match strings are
  IOPCIFamily's (:mod:`.pci`); the generic keys AND together (:mod:`.rules`).
- Linux differences: (1) a device bound to a Linux kernel driver (the nub's
  ``HWKernelDriver`` property) already has a client in ``IODefaultMatchCategory``;
  a personality takes it over only with ``HWDetachKernelDriver``. (2) A personality
  whose ``IOResourceMatch`` names an unpublished resource fails to match and is
  matched again when the resource is published, where macOS would make it wait.
  (3) ``IOClass`` is a Python dotted path, imported only when a driver is about to be
  instantiated; the class chain of a Python object is its MRO. (4) Personalities are
  validated at load and a bad file is skipped whole, where macOS accepts any
  dictionary and fails silently at match time. (5) PCI matching adds no family score
  (as on x86 Macs); order PCI drivers with IOProbeScore.
"""

from hwkit.matching.catalogue import Catalogue, CatalogueChange, default_search_path
from hwkit.matching.context import Failure
from hwkit.matching.engine import MatchingEngine
from hwkit.matching.explain import format_nub, format_summary, report_json
from hwkit.matching.matcher import Candidate, NubMatch, match_nub
from hwkit.matching.nubs import build_nubs, load_nubs, nubs_to_json
from hwkit.matching.personality import Personality, Rejection, load_file, parse_personalities
from hwkit.matching.rules import compile_matching_table

__all__ = [
    "Candidate",
    "Catalogue",
    "CatalogueChange",
    "Failure",
    "MatchingEngine",
    "NubMatch",
    "Personality",
    "Rejection",
    "build_nubs",
    "compile_matching_table",
    "default_search_path",
    "format_nub",
    "format_summary",
    "load_file",
    "load_nubs",
    "match_nub",
    "nubs_to_json",
    "parse_personalities",
    "report_json",
]
