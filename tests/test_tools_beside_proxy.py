"""`llm-vcr fmt` and `llm-vcr redact` beside a process appending to the same cassette (issue 11,
item 7): every appended interaction ends up in the file exactly once, the file loads (here and in
go-vcr), and `redact` never refuses ("run again"): the tools take the store's lock and wait.

Each round first plants work for the tool under the lock (as a well-behaved writer): a comment
that `fmt` drops and a `Cookie` header that `redact` removes, so every tool run really rewrites
the whole file while the appender keeps going. The tools run through the real CLI. Without the
lock, a rewrite that read the file before an append and renamed after it dropped that append.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from llmvcr.cassette import Cassette, CassetteError, dumps, load, loads
from llmvcr.locking import lock_cassette
from test_store import make_interaction

TESTS = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "llmvcr.cli"]
TIMEOUT = 120  # generous: only reached when something hangs
ROUNDS = 5  # rounds of (plant, fmt, plant, redact) while the appender runs
PLANTED_COOKIE = "session=planted-Qw8Er1Ty4Ui6Op9"

GovcrCheck = Callable[[Iterable[Path | str]], None]


def plant(path: Path) -> None:
    """Under the file's lock: give `fmt` (a comment) and `redact` (a Cookie header on the first
    request) something to rewrite."""
    with lock_cassette(path) as file:
        cassette = loads(file.read(), str(path))
        cassette.interactions[0].request.headers["Cookie"] = [PLANTED_COOKIE]
        data = dumps(cassette).replace(b"version: 2\n", b"version: 2 # planted\n", 1)
        file.replace([data])


def llm_vcr(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def run_tools(path: Path, rounds: int) -> None:
    """`rounds` times: plant, `llm-vcr fmt`, plant, `llm-vcr redact`, each expected to rewrite
    the file and succeed."""
    for _ in range(rounds):
        plant(path)
        formatted = llm_vcr("fmt", str(path), cwd=path.parent)
        assert (formatted.returncode, formatted.stderr) == (0, ""), formatted
        assert formatted.stdout == f"reformatted {path}\n"
        plant(path)
        redacted = llm_vcr("redact", str(path), cwd=path.parent)
        assert (redacted.returncode, redacted.stderr) == (0, ""), redacted  # never "run again"
        assert "removed request header Cookie" in redacted.stdout
        assert redacted.stdout.endswith("redacted 1 cassette, 0 unchanged\n")


def assert_each_once(cassette: Cassette, expected: list[str], tag: Callable[[str], str]) -> None:
    got = Counter(tag(i.request.url) for i in cassette.interactions)
    assert got == Counter(expected), {
        "missing": sorted(set(expected) - set(got)),
        "doubled": sorted(t for t, n in got.items() if n > 1),
    }
    assert [i.id for i in cassette.interactions] == list(range(len(expected)))


# ---- a separate process appending with CassetteStore.append, as a proxy does

# Appends interaction after interaction to the cassette `beside` in the store at argv[1] until the
# file argv[2] exists (at most MAX); prints "started" after the first and the count at the end.
_APPENDER = """
import os, sys
sys.path.insert(0, {tests!r})
from test_store import make_interaction
from llmvcr.store import CassetteStore

root, stop = sys.argv[1], sys.argv[2]
store = CassetteStore(root)
count = 0
while count < 5000 and (count == 0 or not os.path.exists(stop)):
    store.append("beside", [make_interaction(f"k{{count}}")])
    count += 1
    if count == 1:
        print("started", flush=True)
print(count, flush=True)
"""


def _read_line(process: subprocess.Popen[bytes]) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], TIMEOUT)
    line = process.stdout.readline() if ready else b""
    if not line:
        process.kill()
        _, err = process.communicate(timeout=30)
        raise AssertionError(f"the appender said nothing: {err.decode()}")
    return line.decode().strip()


@pytest.mark.slow
def test_fmt_and_redact_beside_an_appending_process(tmp_path: Path, govcr_check: GovcrCheck
                                                    ) -> None:
    root = tmp_path / "cassettes"
    stop = tmp_path / "stop"
    path = root / "beside.yaml"
    appender = subprocess.Popen(
        [sys.executable, "-c", _APPENDER.format(tests=str(TESTS)), str(root), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert _read_line(appender) == "started"
        run_tools(path, ROUNDS)
        stop.touch()
        count = int(_read_line(appender))
        assert appender.wait(timeout=TIMEOUT) == 0
    finally:
        if appender.poll() is None:
            appender.kill()
        appender.communicate(timeout=30)
    assert count < 5000  # the appender was still going when the tools were done

    cassette = load(path)
    assert_each_once(cassette, [f"k{i}" for i in range(count)], lambda url: url.split("tag=")[1])
    final = llm_vcr("redact", str(path), cwd=tmp_path)
    assert final.returncode == 0
    assert PLANTED_COOKIE.encode() not in path.read_bytes()
    assert dumps(load(path)) == path.read_bytes()
    assert sorted(p.name for p in root.iterdir()) == [".llm-vcr", "beside.yaml"]  # no temp file
    govcr_check([path])


# ---- a real mitmdump recording in a loop


@pytest.mark.e2e
@pytest.mark.slow
def test_fmt_and_redact_beside_a_recording_proxy(
    make_proxy, upstream, tmp_path: Path, govcr_check: GovcrCheck
) -> None:
    root = tmp_path / "cassettes"
    path = root / "beside.yaml"
    proxy = make_proxy(mode="record", vcr_dir=root, upstream=upstream)
    stop = threading.Event()
    sent: list[str] = []
    failures: list[BaseException] = []

    def client() -> None:
        try:
            with proxy.httpx_client(cassette="beside") as http:
                while len(sent) < 2000 and (not sent or not stop.is_set()):
                    tag = f"r{len(sent)}"
                    reply = http.post(
                        f"https://api.openai.com/v1/chat/completions?tag={tag}",
                        json={"model": "gpt-4o-mini", "messages": [{"role": "user",
                                                                     "content": tag}]},
                    )
                    assert reply.status_code == 200, reply.text[:300]
                    sent.append(tag)
        except BaseException as e:  # reported by the test thread
            failures.append(e)

    thread = threading.Thread(target=client)
    thread.start()
    try:
        _wait_for(lambda: _count(path) >= 1 or bool(failures), "the first recording")
        assert not failures
        run_tools(path, 3)
    finally:
        stop.set()
        thread.join(timeout=TIMEOUT)
    assert not failures, failures
    assert len(sent) < 2000  # the client was still going when the tools were done
    _wait_for(lambda: _count(path) >= len(sent), f"{len(sent)} interactions in {path}")
    assert proxy.stop() == 0

    assert_each_once(load(path), sent, lambda url: url.split("tag=")[1])
    assert llm_vcr("redact", str(path), cwd=tmp_path).returncode == 0
    assert dumps(load(path)) == path.read_bytes()
    govcr_check([path])


def _count(path: Path) -> int:
    try:
        return len(load(path).interactions)
    except CassetteError:  # not written yet
        return 0


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Wait on a condition (the proxy writes off its event loop); generous timeout."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_plant_really_gives_the_tools_work(tmp_path: Path) -> None:
    """The planted bytes load, are not canonical and hold the cookie (else the rounds above would
    rewrite nothing and prove nothing)."""
    path = tmp_path / "c.yaml"
    path.write_bytes(dumps(Cassette([make_interaction("a")])))
    plant(path)
    data = path.read_bytes()
    assert dumps(loads(data)) != data
    assert PLANTED_COOKIE.encode() in data
    assert not (tmp_path / ".llm-vcr").exists()  # no store here: no lock taken, none made
    assert os.listdir(tmp_path) == ["c.yaml"]
