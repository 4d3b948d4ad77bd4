"""The fast reader leaves no big young generation behind (issue 14: a big load must not stall
the proxy's other clients). It reads with the collector paused; were every object it made still
young when the collector resumes, the first automatic collections would walk them all in one call
that holds the GIL (0.2-0.3 s per 100,000 interactions). It moves them out of the young
generations a slice at a time instead. Counted, not timed."""

from __future__ import annotations

import gc

from llmvcr.cassette import Cassette, Interaction, Request, Response, dumps, fastreader


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
    gc.collect()
    loaded = fastreader.fast_loads(data)
    assert loaded is not None and len(loaded.interactions) == 5_000
    # all young without the slices: about 3 tracked objects per interaction (15,000)
    assert young and young[0] < 2_000


def test_a_big_read_collects_in_slices() -> None:
    data = _cassette(5_000)
    steps: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            steps.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        assert fastreader.fast_loads(data) is not None
    finally:
        gc.callbacks.remove(seen)
    assert steps.count(1) >= 5_000 // fastreader._COLLECT_EVERY


def test_a_small_read_collects_nothing() -> None:
    data = _cassette(20)
    steps: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            steps.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        assert fastreader.fast_loads(data) is not None
    finally:
        gc.callbacks.remove(seen)
    assert steps == []
