"""`scripts/bench [--quick] [--only 1,3] [--json FILE] [--keep] [--addon-dir DIR]
[--baseline-addon-dir OLD [--rounds N]]`.

Runs the benchmark and prints the machine description and one table of results on stdout
(progress goes to stderr).

Sections: 1 replay throughput (llm-vcr vs server_replay vs a canned answer), 2 lookup time by
cassette size, 3 recording overhead, 4 timed replay fidelity, 5 cassette load/save speed and
start-up time, 6 memory of a loaded cassette, 7 sustained recording (throughput, latency, memory),
8 what sessions cost (hook CPU, memory of 1,000 open sessions), 9 one append against the
cassette's size, 10 a shared proxy under a fleet's load (new_episodes into a big cassette, other
clients while a big cassette loads). 6 is measured with 2 (same proxies).

With `--baseline-addon-dir OLD`: an A/B of the addon OLD against the measured one, interleaved
rounds of each section in processes of their own (`bench/ab.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .figures import Row, render
from .lab import REPO_ROOT, Lab, use_addon

SECTIONS = ("1", "2", "3", "4", "5", "7", "8", "9", "10", "11")  # 6 comes with 2


def machine(addon_dir: Path) -> list[str]:
    """CPU model, cores, memory, OS, Python, mitmproxy and the code measured."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f"{pages / 2**30:.0f} GiB RAM"
    except (ValueError, OSError):
        memory = "RAM unknown"
    from mitmproxy.version import VERSION

    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return [
        f"CPU: {cpu}, {os.cpu_count()} cores (usable: {len(os.sched_getaffinity(0))}), {memory}",
        f"OS: {platform.system()} {platform.release()}",
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"mitmproxy {VERSION}, llm-vcr at {commit}"
        + ("" if addon_dir == REPO_ROOT / "addon" else f" (addon measured: {addon_dir})"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Measure llm-vcr: replay throughput and latency, lookup scaling, recording "
        "overhead, timed replay, cassette files, start-up, memory. Prints the machine and one "
        "table on stdout (progress on stderr).",
    )
    parser.add_argument("--quick", action="store_true", help="a smaller run (about 2 minutes)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help="comma-separated sections to run (6 runs with 2)")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--addon-dir", type=Path, default=REPO_ROOT / "addon",
                        help="the addon to measure: a folder with vcr.py and llmvcr/ "
                        "(default: this checkout's addon/)")
    parser.add_argument("--baseline-addon-dir", type=Path,
                        help="A/B: compare this addon (the old one: a folder with vcr.py and "
                        "llmvcr/) against --addon-dir, section by section in interleaved rounds, "
                        "each run in its own process (bench/ab.py)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="A/B: runs of each section per addon (default 3)")
    parser.add_argument("--run-timeout", type=float,
                        help="A/B: stop a run after this many seconds and leave its section "
                        "uncompared (default 600 with --quick, else 1800)")
    args = parser.parse_args(argv)
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    wanted = ["2" if s == "6" else s for s in wanted]
    unknown = [s for s in wanted if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    addon_dir = args.addon_dir.resolve()
    if args.baseline_addon_dir is not None:
        from .ab import run_ab

        baseline = args.baseline_addon_dir.resolve()
        for folder in (baseline, addon_dir):
            if not (folder / "vcr.py").is_file() or not (folder / "llmvcr").is_dir():
                parser.error(f"{folder} is not an addon folder (vcr.py and llmvcr/)")
        if args.rounds < 1:
            parser.error("--rounds must be at least 1")
        return run_ab(baseline=baseline, measured=addon_dir,
                      sections=[s for s in SECTIONS if s in wanted], rounds=args.rounds,
                      quick=args.quick, description=machine(addon_dir), json_path=args.json,
                      keep=args.keep, run_timeout=args.run_timeout)
    use_addon(addon_dir)

    from . import (
        episodes_bench,
        file_bench,
        plugin_bench,
        replay_bench,
        session_bench,
        stream_bench,
    )

    quick = args.quick
    sections: dict[str, Callable[[Lab], tuple[list[Row], dict[str, Any]]]] = {
        "1": lambda lab: replay_bench.replay_throughput(
            lab, replay_bench.ReplayPlan(rounds=3, requests=1000, warmup=10, hook_requests=1000)
            if quick else replay_bench.ReplayPlan()),
        "2": lambda lab: replay_bench.lookup_and_memory(
            lab, replay_bench.LookupPlan(sizes=(100, 10_000), rounds=3, requests=300)
            if quick else replay_bench.LookupPlan()),
        "3": lambda lab: stream_bench.record_overhead(
            lab, stream_bench.OverheadPlan(rounds=2, streams=4)
            if quick else stream_bench.OverheadPlan()),
        "4": lambda lab: stream_bench.timed_fidelity(
            lab, stream_bench.FidelityPlan(rounds=1) if quick else stream_bench.FidelityPlan()),
        "5": lambda lab: file_bench.files_and_startup(
            lab, file_bench.FilesPlan(repeat=2, startup_rounds=2)
            if quick else file_bench.FilesPlan()),
        "7": lambda lab: stream_bench.sustained_recording(
            lab, stream_bench.SustainedPlan(checkpoints=(1500, 2500, 3500))
            if quick else stream_bench.SustainedPlan()),
        "8": session_bench.sessions_cost,
        "9": file_bench.appends,
        "11": plugin_bench.plugin_cost,
        "10": lambda lab: episodes_bench.shared_proxy(
            lab, episodes_bench.EpisodesPlan(requests=160, big=30_000)
            if quick else episodes_bench.EpisodesPlan()),
    }

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    description = machine(addon_dir)
    for line in description:
        say(line)
    folder = Path(tempfile.mkdtemp(prefix="llm-vcr-bench-"))
    lab = Lab(folder, say, addon_dir)
    rows: list[Row] = []
    figures: dict[str, Any] = {"machine": description, "quick": quick}
    started = time.monotonic()
    load = [os.getloadavg()[0]]
    try:
        for section in SECTIONS:
            if section in wanted:
                section_rows, data = sections[section](lab)
                rows += section_rows
                figures[section] = data
                load.append(os.getloadavg()[0])
    finally:
        lab.close()
        if args.keep:
            say(f"scratch folder kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    elapsed = time.monotonic() - started
    figures["elapsed_s"] = elapsed
    figures["load_average"] = load

    print("\n".join(description))
    print(
        f"Run: {'--quick' if quick else 'full'}, {elapsed:.0f} s; 1-minute load average "
        f"{min(load):.1f}–{max(load):.1f} over the run (this benchmark itself keeps about 2 busy)"
    )
    print()
    print(render(rows))
    missed = [r for r in rows if r.passed is False]
    print()
    print(f"{sum(r.passed is True for r in rows)} PASS, {len(missed)} MISS")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
