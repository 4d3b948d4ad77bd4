"""A/B of two addons: `scripts/bench --baseline-addon-dir OLD [--addon-dir NEW] [--rounds N]
[--only 1,9] [--quick] [--json FILE] [--keep] [--run-timeout S]`.

Runs every selected section `rounds` times for the baseline addon ("old") and for the measured
one ("new", `--addon-dir`, by default this checkout's `addon/`), each run in a process of its own
(`python -m bench.run --only S --json TMP --addon-dir D [--quick]`), so a section one addon cannot
run (a feature the old addon does not have) is reported instead of ending the A/B. Each run has
a process group of its own, stopped with everything in it after `--run-timeout` seconds (600
with `--quick`, else 1800; the old addon's O(n) appends never finish section 10) or when the A/B
is interrupted; a failed or stopped run ends its section's rounds, and the section is "not
comparable" (old addon) or FAILED (new addon).

Order: section by section; within a section the two addons alternate ABBA (old, new, new, old,
old, new, ...), so every round's pair ran back to back and neither addon always goes first.

Verdict: for each headline figure (`FIGURES`), the median over the old runs against the median
over the new ones (unpaired); PASS when the new median is not more than `TOLERANCE` (5 %) worse
than the old one in the figure's direction, plus the figure's absolute `slack` for the few
figures that are differences near zero ("recording adds ..."), where 5 % of almost nothing is
noise. The comparison (`compare`) is a pure function of the runs' JSON dicts.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Literal

from .figures import median, percentile

REPO_ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.05  # new may be at most 5 % worse than old
SIDES = ("old", "new")
ORDER = "ABBA within each section: old, new, new, old, old, new, ..."

Better = Literal["higher", "lower"]
Data = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Figure:
    """One headline figure of a section, read from that section's JSON data (what the section
    function returned, `figures[section]` of `--json`), in the unit of its name."""

    section: str  # the section shown ("6" is read from section 2's data)
    source: str  # the section whose data holds it
    name: str  # what it is, with its unit
    better: Better
    read: Callable[[Data], float]
    meaning: str  # how the section measured it
    slack: float = 0.0  # an absolute allowance (in the figure's unit) on top of the tolerance


def _largest(by_size: Mapping[Any, Any]) -> Any:
    """The entry of the largest cassette size (JSON turns the int sizes into strings)."""
    return by_size[max(by_size, key=lambda size: int(size))]


def _startup(data: Data, store: Literal["empty", "full"], key: str) -> float:
    """Median over the section's start-up rounds of `key` for the addon with the empty store or
    with the store of many cassettes (whose variant name carries the count)."""
    for name, runs in data["startup"].items():
        if name.startswith("llm-vcr") and ("empty" in name) == (store == "empty"):
            return median([run[key] for run in runs])
    raise KeyError(f"no llm-vcr start-up variant with a {store} store")


def _added(values: Mapping[str, Any], key: str = "llm-vcr record", base: str = "mitmdump") -> float:
    return float(values[key] - values[base])


FIGURES: tuple[Figure, ...] = (
    # 1. Replay throughput
    Figure("1", "1", "replay throughput, req/s", "higher",
           lambda d: d["summary"]["llm-vcr"]["rps"],
           "llm-vcr replaying (8 clients, TLS keep-alive): measured requests per second, median "
           "of the section's rounds"),
    Figure("1", "1", "replay throughput / server_replay's in the same run, x", "higher",
           lambda d: d["summary"]["llm-vcr"]["rps"] / d["summary"]["server_replay"]["rps"],
           "the same throughput divided by mitmproxy's server_replay under the same load in the "
           "same run: what other load on the machine changes cancels out"),
    Figure("1", "1", "proxy CPU per replayed request, µs", "lower",
           lambda d: d["summary"]["llm-vcr"]["cpu_per_request"] * 1e6,
           "CPU seconds of the llm-vcr mitmdump (all threads) over the measured phase / requests"),
    Figure("1", "1", "answering hooks alone, CPU per request, µs", "lower",
           lambda d: d["hooks_us"]["llm-vcr"],
           "requestheaders + request + response in-process, no sockets (bench/hook_cost.py), "
           "best of 5"),
    # 2 and 6. Lookup by cassette size; memory of the loaded cassette
    Figure("2", "2", "replay p50 at the largest cassette, 1 client, ms", "lower",
           lambda d: _largest(d["p50"]) * 1e3,
           "latency p50 of requests spread at random over the largest cassette (100,000; "
           "10,000 with --quick), median of rounds"),
    Figure("2", "2", "proxy CPU per request at the largest cassette, µs", "lower",
           lambda d: _largest(d["cpu_per_request"]) * 1e6,
           "CPU of that proxy over the measured phase / requests, median of rounds"),
    Figure("2", "2", "first request to the largest cassette (loads it), ms", "lower",
           lambda d: _largest(d["memory"])["first_request"] * 1e3,
           "latency of the one request that makes the proxy load the largest cassette"),
    Figure("6", "2", "RSS added by the largest cassette loaded, MB", "lower",
           lambda d: (_largest(d["memory"])["loaded"] - _largest(d["memory"])["idle"]) / 1e6,
           "VmRSS after the loading request minus VmRSS of the same proxy idle"),
    # 3. Record overhead
    Figure("3", "3", "recording adds to the first event (p50 vs mitmdump), ms", "lower",
           lambda d: (percentile(d["first_event"]["llm-vcr record"], 50)
                      - percentile(d["first_event"]["mitmdump"], 50)) * 1e3,
           "request sent → SSE event 0 at the client, p50 through llm-vcr recording minus p50 "
           "through plain mitmdump", slack=0.1),
    Figure("3", "3", "recording adds per chunk (p50 vs mitmdump), ms", "lower",
           lambda d: _added(d["chunk_delays_p50"]) * 1e3,
           "upstream send → arrival at the client per SSE event, p50 through llm-vcr recording "
           "minus p50 through plain mitmdump", slack=0.1),
    # 4. Timed replay
    Figure("4", "4", "timed replay error p50 (staggered starts), ms", "lower",
           lambda d: d["staggered"]["p50"] * 1e3,
           "|arrival − request sent − recorded offset| over every event of 20 concurrent "
           "streams", slack=0.1),
    Figure("4", "4", "timed replay error p99 (staggered starts), ms", "lower",
           lambda d: d["staggered"]["p99"] * 1e3, "the same, p99", slack=0.1),
    Figure("4", "4", "timed replay error p99 (all streams at once), ms", "lower",
           lambda d: d["burst"]["p99"] * 1e3,
           "the same with all 20 clients starting in the same millisecond", slack=0.1),
    # 5. Files and start-up
    Figure("5", "5", "corpus load, MB/s", "higher",
           lambda d: d["codec"]["bytes"] / d["codec"]["load_s"] / 1e6,
           "cassette.load of every corpus file, best of N, fresh process"),
    Figure("5", "5", "corpus save (dumps), MB/s", "higher",
           lambda d: d["codec"]["bytes"] / d["codec"]["dumps_s"] / 1e6,
           "cassette.dumps of every loaded corpus cassette, best of N"),
    Figure("5", "5", "load of 10,000 small interactions, MB/s", "higher",
           lambda d: d["codec"]["synthetic"]["bytes"] / d["codec"]["synthetic"]["load_s"] / 1e6,
           "cassette.loads of one synthetic cassette (many short scalars), best of N"),
    Figure("5", "5", "save of 10,000 small interactions, MB/s", "higher",
           lambda d: d["codec"]["synthetic"]["bytes"] / d["codec"]["synthetic"]["dumps_s"] / 1e6,
           "cassette.dumps of it, best of N"),
    Figure("5", "5", "start-up to the first answer, empty store, s", "lower",
           lambda d: _startup(d, "empty", "answer"),
           "mitmdump -s vcr.py started → first answer to a proxied request, median of rounds"),
    Figure("5", "5", "start-up to the first answer, 10,000 cassettes, s", "lower",
           lambda d: _startup(d, "full", "answer"),
           "the same with a store of 10,000 cassettes in 100 folders"),
    Figure("5", "5", "CPU used by the first answer, 10,000 cassettes, s", "lower",
           lambda d: _startup(d, "full", "cpu"),
           "CPU seconds of that mitmdump by its first answer, median of rounds"),
    # 7. Sustained recording
    Figure("7", "7", "sustained recording throughput, interactions/s", "higher",
           lambda d: median([p["rate"] for p in d["phases"]]),
           "64 clients streaming at all times into 100 cassettes, recorded streams per second, "
           "median of the checkpoints' phases"),
    Figure("7", "7", "proxy CPU per recorded stream, µs", "lower",
           lambda d: median([p["proxy_cpu_per_stream"] for p in d["phases"]]) * 1e6,
           "CPU of the recording mitmdump per stream, median of the phases"),
    Figure("7", "7", "RSS at the last checkpoint, MB", "lower",
           lambda d: d["phases"][-1]["rss"] / 1e6,
           "VmRSS of the recording mitmdump once its store holds the last checkpoint's count"),
    # 8. Sessions
    Figure("8", "8", "answering hooks, default session, µs", "lower",
           lambda d: d["default_us"], "in-process CPU per replayed request, best of 7 rounds"),
    Figure("8", "8", "answering hooks, explicit session, µs", "lower",
           lambda d: d["session_us"], "the same with X-VCR-Session"),
    Figure("8", "8", "memory of 1,000 open sessions, MB", "lower",
           lambda d: d["sessions_mb"], "RSS after opening them, beyond the loaded cassette",
           slack=1.0),
    # 9. Appends
    *(
        Figure("9", "9", f"append of 1 interaction at {size:,} interactions, ms", "lower",
               lambda d, size=size: d[str(size)]["next"] * 1e3,
               "CassetteStore.append (fsync included), median of 100, fresh process")
        for size in (10, 5_000, 50_000)
    ),
    Figure("9", "9", "first append of a fresh store at 50,000 interactions, ms", "lower",
           lambda d: d["50000"]["first"] * 1e3,
           "the first append, which learns the file's layout from its last bytes"),
    # 10. A shared proxy under a fleet's load
    *(
        Figure("10", "10", f"new_episodes latency p50, {name}, ms", "lower",
               lambda d, name=name: d["recording"][name]["p50"] * 1e3,
               "8 clients, every request recorded and appended to one shared cassette; latency "
               "at the client")
        for name in ("empty", "15,000", "15,000 hand-edited", "15,000, two proxies")
    ),
    Figure("10", "10", "load of the big cassette beside other clients, s", "lower",
           lambda d: d["stall"]["load_s"],
           "the request that needs the ~100 MB cassette (30,000 interactions with --quick), "
           "sent to answered"),
    Figure("10", "10", "other clients' latency p99 during that load, ms", "lower",
           lambda d: d["stall"]["p99"] * 1e3,
           "4 clients replaying from a small cassette; every request in flight during the load"),
    # 11. The pytest plugin
    Figure("11", "11", "pytest plugin's cost per test, ms", "lower",
           lambda d: d["per_test_ms"],
           "per-test slope between 20 and 100 tests, with the plugin minus without", slack=1.0),
    Figure("11", "11", "pytest plugin starting its own proxy, s", "lower",
           lambda d: d["start_s"], "launch to the first test, with the plugin's proxy − without"),
)


@dataclass(slots=True)
class ABRow:
    """One line of the A/B table. `status`: PASS, MISS, "not comparable" (the old addon could not
    give this figure) or FAILED (the measured addon could not)."""

    section: str
    figure: str
    better: Better | None
    old: list[float] = field(default_factory=list)
    new: list[float] = field(default_factory=list)
    allowed: str = ""
    status: str = ""
    note: str = ""

    @property
    def old_median(self) -> float:
        return median(self.old)

    @property
    def new_median(self) -> float:
        return median(self.new)

    @property
    def ratio(self) -> float:
        """new / old medians; NaN when it would mislead (a side zero or negative)."""
        old, new = self.old_median, self.new_median
        return new / old if old > 0 and new >= 0 else math.nan


def within(old: float, new: float, better: Better, tolerance: float = TOLERANCE,
           slack: float = 0.0) -> bool:
    """New is not more than `tolerance` (a fraction of |old|) plus `slack` worse than old."""
    worse = new - old if better == "lower" else old - new
    return worse <= tolerance * abs(old) + slack


def _read(figure: Figure, rounds: Sequence[Data]) -> list[float]:
    """The figure's value in every round that has its section; a round where the figure cannot
    be read (an older section without that key) gives none."""
    values = []
    for run in rounds:
        if figure.source not in run:
            continue
        try:
            value = float(figure.read(run[figure.source]))
        except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError):
            continue
        if math.isfinite(value):
            values.append(value)
    return values


def compare(
    old_rounds: Sequence[Data],
    new_rounds: Sequence[Data],
    sections: Sequence[str],
    *,
    failed: Mapping[str, tuple[str, str]] | None = None,
    figures: Sequence[Figure] = FIGURES,
    tolerance: float = TOLERANCE,
) -> list[ABRow]:
    """The A/B rows of `sections` from the per-round `--json` dicts of each addon (a dict maps a
    section to its data; rounds that lack a section are skipped). `failed` maps a section to the
    side whose run failed ("old" or "new") and why: its figures are not compared."""
    failed = failed or {}
    rows: list[ABRow] = []
    for section in sections:
        if section in failed:
            side, reason = failed[section]
            rows.append(ABRow(
                section, "(the whole section)", None,
                status="not comparable" if side == "old" else "FAILED",
                note=f"{side} addon's run failed: {reason}",
            ))
            continue
        for figure in (f for f in figures if f.source == section):
            row = ABRow(figure.section, figure.name, figure.better,
                        _read(figure, old_rounds), _read(figure, new_rounds))
            sign = "≥" if figure.better == "higher" else "≤"
            limit = 1 - tolerance if figure.better == "higher" else 1 + tolerance
            row.allowed = f"{sign} {limit:.2f}x" + (
                f" {'−' if figure.better == 'higher' else '+'} {figure.slack:g}"
                if figure.slack else "")
            if not row.old:
                row.status, row.note = "not comparable", "no value for the old addon"
            elif not row.new:
                row.status, row.note = "FAILED", "no value for the new addon"
            else:
                ok = within(row.old_median, row.new_median, figure.better, tolerance,
                            figure.slack)
                row.status = "PASS" if ok else "MISS"
            rows.append(row)
    return rows


def number(value: float) -> str:
    """A figure with about three significant digits."""
    if math.isnan(value):
        return "—"
    size = abs(value)
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _side(values: Sequence[float]) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return number(values[0])
    return f"{number(median(values))} ({number(min(values))}–{number(max(values))})"


def render(rows: Sequence[ABRow], rounds: int) -> str:
    """The rows as one Markdown table: medians, (min–max over the rounds), new/old, verdict."""
    of = f", median of {rounds} (min–max)" if rounds > 1 else " (1 round)"
    header = ("#", "figure", "better", f"old{of}", f"new{of}", "new/old", "allowed", "")
    lines = [header]
    for r in rows:
        if r.better is None:
            lines.append((r.section, f"{r.figure}: {r.note}", "", "", "", "", "", r.status))
            continue
        verdict = r.status + (f" ({r.note})" if r.note else "")
        lines.append((r.section, r.figure, r.better, _side(r.old), _side(r.new),
                      "—" if math.isnan(r.ratio) else f"{r.ratio:.3f}", r.allowed, verdict))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def fmt(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|",
                      *(fmt(line) for line in lines[1:])])


# ---------------------------------------------------------------------------------------------
# Running the rounds


@dataclass(slots=True)
class Run:
    """One `bench.run` process: its JSON (None when it failed) and why it failed."""

    data: dict[str, Any] | None
    seconds: float
    reason: str = ""


def _reason(stderr: str) -> str:
    """The last line of a failed run's stderr (a traceback's exception line; a nested process's
    failure ends with that process's own exception); for an exception without a message (a
    bare `assert`), the place and the line of code that raised it too."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else "no output"
    if ":" not in last:
        places = [n for n, line in enumerate(lines) if line.startswith('File "')]
        if places:
            where = lines[places[-1]].split('"')
            code = next((line for line in lines[places[-1] + 1:]
                         if not set(line) <= set("^~ ")), "")
            if len(where) >= 3:
                last += f" at {Path(where[1]).name}{where[2].split(',')[1].replace(' line ', ':')}"
            last += f": {code}" if code and code != last else ""
    return last if len(last) <= 200 else last[:197] + "..."


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a run and everything it started (its own process group): SIGINT first, so it stops
    its proxies and upstream itself (`Lab.close`), then SIGKILL for whatever is left."""
    try:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(60)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def run_section(section: str, addon_dir: Path, quick: bool, folder: Path, label: str,
                timeout: float) -> Run:
    """`python -m bench.run --only SECTION --json ... --addon-dir ADDON_DIR [--quick]` in a
    process group of its own, stopped after `timeout` seconds; its output goes to
    `folder/<label>.out|.err`."""
    json_file = folder / f"{label}.json"
    command = [sys.executable, "-m", "bench.run", "--only", section, "--json", str(json_file),
               "--addon-dir", str(addon_dir), *(["--quick"] if quick else [])]
    started = time.monotonic()
    with (folder / f"{label}.out").open("wb") as out, (folder / f"{label}.err").open("wb") as err:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=out, stderr=err,
                                   start_new_session=True)
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            _stop(process)
            return Run(None, time.monotonic() - started, f"timed out after {timeout:.0f} s")
        except BaseException:  # interrupted: take the run's proxies and load down with it
            _stop(process)
            raise
    with contextlib.suppress(ProcessLookupError):  # nothing of the run outlives it
        os.killpg(process.pid, signal.SIGKILL)
    seconds = time.monotonic() - started
    stderr = (folder / f"{label}.err").read_text(errors="replace")
    if code != 0:
        return Run(None, seconds, _reason(stderr))
    data: dict[str, Any] = json.loads(json_file.read_text())
    if section not in data:
        return Run(None, seconds, f"no figures for section {section} in {json_file}")
    return Run(data, seconds)


def run_ab(
    *,
    baseline: Path,
    measured: Path,
    sections: Sequence[str],
    rounds: int,
    quick: bool,
    description: Sequence[str],
    json_path: Path | None = None,
    keep: bool = False,
    run_timeout: float | None = None,
) -> int:
    """Run the A/B and print its table on stdout (progress on stderr). A run longer than
    `run_timeout` seconds (default 600 with `quick`, else 1800) is stopped and its section not
    compared. 1 when a run of the measured addon failed, else 0 (MISS rows do not change the
    exit code, as in `bench.run`)."""
    timeout = run_timeout if run_timeout is not None else (600.0 if quick else 1800.0)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def terminated(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")  # stops the running section's processes

    previous = signal.signal(signal.SIGTERM, terminated)

    dirs = {"old": baseline, "new": measured}
    for line in description:
        say(line)
    say(f"A/B: old {baseline} · new {measured}; sections {', '.join(sections)}; {rounds} round(s) "
        f"each{' (--quick)' if quick else ''}; {ORDER}; a run stops after {timeout:.0f} s")
    folder = Path(tempfile.mkdtemp(prefix="llm-vcr-ab-"))
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    failed: dict[str, tuple[str, str]] = {}
    load = [os.getloadavg()[0]]
    started = time.monotonic()
    try:
        for section in sections:
            runs[section] = {"old": [], "new": []}
            for round_number in range(rounds):
                order = SIDES if round_number % 2 == 0 else SIDES[::-1]
                for side in order:
                    label = f"s{section}-r{round_number + 1}-{side}"
                    run = run_section(section, dirs[side], quick, folder, label, timeout)
                    load.append(os.getloadavg()[0])
                    if run.data is None:
                        failed[section] = (side, run.reason)
                        say(f"   section {section} round {round_number + 1} {side}: FAILED after "
                            f"{run.seconds:.0f} s: {run.reason} (log: {folder / label}.err)")
                        break
                    runs[section][side].append(run.data)
                    shown = compare([run.data], [run.data], [section])
                    say(f"   section {section} round {round_number + 1} {side}: "
                        f"{run.seconds:.0f} s; "
                        + " · ".join(f"{r.figure} {number(r.new[0])}" for r in shown if r.new))
                if section in failed:
                    break
    finally:
        signal.signal(signal.SIGTERM, previous)
        if keep or failed:
            say(f"A/B runs' output kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    elapsed = time.monotonic() - started

    old_rounds = [run for section in sections for run in runs[section]["old"]]
    new_rounds = [run for section in sections for run in runs[section]["new"]]
    rows = compare(old_rounds, new_rounds, sections, failed=failed)
    print("\n".join(description))
    print(f"A/B: old = {baseline}, new = {measured}; {rounds} round(s) per addon and section"
          f"{', --quick' if quick else ''}, each run in its own process; {ORDER}; "
          f"{elapsed:.0f} s; 1-minute load average {min(load):.1f}–{max(load):.1f}")
    print(f"Verdict: PASS when the new median is at most {TOLERANCE:.0%} worse than the old "
          "median in the figure's direction (plus the absolute allowance shown after the ratio, "
          "in the figure's unit, for differences near zero); medians over rounds, unpaired.")
    print()
    print(render(rows, rounds))
    counts = {status: sum(r.status == status for r in rows)
              for status in ("PASS", "MISS", "not comparable", "FAILED")}
    print()
    print(", ".join(f"{n} {status}" for status, n in counts.items() if n or status != "FAILED"))
    if json_path is not None:
        json_path.write_text(json.dumps({
            "machine": list(description),
            "old": str(baseline),
            "new": str(measured),
            "quick": quick,
            "rounds": rounds,
            "order": ORDER,
            "elapsed_s": elapsed,
            "load_average": load,
            "runs": runs,
            "failed": failed,
            "rows": [{**asdict(r), "old_median": r.old_median, "new_median": r.new_median}
                     for r in rows],
        }, indent=1, default=str))
    return 1 if any(side == "new" for side, _ in failed.values()) else 0
