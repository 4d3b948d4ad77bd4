"""Files: cassette load and save speed on the corpus and the start-up time the addon adds to
mitmdump (5); the cost of one append against the cassette's size (9).

The codec and append timings run in a fresh process (`python -m bench.file_bench codec|append`,
one core, nothing else in it), so the parent's threads and heap do not weigh on them.
"""

from __future__ import annotations

import gc
import json
import os
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


APPEND_SIZES = (10, 5_000, 50_000)
APPEND_REPEAT = 100


def append_time(folder: Path, existing: int, appends: int = APPEND_REPEAT) -> dict[str, float]:
    """Seconds for `CassetteStore.append` of one interaction to a cassette of `existing` ones:
    the first append of a fresh store (it learns the file's layout from its last bytes) and the
    median of the `appends` after it (fsync included: the store makes every write durable)."""
    from llmvcr.store import CassetteStore

    from .workload import chat_interaction, chat_interactions, write_cassette

    size = write_cassette(folder / "big.yaml", chat_interactions(existing, small=True))
    # a cassette already on disk, as one recorded earlier is: the first append's fsync must not
    # be the one that writes out the whole freshly written file
    fd = os.open(folder / "big.yaml", os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
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
    result: dict[str, float] = lab.run_module("file_bench", "append", str(folder / str(existing)),
                                              str(existing))
    return result


def appends(lab: Any) -> tuple[list[Row], dict[str, Any]]:
    """Section 9: one append's cost against the cassette's size (each size in a fresh process)."""
    lab.say(f"9. appends: CassetteStore.append of 1 interaction to cassettes of "
            f"{', '.join(f'{n:,}' for n in APPEND_SIZES)} (median of {APPEND_REPEAT})")
    runs = {n: fresh_append_time(lab, lab.folder / "append", n) for n in APPEND_SIZES}
    for n, run in runs.items():
        lab.say(f"   {n:,} ({mb(run['file_bytes'])}): first {run['first'] * 1e3:.2f} ms, "
                f"next {run['next'] * 1e3:.2f} ms")
    small, big = APPEND_SIZES[0], APPEND_SIZES[-1]
    base = runs[small]["next"]
    worst = max(runs[n]["next"] for n in APPEND_SIZES[1:]) / base
    rows = [
        Row(
            "9",
            f"CassetteStore.append of 1 interaction (median of {APPEND_REPEAT}), at "
            + " / ".join(f"{n:,}" for n in APPEND_SIZES) + " interactions",
            " / ".join(f"{runs[n]['next'] * 1e3:.2f} ms" for n in APPEND_SIZES)
            + f" ({worst:.2f}x)",
            f"{APPEND_SIZES[1]:,} and {big:,} within 1.5x of {small}",
            worst <= 1.5,
        ),
        Row(
            "9",
            f"first append of a fresh store to a {big:,}-interaction cassette "
            f"({mb(runs[big]['file_bytes'])})",
            f"{runs[big]['first'] * 1e3:.1f} ms",
            "< 50 ms",
            runs[big]["first"] < 0.050,
        ),
    ]
    return rows, {str(n): run for n, run in runs.items()}


# ---------------------------------------------------------------------------------------------
# Start-up


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# A request mitmproxy can only answer once its start-up is over: plain HTTP to a closed local
# port (nothing leaves the machine), which it answers with 502 Bad Gateway.
READY_PROBE = b"GET http://127.0.0.1:9/ HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n"


@dataclass(frozen=True, slots=True)
class StartUp:
    accept: float  # seconds to the port accepting a TCP connection
    answer: float  # seconds to the first answer to READY_PROBE
    cpu: float  # CPU seconds the process had used by the first answer


def time_to_ready(
    command: list[str], port: int, env: dict[str, str] | None = None, timeout: float = 60.0
) -> StartUp:
    """Start `command` (a mitmdump on 127.0.0.1:`port`) and time its start-up; then stop it
    with SIGINT.

    mitmdump binds its port before it loads its scripts (the kernel then completes connections
    while the scripts load), so "accepting" comes before the addon is even imported; the first
    answer to a proxied request comes after every script loaded and every `running` hook ran.
    """
    from .lab import cpu_seconds

    start = time.perf_counter()
    process = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    accepted: float | None = None
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
                    if accepted is None:
                        accepted = time.perf_counter() - start
                    sock.sendall(READY_PROBE)
                    if sock.recv(64).startswith(b"HTTP/1.1 "):
                        return StartUp(
                            accepted, time.perf_counter() - start, cpu_seconds(process.pid)
                        )
            except OSError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"{command} exited with {process.returncode}")
            if time.perf_counter() - start > timeout:
                raise RuntimeError(f"{command} did not answer within {timeout} s")
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
    # As after a first run: bytecode cached. (An environment with PYTHONDONTWRITEBYTECODE and no
    # __pycache__ next to the addon compiles it at every start; docs/performance.md says how much.)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for name in names:  # untimed: writes the bytecode caches
        port = _free_port()
        time_to_ready([*base, "-p", str(port), *variants[name]], port, env)
    runs: dict[str, list[StartUp]] = {name: [] for name in names}
    for round_number in range(plan.startup_rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            port = _free_port()
            runs[name].append(
                time_to_ready([*base, "-p", str(port), *variants[name]], port, env)
            )
        lab.say(
            f"   round {round_number + 1}: "
            + ", ".join(
                f"{n} accept {runs[n][-1].accept:.2f} s, answer {runs[n][-1].answer:.2f} s "
                f"(CPU {runs[n][-1].cpu:.2f} s)"
                for n in names
            )
        )
    accept = {name: median([r.accept for r in rs]) for name, rs in runs.items()}
    answer = {name: median([r.answer for r in rs]) for name, rs in runs.items()}
    answer_cpu = {name: median([r.cpu for r in rs]) for name, rs in runs.items()}
    added = {name: answer[name] - answer["mitmdump"] for name in names[1:]}
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
            f"start → port accepting · → first answer (median of {plan.startup_rounds})",
            " · ".join(f"{n} {accept[n]:.2f} s · {answer[n]:.2f} s" for n in names),
        ),
        Row(
            "5",
            "CPU used by the first answer (median; robust to other load)",
            " · ".join(f"{n} {answer_cpu[n]:.2f} s" for n in names),
        ),
    ]
    rows += [
        Row(
            "5",
            f"start-up added to the first answer ({name})",
            f"{value:+.2f} s (CPU {answer_cpu[name] - answer_cpu['mitmdump']:+.2f} s)",
            "<= 0.3 s",
            value <= 0.3,
        )
        for name, value in added.items()
    ]
    return rows, {
        "corpus": corpus_name,
        "codec": codec,
        "startup": {name: [vars_of(r) for r in rs] for name, rs in runs.items()},
    }


def vars_of(run: StartUp) -> dict[str, float]:
    return {"accept": run.accept, "answer": run.answer, "cpu": run.cpu}


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
