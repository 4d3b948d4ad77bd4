"""A big read keeps the collector and the GIL out of the event loop's way (issue 14: a big load
must not stall the proxy's other clients; `cassette/collector.py`). The fast reader reads with
the collector paused, moves its objects out of the young generations a slice at a time, and
freezes what survives, so no later automatic full collection walks them (each such walk holds
the GIL for 0.2-0.3 s per 100,000 interactions); a worker's refresh or append lowers the switch
interval (`gil.py`).
Counted, not timed."""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator

import pytest

from llmvcr import gil
from llmvcr.cassette import Cassette, Interaction, Request, Response, collector, dumps, fastreader
from llmvcr.indexes import CassetteIndexes
from llmvcr.matching import MatchOptions
from llmvcr.store import CassetteStore


@pytest.fixture(autouse=True)
def _unfrozen() -> Iterator[None]:
    """Whatever a test froze goes back to the collector's generations afterwards."""
    yield
    gc.unfreeze()


def _cassette(count: int) -> bytes:
    return dumps(Cassette([
        Interaction(
            Request(method="POST", url=f"https://api.example.test/v1/{n}", body=b'{"n":%d}' % n,
                    headers={"Content-Type": ["application/json"]}),
            Response(body=b'{"answer":%d}' % n, headers={"X-Id": [str(n)]}),
        )
        for n in range(count)
    ]))


def test_the_collector_resumes_with_small_young_generations(monkeypatch) -> None:
    """When the paused collector resumes (the write-back check runs with it on), the young
    generations hold no more than one slice's objects."""
    data = _cassette(5_000)
    young: list[int] = []
    check = fastreader._writes_back

    def counting(*args: object) -> bool:
        young.append(len(gc.get_objects(generation=0)) + len(gc.get_objects(generation=1)))
        return check(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(fastreader, "_writes_back", counting)
    monkeypatch.setattr(collector, "BIG_READ", len(data) // 2)
    gc.collect()
    loaded = fastreader.fast_loads(data)
    assert loaded is not None and len(loaded.interactions) == 5_000
    # all young without the slices: about 3 tracked objects per interaction (15,000)
    assert young and young[0] < 2_000


def _collections_during_a_read(data: bytes) -> list[int]:
    """The generation of every collection that ran while the fast reader read `data`."""
    steps: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            steps.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        assert fastreader.fast_loads(data) is not None
    finally:
        gc.callbacks.remove(seen)
    return steps


def test_a_big_read_collects_in_slices(monkeypatch) -> None:
    data = _cassette(5_000)
    monkeypatch.setattr(collector, "BIG_READ", len(data) // 2)
    assert _collections_during_a_read(data).count(1) >= 5_000 // fastreader._COLLECT_EVERY


def test_a_small_read_collects_nothing() -> None:
    assert _collections_during_a_read(_cassette(20)) == []


def test_a_big_read_freezes_what_it_read(monkeypatch) -> None:
    """The interactions read are in the permanent generation afterwards: no collection walks
    them again, and the collector is on as it was."""
    data = _cassette(3_000)
    monkeypatch.setattr(collector, "BIG_READ", len(data) // 2)
    gc.collect()
    before = gc.get_freeze_count()
    loaded = fastreader.fast_loads(data)
    assert loaded is not None
    assert gc.get_freeze_count() - before >= 3 * 3_000  # an interaction, its request, its response
    assert gc.isenabled()
    everything_young = {id(o) for g in (0, 1, 2) for o in gc.get_objects(generation=g)}
    assert id(loaded.interactions[1_500]) not in everything_young


def test_a_read_below_the_threshold_freezes_nothing() -> None:
    data = _cassette(200)
    assert len(data) < collector.BIG_READ
    gc.collect()
    before = gc.get_freeze_count()
    assert fastreader.fast_loads(data) is not None
    assert gc.get_freeze_count() == before


def test_the_collector_is_restored_after_an_error() -> None:
    with pytest.raises(RuntimeError), collector.paused_collector(big=True):
        assert not gc.isenabled()
        raise RuntimeError("the reader failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector.paused_collector(big=False):
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


def test_readers_share_the_short_switch_interval() -> None:
    found = sys.getswitchinterval()
    assert found > gil.SWITCH_INTERVAL
    with gil.yielding_gil():
        assert sys.getswitchinterval() == gil.SWITCH_INTERVAL
        with gil.yielding_gil():
            assert sys.getswitchinterval() == gil.SWITCH_INTERVAL
        assert sys.getswitchinterval() == gil.SWITCH_INTERVAL  # one reader still in
    assert sys.getswitchinterval() == found


def test_a_refresh_runs_with_the_short_switch_interval(tmp_path, monkeypatch) -> None:
    """The addon's worker-thread entry point (`CassetteIndexes.refresh`) is what lowers it."""
    (tmp_path / "c.yaml").write_bytes(_cassette(3))
    store = CassetteStore(str(tmp_path))
    seen: list[float] = []
    load = store.load

    def loading(name: str) -> Cassette | None:
        seen.append(sys.getswitchinterval())
        return load(name)

    monkeypatch.setattr(store, "load", loading)
    found = sys.getswitchinterval()
    worker = threading.Thread(target=CassetteIndexes(store, MatchOptions()).refresh, args=("c",))
    worker.start()
    worker.join()
    assert seen == [gil.SWITCH_INTERVAL]
    assert sys.getswitchinterval() == found


def test_the_recorded_line_comes_from_the_writer_once_the_file_holds_it(tmp_path, caplog) -> None:
    """The writer logs `recorded` in its worker thread after the append: the line says what is on
    disk, and its formatting and printing stay off the event loop."""
    import asyncio
    import logging

    from llmvcr.cassette import load
    from llmvcr.writer import CassetteWriter

    store = CassetteStore(str(tmp_path))
    writer = CassetteWriter(store)
    interaction = Interaction(
        Request(method="POST", url="https://api.example.test/v1/x?api_key=s3cr3t-value",
                body=b"{}"),
        Response(body=b'{"ok":true}', duration=52_000_000),
    )
    seen: list[tuple[str, int, bool]] = []

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            on_disk = (tmp_path / "c.yaml").exists() and len(
                load(tmp_path / "c.yaml").interactions) == 1
            seen.append((record.getMessage(), threading.get_ident(), on_disk))

    async def record() -> int:
        writer.submit("c", interaction)
        await writer.flush()
        return threading.get_ident()

    watch = Watch()
    caplog.set_level(logging.INFO, logger="llmvcr")
    logging.getLogger("llmvcr").addHandler(watch)
    try:
        loop_thread = asyncio.run(record())
    finally:
        logging.getLogger("llmvcr").removeHandler(watch)
    assert len(seen) == 1
    message, thread, on_disk = seen[0]
    assert message == ("llm-vcr: recorded POST https://api.example.test/v1/x?api_key=REDACTED "
                       "-> 200 (11 bytes, 52 ms) in 'c'")
    assert on_disk and thread != loop_thread
