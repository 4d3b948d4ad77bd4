"""store.py across processes: concurrent appends lose nothing; SIGKILL mid-write breaks nothing.

Appends to a file that has entries are written in place (test_store_crash.py kills them at random
bytes); the first append to `interactions: []`, or to a missing file, rewrites it through a temp
file and a rename, which the tests here stop just before the rename."""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from llmvcr import cassette
from llmvcr.store import CassetteStore
from test_store import make_interaction, tags

TESTS = Path(__file__).resolve().parent
WORKERS, APPENDS, CASSETTES = 4, 50, 3


def _append_many(root: str, worker: int, start: multiprocessing.synchronize.Barrier) -> None:
    """One process of the concurrency test: its own store, APPENDS appends over CASSETTES files."""
    store = CassetteStore(root)
    start.wait(timeout=60)
    for i in range(APPENDS):
        store.append(f"shared/c{i % CASSETTES}", [make_interaction(f"w{worker}-{i}")])


def test_appends_from_four_processes_all_land(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WORKERS)
    workers = [
        context.Process(target=_append_many, args=(str(tmp_path), n, start)) for n in range(WORKERS)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    assert [p.exitcode for p in workers] == [0] * WORKERS

    store = CassetteStore(tmp_path)
    for c in range(CASSETTES):
        loaded = store.load(f"shared/c{c}")
        got = tags(loaded)
        expected = [
            f"w{w}-{i}" for w in range(WORKERS) for i in range(APPENDS) if i % CASSETTES == c
        ]
        assert sorted(got) == sorted(expected)  # every interaction exactly once
        for w in range(WORKERS):  # and each process's in the order it wrote them
            assert [t for t in got if t.startswith(f"w{w}-")] == [
                t for t in expected if t.startswith(f"w{w}-")
            ]
        assert loaded is not None
        assert [i.id for i in loaded.interactions] == list(range(len(expected)))
        assert (tmp_path / "shared" / f"c{c}.yaml").read_bytes() == cassette.dumps(loaded)
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == [
        f"c{c}.yaml" for c in range(CASSETTES)
    ]


# A child that appends one interaction after another to `victim`, printing how many it finished.
# With pause_at=N it stops inside its Nth rename (a write through a temp file: the first append
# to `interactions: []`), after the temp file is complete and fsynced and before the rename,
# prints "paused" and waits there (holding the cassette's lock) to be killed.
_CHILD = """
import os, sys, time
sys.path.insert(0, {tests!r})
from test_store import make_interaction
from llmvcr.store import CassetteStore

root, pause_at, pad = sys.argv[1], int(sys.argv[2]), "x" * int(sys.argv[3])
replace, renames = os.replace, 0

def paused_replace(src, dst, **dir_fds):
    global renames
    renames += 1
    if renames == pause_at:
        print("paused", flush=True)
        time.sleep(600)
    replace(src, dst, **dir_fds)

os.replace = paused_replace
store = CassetteStore(root)
for i in range(1_000_000):
    store.append("victim", [make_interaction(f"k{{i}}-{{pad}}")])
    print(i + 1, flush=True)
"""


class Child:
    """The appending child process, read line by line with a deadline."""

    def __init__(self, root: Path, pause_at: int = 0, pad: int = 0) -> None:
        script = _CHILD.format(tests=str(TESTS))
        self.process = subprocess.Popen(
            [sys.executable, "-c", script, str(root), str(pause_at), str(pad)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        self.stdout = self.process.stdout

    def read_line(self, timeout: float = 60) -> str:
        ready, _, _ = select.select([self.stdout], [], [], timeout)
        line = self.stdout.readline() if ready else b""
        if not line:
            self.process.send_signal(signal.SIGKILL)
            assert self.process.stderr is not None
            said = self.process.stderr.read().decode()
            self.kill()
            raise AssertionError(f"child said nothing: {said}")
        return line.decode().strip()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.stdout.close()
        if self.process.stderr:
            self.process.stderr.close()


def _temp_files(root: Path) -> list[Path]:
    return sorted(root.glob(".victim.yaml.*.tmp"))


def _empty_victim(root: Path) -> bytes:
    data = cassette.dumps(cassette.Cassette([]))
    (root / "victim.yaml").write_bytes(data)
    return data


def test_a_write_killed_before_its_rename(tmp_path: Path) -> None:
    empty = _empty_victim(tmp_path)
    child = Child(tmp_path, pause_at=1)
    try:
        assert child.read_line() == "paused"
        temp = _temp_files(tmp_path)
        assert [p.name for p in temp] == [f".victim.yaml.{child.process.pid}.tmp"]
        # a write in flight: a store starting now leaves its temp file alone
        assert tags(CassetteStore(tmp_path).load("victim")) == []
        assert _temp_files(tmp_path) == temp
    finally:
        child.kill()
    # the writer is gone: the cassette is as it was, the next start cleans up
    assert (tmp_path / "victim.yaml").read_bytes() == empty
    assert _temp_files(tmp_path) == temp
    store = CassetteStore(tmp_path)
    assert _temp_files(tmp_path) == []
    store.append("victim", [make_interaction("after")])
    assert tags(store.load("victim")) == ["after"]


def test_a_temp_file_older_than_an_hour_goes_even_if_its_writer_hangs(tmp_path: Path) -> None:
    _empty_victim(tmp_path)
    child = Child(tmp_path, pause_at=1)
    try:
        assert child.read_line() == "paused"
        [temp] = _temp_files(tmp_path)
        hour_ago = time.time() - 2 * 3600
        os.utime(temp, (hour_ago, hour_ago))
        CassetteStore(tmp_path)
        assert not temp.exists()
    finally:
        child.kill()
    assert tags(CassetteStore(tmp_path).load("victim")) == []
