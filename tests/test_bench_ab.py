"""bench/ab.py: the A/B verdict on made-up per-round figures (no benchmark is run)."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ab import FIGURES, Figure, compare, render, within


def appends(ms_at_10: float) -> dict[str, Any]:
    """Section 9's JSON data with the given append time at 10 interactions."""
    return {
        "9": {
            "10": {"first": 0.002, "next": ms_at_10 / 1e3, "file_bytes": 10_000},
            "5000": {"first": 0.003, "next": 0.001, "file_bytes": 5_000_000},
            "50000": {"first": 0.010, "next": 0.001, "file_bytes": 50_000_000},
        }
    }


def replay(rps: float, cpu_us: float = 300.0) -> dict[str, Any]:
    """Section 1's JSON data with the given llm-vcr throughput."""
    summary = {
        "llm-vcr": {"rps": rps, "cpu_per_request": cpu_us / 1e6},
        "server_replay": {"rps": 1000.0, "cpu_per_request": 400e-6},
        "canned": {"rps": 1200.0, "cpu_per_request": 250e-6},
    }
    return {"1": {"summary": summary, "hooks_us": {"llm-vcr": 50.0}}}


def row(rows: list[Any], name: str) -> Any:
    return next(r for r in rows if r.figure == name)


APPEND_10 = "append of 1 interaction at 10 interactions, ms"
THROUGHPUT = "replay throughput, req/s"


@pytest.mark.parametrize(("new", "status"), [(1.06, "MISS"), (1.04, "PASS"), (0.80, "PASS")])
def test_lower_is_better_six_percent_slower_is_a_miss(new: float, status: str) -> None:
    old_rounds = [appends(1.0), appends(0.9), appends(1.1)]  # median 1.0 ms
    new_rounds = [appends(new), appends(new - 0.1), appends(new + 0.1)]
    result = row(compare(old_rounds, new_rounds, ["9"]), APPEND_10)
    assert result.old_median == pytest.approx(1.0)
    assert result.new_median == pytest.approx(new)
    assert result.ratio == pytest.approx(new)
    assert result.status == status


@pytest.mark.parametrize(("new", "status"), [(940.0, "MISS"), (960.0, "PASS"), (1500.0, "PASS")])
def test_higher_is_better_six_percent_fewer_is_a_miss(new: float, status: str) -> None:
    old_rounds = [replay(1000.0), replay(990.0), replay(1010.0)]
    new_rounds = [replay(new), replay(new), replay(new)]
    assert row(compare(old_rounds, new_rounds, ["1"]), THROUGHPUT).status == status


def test_direction_is_respected() -> None:
    # More throughput and less CPU per request: both better. Less throughput and more CPU:
    # both worse, each by 10 %.
    better = compare([replay(1000.0, 300.0)], [replay(1100.0, 270.0)], ["1"])
    worse = compare([replay(1000.0, 300.0)], [replay(900.0, 330.0)], ["1"])
    cpu = "proxy CPU per replayed request, µs"
    assert row(better, THROUGHPUT).status == row(better, cpu).status == "PASS"
    assert row(worse, THROUGHPUT).status == row(worse, cpu).status == "MISS"
    assert within(100, 94, "higher") is False and within(100, 94, "lower") is True
    assert within(100, 106, "lower") is False and within(100, 106, "higher") is True


def test_medians_not_means() -> None:
    # One very slow new round does not decide; the median does.
    old_rounds = [appends(1.0)] * 3
    new_rounds = [appends(1.0), appends(1.02), appends(5.0)]
    assert row(compare(old_rounds, new_rounds, ["9"]), APPEND_10).status == "PASS"


def test_slack_for_differences_near_zero() -> None:
    figure = Figure("3", "3", "added, ms", "lower", lambda d: d["added"], "test", slack=0.1)
    rows = compare([{"3": {"added": 0.05}}], [{"3": {"added": 0.12}}], ["3"], figures=[figure])
    assert rows[0].status == "PASS"  # 0.07 ms worse: within 5 % + 0.1 ms
    rows = compare([{"3": {"added": 0.05}}], [{"3": {"added": 0.2}}], ["3"], figures=[figure])
    assert rows[0].status == "MISS"


def test_failed_sections_and_missing_figures() -> None:
    rows = compare([], [{"8": {"default_us": 1.0}}], ["8"],
                   failed={"8": ("old", "ImportError: no sessions")})
    assert [(r.status, r.note) for r in rows] == [
        ("not comparable", "old addon's run failed: ImportError: no sessions")]
    rows = compare([appends(1.0)], [appends(1.0)], ["9"],
                   failed={"9": ("new", "BenchError: boom")})
    assert rows[0].status == "FAILED"
    # The old run lacks a key the new one has: that figure alone is not comparable.
    old = appends(1.0)
    del old["9"]["50000"]
    rows = compare([old], [appends(1.0)], ["9"])
    assert row(rows, APPEND_10).status == "PASS"
    assert row(rows, "first append of a fresh store at 50,000 interactions, ms").status == (
        "not comparable")
    assert "not comparable" in render(rows, 1)


def test_figures_are_declared() -> None:
    """Each figure has a direction, a meaning and a section bench.run knows; no ratio of a
    zero."""
    from bench.run import SECTIONS

    for figure in FIGURES:
        assert figure.better in ("higher", "lower")
        assert figure.meaning and figure.source in SECTIONS
    assert math.isnan(compare([replay(0.0)], [replay(10.0)], ["1"])[0].ratio)
