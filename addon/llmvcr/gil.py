"""Worker threads beside the event loop: handing the GIL back to the loop quickly.

The addon reads cassettes and appends recordings in worker threads so that the event loop keeps
serving. But a thread that runs Python code holds the GIL, and a thread that waits for the GIL
gets it only when the holder's switch interval (5 ms by default) runs out. The event loop gives
the GIL up at every `select`, and waits for it again right after: each step of every request in
flight would wait up to 5 ms while a worker runs (measured: small requests took 44 ms instead of
3 while a 100 MB cassette loaded). `yielding_gil` lowers the interval while a worker runs, so the
loop waits at most `SWITCH_INTERVAL`; the worker's own work takes a few percent longer.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# The switch interval while a worker runs: how long the event loop can wait for the GIL.
SWITCH_INTERVAL = 0.0005

_lock = threading.Lock()
_workers = 0  # threads inside `yielding_gil`
_saved_interval = 0.0


@contextmanager
def yielding_gil() -> Iterator[None]:
    """Run the body (a worker thread's job) with the short switch interval; nested and
    concurrent workers share it, and the last one out restores the interval it found."""
    global _workers, _saved_interval
    with _lock:
        if _workers == 0:
            _saved_interval = sys.getswitchinterval()
            sys.setswitchinterval(min(_saved_interval, SWITCH_INTERVAL))
        _workers += 1
    try:
        yield
    finally:
        with _lock:
            _workers -= 1
            if _workers == 0:
                sys.setswitchinterval(_saved_interval)
