"""Section 11: what the pytest plugin costs (issue 15).

- Per test: tests each making one request through a running llm-vcr proxy (passthrough to the
  fake upstream), run by pytest with the plugin (marked tests, `--vcr-server`: a session opened
  and closed per test) and without it (`-p no:llmvcr`, the variables of `llm-vcr env --no-session`
  for the same proxy), 20 and
  100 of them. Interleaved rounds, medians; the per-test slope with the plugin minus the one
  without, so the plugin's once-per-process work does not count per test. Target: under 20 ms.
- Once per pytest process: one marked test that makes no request, the plugin starting its own
  proxy, against the same test without the plugin: the difference in the time from launching
  pytest to the first test beginning is the proxy's start (its stop comes after the last test).
  Target: under 1 s.
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
import time

import httpx
import pytest

MARK = pytest.mark.vcr if os.environ.get("BENCH_MARKED") == "1" else (lambda test: test)


@MARK
@pytest.mark.parametrize("n", range(int(os.environ.get("BENCH_TESTS", "1"))))
def test_call(n):
    if os.environ.get("BENCH_STARTED_FILE"):  # when the first test began (wall clock)
        with open(os.environ["BENCH_STARTED_FILE"], "a") as f:
            f.write(str(time.time()) + " ")
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
    # Without the plugin, the tests get what `llm-vcr env --no-session` prints for this proxy:
    # the same variables the plugin sets (proxy variables for http and https, the CA bundle of
    # system CAs + mitmproxy's). httpx builds an SSL context per proxy transport per client from
    # them (about 20 ms each with the full bundle): that is the environment's cost, not the
    # plugin's, and it is the same on both sides.
    from llmvcr.launcher import applied, client_environment, write_ca_bundle

    bundle = write_ca_bundle(lab.confdir)
    plain_env = applied(base, client_environment(proxy.url(), lab.confdir, bundle, base))
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

    # The proxy start: from launching pytest to its first test beginning, with the plugin
    # starting its own proxy against the same test without the plugin (the stop, after the
    # last test, does not count).
    started_file = lab.folder / "plugin-started"
    one = {**base, "BENCH_TESTS": "1", "BENCH_NO_REQUEST": "1",
           "BENCH_STARTED_FILE": str(started_file)}
    own = ["--vcr-mode", "passthrough", "--vcr-set", f"confdir={lab.confdir}",
           "--vcr-dir", str(folder / "cassettes")]

    def first_test_after(args: list[str], env: dict[str, str]) -> float:
        started_file.write_text("")
        launched = time.time()
        _pytest(folder, args, env)
        return float(started_file.read_text().split()[0]) - launched

    bare, started = [], []
    for _ in range(ROUNDS):
        bare.append(first_test_after(["-p", "no:llmvcr"], one))
        started.append(first_test_after(own, {**one, "BENCH_MARKED": "1"}))
    start_s = statistics.median(started) - statistics.median(bare)
    data = {"plain_s": plain, "plugin_s": plugged, "per_test_ms": per_test_ms,
            "first_test_s": bare, "first_test_own_proxy_s": started, "start_s": start_s}
    rows = [
        Row("11", f"pytest, {TESTS} tests of one request each through a running proxy: without "
            f"the plugin · with it (a session per test; median of {ROUNDS} interleaved runs)",
            f"{statistics.median(plain):.2f} s · {statistics.median(plugged):.2f} s"),
        Row("11", f"the plugin's cost per test (slope between {FEW} and {TESTS} tests, "
            "plugin minus no plugin)", f"{per_test_ms:.1f} ms", "< 20 ms", per_test_ms < 20),
        Row("11", "the plugin starting its own proxy, once per pytest process (launch to the "
            "first test, against no plugin)", f"{start_s:.2f} s", "< 1 s", start_s < 1.0),
    ]
    return rows, data
