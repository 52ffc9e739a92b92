"""Personalities, the catalogue, family scoring rules and the explainer (imported as hwkit.matching)."""
