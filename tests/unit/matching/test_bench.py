"""The matching benchmark: valid synthetic data, agreement check, report."""

from __future__ import annotations

import random

from hwkit.matching.bench import BenchRow, format_rows, run, synthetic_catalogue
from hwkit.tools.cli import main


def test_synthetic_catalogue_is_valid_and_indexed():
    catalogue = synthetic_catalogue(200, random.Random(3))
    assert len(catalogue.personalities) == 200
    assert sum(1 for p in catalogue.personalities if not p.compiled.index_keys) == 0


def test_run_agrees_with_the_linear_scan_and_reports():
    rows = run(sizes=(30, 300), nub_count=40, seed=5)
    assert [r.size for r in rows] == [30, 300]
    assert all(r.indexed_us > 0 and r.linear_us > 0 and r.matched_nubs > 0 for r in rows)
    text = format_rows(rows, 40)
    assert "indexed time grows" in text and "while the catalogue grows 10x" in text


def test_report_says_when_the_goal_is_missed():
    rows = [BenchRow(100, 900.0, 900.0, 5, 1), BenchRow(10000, 1500.0, 90000.0, 5, 1)]
    text = format_rows(rows, 10)
    assert "NOT met" in text and "(linear scan timed on the first 5 nubs)" in text


def test_cli(capsys):
    assert main(["bench", "matching", "--sizes", "20", "40", "--nubs", "10"]) == 0
    assert "personalities   indexed us/nub" in capsys.readouterr().out
    assert main(["bench", "matching", "--nubs", "0"]) == 1
