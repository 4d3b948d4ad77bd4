"""Files: cassette load and save speed on the corpus, the cost of one append, and the start-up
time the addon adds to mitmdump (5, and the append of 7).

The codec and append timings run in a fresh process (`python -m bench.file_bench codec|append`,
one core, nothing else in it), so the parent's threads and heap do not weigh on them.
"""

from __future__ import annotations

import gc
import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .figures import Row, mb, median

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPUS = REPO_ROOT.parent / "shared" / "corpus"  # where tests/conftest.py finds it too
SYNTHETIC_INTERACTIONS = 10_000


@dataclass(frozen=True, slots=True)
class FilesPlan:
    repeat: int = 5  # best of N for load and save
    startup_rounds: int = 5
    store_cassettes: int = 10_000


# ---------------------------------------------------------------------------------------------
# In the fresh process


def codec_speed(files: list[Path], repeat: int) -> dict[str, Any]:
    """Best-of-`repeat` seconds to `load` every file and to `dumps` every loaded cassette."""
    from llmvcr.cassette import dumps, load

    size = sum(p.stat().st_size for p in files)
    loads_s, dumps_s = [], []
    cassettes = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        cassettes = [load(p) for p in files]
        loads_s.append(time.perf_counter() - start)
    identical = 0
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        written = [dumps(c) for c in cassettes]
        dumps_s.append(time.perf_counter() - start)
        identical = sum(w == p.read_bytes() for w, p in zip(written, files, strict=True))
    return {
        "files": len(files),
        "bytes": size,
        "load_s": min(loads_s),
        "dumps_s": min(dumps_s),
        "byte_identical": identical,
        "synthetic": synthetic_speed(SYNTHETIC_INTERACTIONS, repeat),
    }


def synthetic_speed(count: int, repeat: int) -> dict[str, float]:
    """The same for one cassette of `count` small JSON interactions (about 1 KB each): many short
    scalars per byte, unlike the corpus, whose bytes are mostly long streamed bodies."""
    from llmvcr.cassette import Cassette, dumps, loads

    from .workload import chat_interactions

    data = dumps(Cassette(chat_interactions(count, small=True)))
    loads_s, dumps_s = [], []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        cassette = loads(data)
        loads_s.append(time.perf_counter() - start)
        gc.collect()
        start = time.perf_counter()
        dumps(cassette)
        dumps_s.append(time.perf_counter() - start)
        del cassette
    return {"interactions": count, "bytes": len(data), "load_s": min(loads_s),
            "dumps_s": min(dumps_s)}


def append_time(folder: Path, existing: int, appends: int = 20) -> dict[str, float]:
    """Seconds for `CassetteStore.append` of one interaction to a cassette of `existing` ones:
    the first append of a fresh store (it parses the file to learn its layout) and the median of
    the `appends` after it (fsync included: the store makes every write durable)."""
    from llmvcr.store import CassetteStore

    from .workload import chat_interaction, chat_interactions, write_cassette

    size = write_cassette(folder / "big.yaml", chat_interactions(existing, small=True))
    store = CassetteStore(folder)
    start = time.perf_counter()
    store.append("big", [chat_interaction(existing, small=True)])
    first = time.perf_counter() - start
    times = []
    for n in range(appends):
        item = chat_interaction(existing + 1 + n, small=True)
        start = time.perf_counter()
        store.append("big", [item])
        times.append(time.perf_counter() - start)
    return {"first": first, "next": median(times), "file_bytes": size}


def fresh_append_time(lab: Any, folder: Path, existing: int) -> dict[str, float]:
    result: dict[str, float] = lab.run_module("file_bench", "append", str(folder), str(existing))
    return result


# ---------------------------------------------------------------------------------------------
# Start-up


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def time_to_listen(command: list[str], port: int, timeout: float = 60.0) -> tuple[float, float]:
    """Seconds from starting `command` to 127.0.0.1:`port` accepting a connection, and the CPU
    seconds the process used by then (less sensitive to other load on the machine); the process
    is then stopped with SIGINT."""
    from .lab import cpu_seconds

    start = time.perf_counter()
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return time.perf_counter() - start, cpu_seconds(process.pid)
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"{command} exited with {process.returncode}") from None
                if time.perf_counter() - start > timeout:
                    raise RuntimeError(f"{command} did not listen within {timeout} s") from None
                time.sleep(0.002)
    finally:
        process.send_signal(2)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _make_store(folder: Path, count: int) -> None:
    """`count` one-interaction cassettes in folders of 100."""
    from llmvcr.cassette import Cassette, dumps

    from .workload import chat_interaction

    for n in range(count):
        path = folder / f"suite{n // 100:03d}" / f"case{n % 100:02d}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(dumps(Cassette([chat_interaction(n, small=True)])))


def files_and_startup(lab: Any, plan: FilesPlan) -> tuple[list[Row], dict[str, Any]]:
    """Section 5."""
    from .lab import MITMDUMP

    files = sorted(CORPUS.rglob("*.yaml")) if CORPUS.is_dir() else []
    corpus_name = str(CORPUS)
    if not files:
        files = sorted((REPO_ROOT / "cassettes").rglob("*.yaml"))
        corpus_name = "the repository's cassettes/ (corpus not found)"
    lab.say(f"5. files: load and dumps of {len(files)} cassettes, best of {plan.repeat}")
    codec = lab.run_module("file_bench", "codec", str(plan.repeat), *map(str, files))
    load_rate = codec["bytes"] / codec["load_s"]
    dumps_rate = codec["bytes"] / codec["dumps_s"]
    lab.say(f"   load {load_rate / 1e6:.1f} MB/s, dumps {dumps_rate / 1e6:.1f} MB/s")

    empty = lab.folder / "startup" / "empty"
    empty.mkdir(parents=True, exist_ok=True)
    full = lab.folder / "startup" / "full"
    lab.say(f"   start-up: writing a store of {plan.store_cassettes} cassettes")
    _make_store(full, plan.store_cassettes)
    base = [str(MITMDUMP), "--listen-host", "127.0.0.1", "--set", f"confdir={lab.confdir}"]
    addon = ["-s", str(lab.addon_script), "--set", "vcr_mode=replay"]
    variants = {
        "mitmdump": [],
        "llm-vcr, empty store": [*addon, "--set", f"vcr_dir={empty}"],
        f"llm-vcr, {plan.store_cassettes:,} cassettes": [*addon, "--set", f"vcr_dir={full}"],
    }
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(plan.startup_rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            port = _free_port()
            wall, used = time_to_listen([*base, "-p", str(port), *variants[name]], port)
            times[name].append(wall)
            cpu[name].append(used)
        lab.say(
            f"   round {round_number + 1}: "
            + ", ".join(f"{n} {times[n][-1]:.2f} s (CPU {cpu[n][-1]:.2f} s)" for n in names)
        )
    startup = {name: median(values) for name, values in times.items()}
    startup_cpu = {name: median(values) for name, values in cpu.items()}
    bare = startup["mitmdump"]
    added = {name: startup[name] - bare for name in names[1:]}
    synthetic = codec["synthetic"]
    rows = [
        Row(
            "5",
            f"cassette load ({codec['files']} corpus files, {mb(codec['bytes'])}, best of "
            f"{plan.repeat}, one core)",
            f"{load_rate / 1e6:.1f} MB/s",
            ">= 15 MB/s",
            load_rate >= 15e6,
        ),
        Row(
            "5",
            f"cassette save (dumps; {codec['byte_identical']}/{codec['files']} byte-identical)",
            f"{dumps_rate / 1e6:.1f} MB/s",
            ">= 15 MB/s",
            dumps_rate >= 15e6,
        ),
        Row(
            "5",
            f"load / save of one cassette of {synthetic['interactions']:,} small JSON "
            f"interactions ({mb(synthetic['bytes'])})",
            f"{synthetic['bytes'] / synthetic['load_s'] / 1e6:.1f} MB/s / "
            f"{synthetic['bytes'] / synthetic['dumps_s'] / 1e6:.1f} MB/s",
        ),
        Row(
            "5",
            f"start to port accepting, median of {plan.startup_rounds}",
            " · ".join(f"{n} {startup[n]:.2f} s" for n in names),
        ),
        Row(
            "5",
            "CPU used by then (median; robust to other load)",
            " · ".join(f"{n} {startup_cpu[n]:.2f} s" for n in names),
        ),
    ]
    rows += [
        Row("5", f"start-up added ({name})", f"{value:+.2f} s", "<= 0.3 s", value <= 0.3)
        for name, value in added.items()
    ]
    return rows, {"corpus": corpus_name, "codec": codec, "startup": times, "startup_cpu": cpu}


def main() -> None:
    command, *rest = sys.argv[1:]
    if command == "codec":
        result = codec_speed([Path(p) for p in rest[1:]], int(rest[0]))
    elif command == "append":
        result = append_time(Path(rest[0]), int(rest[1]))
    else:
        raise SystemExit(f"unknown command {command!r}")
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
