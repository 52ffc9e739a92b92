"""Command-line front ends: `hwkit` and `hwkit-daemon` (imported as hwkit.tools)."""
