"""`hwkit bench ipc` runs end to end (its own daemon) and reports every figure."""

from __future__ import annotations

import json

from hwkit.tools.cli import main


def test_bench_ipc_reports_calls_and_queues_against_the_bare_socket(capsys):
    assert main(["bench", "ipc", "--calls", "200", "--messages", "2000", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    for key in ("call", "call_socket"):
        assert 0 < results[key]["p50_us"] <= results[key]["p99_us"]
    for size in (64, 4096):
        for key in (f"queue_{size}", f"queue_{size}_socket"):
            assert results[key]["messages_per_s"] > 0
            assert results[key]["mb_per_s"] > 0
        assert results[f"queue_{size}_ratio"] > 0
    placements = results["placements"]
    assert placements and set(placements) <= {"one CPU", "two CPUs", "unpinned"}
    for figures in placements.values():
        assert 0 < figures["call"]["p50_us"] <= figures["call"]["p99_us"]
        assert figures["ratio_p50"] > 0
    # The headline is the placement where hwkit compares worst.
    assert results["call_ratio_p50"] == max(f["ratio_p50"] for f in placements.values())
