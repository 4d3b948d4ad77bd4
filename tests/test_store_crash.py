"""Crash safety of appends in place (issue 14): writers killed by SIGKILL at 50 random moments,
most of them in the middle of writing an append (the fault hook LLMVCR_FAULT_SLOW_APPEND makes
the writer write a few bytes at a time), leave files that llm-vcr loads with every interaction
that finished before the kill, and nothing else (the one being written appears only whole), and
that go-vcr loads once a store has started on the folder (it cuts torn tails off)."""

from __future__ import annotations

import os
import random
import select
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from llmvcr import cassette, inplace, locking
from llmvcr.store import CassetteStore
from test_store import make_interaction, tags

KILLS = 50
PAD = "p" * 1500  # ~3.5 kB per interaction: about 35 slow writes of 100 bytes


def _appender(root: Path, name: str, done: int) -> None:
    """The child: append interactions k0, k1, ... to `name`, writing each finished index to the
    pipe `done`; killed by the parent."""
    try:
        os.environ[inplace.FAULT_ENV] = "100:0.0003"
        store = CassetteStore(root)
        for i in range(1_000_000):
            store.append(name, [make_interaction(f"k{i}-{PAD}")])
            os.write(done, b"%d\n" % i)
    finally:
        os._exit(1)


def _kill_one(root: Path, name: str, rng: random.Random) -> int:
    """Fork an appender, kill it at a random moment after its first append; how many appends
    it finished."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        _appender(root, name, write)
    os.close(write)
    try:
        ready, _, _ = select.select([read], [], [], 60)
        assert ready, "the appender never finished an append"
        time.sleep(rng.uniform(0, 0.04))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        said = b""
        while chunk := os.read(read, 65536):
            said += chunk
    finally:
        os.close(read)
    lines = said.split(b"\n")
    assert lines[-1] == b"" and [int(n) for n in lines[:-1]] == list(range(len(lines) - 1))
    return len(lines) - 1


def _torn(root: Path, name: str) -> bool:
    """Whether the kill left an append half written (its record still in the lock file)."""
    lock = locking.lock_file(root, f"{name}.yaml")
    found = inplace.decode(lock.read_bytes(), f"{name}.yaml")
    if found is None or found[0][1] is None:
        return False
    return (root / f"{name}.yaml").stat().st_size > found[0][1].start


def test_sigkill_at_random_points_of_appends_loses_and_adds_nothing(
    tmp_path: Path, govcr_check: Callable[[Iterable[Path]], None]
) -> None:
    rng = random.Random(1414)
    reader = CassetteStore(tmp_path)  # a store that was running before the crashes
    expected: dict[str, list[str]] = {}
    torn = 0
    for n in range(KILLS):
        name = f"victim{n:02d}"
        finished = _kill_one(tmp_path, name, rng)
        torn += _torn(tmp_path, name)
        got = tags(reader.load(name))  # torn or not: the completed interactions
        assert len(got) in (finished, finished + 1), (name, finished, len(got))
        assert got == [f"k{i}-{PAD}" for i in range(len(got))], name
        expected[name] = got
    assert torn > 0, "no kill landed in the middle of an append"

    CassetteStore(tmp_path)  # a store's start repairs every torn tail
    paths = [tmp_path / f"{name}.yaml" for name in expected]
    for path in paths:
        loaded = cassette.load(path)  # no llm-vcr repair in this reader
        assert tags(loaded) == expected[path.stem], path
        assert [i.id for i in loaded.interactions] == list(range(len(loaded.interactions)))
        assert cassette.dumps(loaded) == path.read_bytes()
        assert not _torn(tmp_path, path.stem)
    govcr_check(paths)
