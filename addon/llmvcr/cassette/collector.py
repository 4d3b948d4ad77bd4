"""Keeping Python's garbage collector out of the proxy's way while a big cassette is read.

A cassette of 100,000 interactions is a few million objects, read in a worker thread while the
event loop keeps answering other clients. CPython's cyclic collector would stall that loop, since
it holds the GIL for as long as it runs. Left alone, it would walk the growing heap again and
again during the read, and once after it: when the reader's objects reach the oldest generation,
the next automatic full collection walks every one of them (about 0.25 s per 100,000
interactions).

So the reader runs with the collector paused (`paused_collector`), collects the young generations
in small steps (`step`: each one costs only the objects allocated since the last, and also frees
the event loop's own cyclic garbage of that moment), and at the end moves everything that survived
into the permanent generation (`gc.freeze`), which no collection walks again. The cassette's
objects hold no cycles, so they are still freed by reference counting once nothing uses them; what
freezing gives up is the cyclic collection of the other objects alive at that instant (the proxy's
own long-lived state and the flows in flight), once per big read.

(A worker thread's other cost to the event loop, the GIL hand-off, is `gil.py`'s.)
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Bytes of YAML from which a read counts as big: worth the steps and the freeze (about 4,000
# small interactions; a smaller read's objects cost a full collection a few ms at most).
BIG_READ = 4 << 20


@contextmanager
def paused_collector(big: bool) -> Iterator[None]:
    """Run the body with the cyclic collector paused. `big`: the body calls `step` now and then,
    and what survives it is frozen at the end (see the module's docstring)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if big:
            step()
            gc.freeze()
        if was_enabled:
            gc.enable()


def step() -> None:
    """Collect the young generations: what was allocated since the last step, in one short
    step. Called by a big read every thousand interactions or so."""
    gc.collect(1)
