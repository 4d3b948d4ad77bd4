"""Section 11: what the pytest plugin costs (issue 15).

- Per test: tests each making one request through a running llm-vcr proxy (passthrough to the
  fake upstream), run by pytest with the plugin (marked tests, `--vcr-server`: a session opened
  and closed per test) and without it (`-p no:llmvcr`, the proxy variables set by hand), 20 and
  100 of them. Interleaved rounds, medians; the per-test slope with the plugin minus the one
  without, so the plugin's once-per-process work does not count per test. Target: under 20 ms.
- Once per pytest process: one marked test that makes no request, the plugin starting its own
  proxy, against the same test without the plugin. The difference is the proxy's start and stop.
  Target: the start under 1 s (the stop, about 0.2 s, is included here: the figure is an upper
  bound of the start).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .figures import Row
from .lab import Lab

TESTS = 100
FEW = 20
ROUNDS = 3
API_URL = "https://api.openai.com/v1/chat/completions"

PROJECT = '''
import os

import httpx
import pytest

MARK = pytest.mark.vcr if os.environ.get("BENCH_MARKED") == "1" else (lambda test: test)


@MARK
@pytest.mark.parametrize("n", range(int(os.environ.get("BENCH_TESTS", "1"))))
def test_call(n):
    if os.environ.get("BENCH_NO_REQUEST") == "1":
        return
    with httpx.Client() as client:
        body = {{"model": "m", "messages": [{{"role": "user", "content": "hi"}}]}}
        assert client.post("{url}", json=body).status_code == 200
'''


def _pytest(folder: Path, args: list[str], env: dict[str, str]) -> float:
    """Seconds one pytest run of the sample project takes (it must pass)."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           *args], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=600)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"sample project failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return elapsed


def plugin_cost(lab: Lab) -> tuple[list[Row], dict[str, Any]]:
    lab.say("11. the pytest plugin: per test, and the proxy start")
    proxy = lab.proxy("plugin-serve", routed=True, options={"vcr_mode": "passthrough"})
    folder = lab.folder / "plugin-project"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_sample.py").write_text(PROJECT.format(url=API_URL))
    base = {k: v for k, v in lab.python_env.items() if "proxy" not in k.lower()}
    base["BENCH_TESTS"] = str(TESTS)
    # The same CA bundle the plugin gives its tests (system CAs + mitmproxy's): httpx loads it
    # for every client, and that load, not the plugin, would otherwise be what differs.
    from llmvcr.launcher import write_ca_bundle

    bundle = write_ca_bundle(lab.confdir)
    plain_env = {**base, "HTTPS_PROXY": proxy.url(), "SSL_CERT_FILE": str(bundle)}
    plugin_env = {**base, "BENCH_MARKED": "1"}
    plugin_args = ["--vcr-server", f"127.0.0.1:{proxy.port}", "--vcr-mode", "passthrough",
                   "--vcr-set", f"confdir={lab.confdir}"]
    # Per test: the slope between a short and a long run, so what the plugin does once per
    # pytest process (reaching the proxy, the client's environment) does not count per test.
    runs: dict[tuple[str, int], list[float]] = {}
    for _ in range(ROUNDS):
        for count in (FEW, TESTS):
            for name, env, args in (("plain", plain_env, ["-p", "no:llmvcr"]),
                                    ("plugin", plugin_env, plugin_args)):
                runs.setdefault((name, count), []).append(
                    _pytest(folder, args, {**env, "BENCH_TESTS": str(count)}))
    med = {key: statistics.median(values) for key, values in runs.items()}
    slope = {name: (med[(name, TESTS)] - med[(name, FEW)]) / (TESTS - FEW)
             for name in ("plain", "plugin")}
    per_test_ms = (slope["plugin"] - slope["plain"]) * 1000
    plain, plugged = runs[("plain", TESTS)], runs[("plugin", TESTS)]

    one = {**base, "BENCH_TESTS": "1", "BENCH_NO_REQUEST": "1"}
    own = ["--vcr-mode", "passthrough", "--vcr-set", f"confdir={lab.confdir}",
           "--vcr-dir", str(folder / "cassettes")]
    bare, started = [], []
    for _ in range(ROUNDS):
        bare.append(_pytest(folder, ["-p", "no:llmvcr"], one))
        started.append(_pytest(folder, own, {**one, "BENCH_MARKED": "1"}))
    start_s = statistics.median(started) - statistics.median(bare)
    data = {"plain_s": plain, "plugin_s": plugged, "per_test_ms": per_test_ms,
            "bare_s": bare, "own_proxy_s": started, "start_stop_s": start_s}
    rows = [
        Row("11", f"pytest, {TESTS} tests of one request each through a running proxy: without "
            f"the plugin · with it (a session per test; median of {ROUNDS} interleaved runs)",
            f"{statistics.median(plain):.2f} s · {statistics.median(plugged):.2f} s"),
        Row("11", f"the plugin's cost per test (slope between {FEW} and {TESTS} tests, "
            "plugin minus no plugin)", f"{per_test_ms:.1f} ms", "< 20 ms", per_test_ms < 20),
        Row("11", "the plugin starting (and stopping) its own proxy, once per pytest process",
            f"{start_s:.2f} s", "start < 1 s", start_s < 1.0),
    ]
    return rows, data
