"""Personalities, the catalogue, family scoring rules, the engine and the explainer.

Installed as ``hwkit.matching``.
"""
