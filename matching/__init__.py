"""Personalities, the catalogue, family scoring rules, the engine and the explainer.

Installed as ``hwkit.matching``. The names below are its public API; the modules
behind them are private.
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
