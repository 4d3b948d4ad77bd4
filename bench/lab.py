"""The benchmark's test bench: a scratch folder, mitmproxy's CA, the fake TLS upstream, mitmdump
processes (from the test suite's `support` package) and the load generator subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT / "tests") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "tests"))

from support.fake_upstream import FakeUpstream  # noqa: E402
from support.proxy import (  # noqa: E402
    ADDON_SCRIPT,
    STREAM_SCRIPT,
    MitmProxy,
    OptionValue,
    ensure_mitmproxy_ca,
    route_to,
)
from support.tls import make_upstream_tls  # noqa: E402

from .loadgen import MEASURED, MEASURING  # noqa: E402

LOADGEN = Path(__file__).resolve().parent / "loadgen.py"
CANNED_ADDON = Path(__file__).resolve().parent / "canned_addon.py"
MITMDUMP = Path(sys.executable).parent / "mitmdump"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """A measurement could not be made (a proxy failed, the load generator saw errors)."""


def use_addon(addon_dir: Path) -> None:
    """Make `import llmvcr` in this process the measured addon's (`<addon_dir>/llmvcr`), as it
    already is in the processes `Lab.run_module` starts and in the proxies (`-s <addon_dir>/
    vcr.py`): the sections' in-process work (the workload's cassette writer, section 10's check
    of the hand edit, section 11's client environment) then uses the addon under test, not the
    editable install of this checkout. Call it before anything imports `llmvcr`."""
    wanted = (addon_dir / "llmvcr").resolve()
    loaded = sys.modules.get("llmvcr")
    if loaded is None:
        sys.path.insert(0, str(addon_dir))
        import llmvcr as loaded
    found = Path(loaded.__file__ or "").resolve().parent
    if found != wanted:
        raise BenchError(f"llmvcr is imported from {found}, not from the addon measured ({wanted})")


def rss_bytes(pid: int) -> int:
    """VmRSS of a process, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise BenchError(f"no VmRSS for pid {pid}")


def _stat_cpu(stat: Path) -> float:
    """User + system CPU seconds from a /proc `stat` file (a process's or a thread's)."""
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    return _stat_cpu(Path(f"/proc/{pid}/stat"))


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU time of each thread of a process so far, by thread id (a thread that
    ended while being read is left out)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(OSError):
            out[int(task.name)] = _stat_cpu(task / "stat")
    return out


class Lab:
    """Everything the sections share. `close()` stops every process it started."""

    def __init__(
        self, folder: Path, say: Callable[[str], None], addon_dir: Path = ADDON_SCRIPT.parent
    ) -> None:
        self.folder = folder
        self.say = say
        # The addon measured: `<addon_dir>/vcr.py` for mitmdump, `<addon_dir>/llmvcr` for the
        # in-process measurements (another checkout, or a patched copy, can be compared).
        self.addon_script = addon_dir / "vcr.py"
        self.python_env = {**os.environ, "PYTHONPATH": str(addon_dir)}
        self.confdir = folder / "mitmproxy"
        ensure_mitmproxy_ca(self.confdir)
        self.tls = make_upstream_tls(folder / "upstream-tls")
        self._upstream: FakeUpstream | None = None
        self._proxies: list[MitmProxy] = []
        self._jobs = 0

    @property
    def upstream(self) -> FakeUpstream:
        if self._upstream is None:
            self._upstream = FakeUpstream(self.tls).start()
        return self._upstream

    def proxy(
        self,
        name: str,
        *,
        addon: bool = True,
        options: Mapping[str, OptionValue] | None = None,
        scripts: Sequence[Path] = (),
        routed: bool = False,
        stream_responses: bool = False,
        start: bool = True,
    ) -> MitmProxy:
        """A mitmdump on an ephemeral port (started unless `start=False`: then call
        `launch()` and `wait_ready()`, to start several at once). `routed`: map the LLM API
        hosts to the fake upstream."""
        merged: dict[str, OptionValue] = dict(options or {})
        if routed:
            merged["map_remote"] = route_to(self.upstream)
        proxy = MitmProxy(
            confdir=self.confdir,
            log_path=self.folder / "logs" / f"{len(self._proxies):02d}-{name}.log",
            addon=self.addon_script if addon else None,
            scripts=[*scripts, *([STREAM_SCRIPT] if stream_responses else [])],
            options=merged,
            upstream_ca=self.tls.ca_cert,
        )
        self._proxies.append(proxy)
        return proxy.start(timeout=60) if start else proxy

    def stop(self, proxy: MitmProxy) -> None:
        proxy.stop()

    def run_module(self, module: str, *args: str) -> Any:
        """`python -m bench.<module> ARGS` in a fresh process (the measured addon's package
        first on its path); the JSON it printed."""
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{module}", *args],
            cwd=REPO_ROOT,
            env=self.python_env,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise BenchError(f"bench.{module} failed:\n{done.stderr.decode()[-3000:]}")
        return json.loads(done.stdout)

    def loadgen(
        self,
        spec: dict[str, Any],
        watch: MitmProxy | None = None,
        timeout: float = 900.0,
    ) -> dict[str, Any]:
        """Run the load generator on `spec` in its own process; its result. BenchError when it
        failed or any request went wrong. With `watch`, the result also has `proxy_cpu`: the
        CPU seconds that proxy used during the measured phase."""
        self._jobs += 1
        job_file = self.folder / "jobs" / f"{self._jobs:03d}.json"
        job_file.parent.mkdir(parents=True, exist_ok=True)
        job_file.write_text(json.dumps(spec))
        stderr_file = job_file.with_suffix(".stderr")
        pid = watch.process.pid if watch is not None and watch.process is not None else None
        cpu_marks: dict[str, float] = {}
        with stderr_file.open("wb") as stderr, subprocess.Popen(
            [sys.executable, str(LOADGEN), str(job_file)],
            stdout=subprocess.PIPE,
            stderr=stderr,
        ) as process:
            assert process.stdout is not None
            last = b""
            deadline = time.monotonic() + timeout
            for line in process.stdout:
                text = line.strip().decode()
                if text in (MEASURING, MEASURED) and pid is not None:
                    cpu_marks[text] = cpu_seconds(pid)
                last = line
                if time.monotonic() > deadline:
                    process.kill()
                    raise BenchError(f"load generator took more than {timeout} s")
            code = process.wait()
        if code != 0:
            raise BenchError(
                f"load generator failed ({code}):\n{stderr_file.read_text()[-3000:]}"
            )
        result: dict[str, Any] = json.loads(last)
        if pid is not None:
            result["proxy_cpu"] = cpu_marks[MEASURED] - cpu_marks[MEASURING]
        if result["errors"]:
            raise BenchError(
                f"{result['errors']} request(s) failed; first: {result['first_error']}"
            )
        return result

    def close(self) -> None:
        for proxy in self._proxies:
            try:
                proxy.stop(timeout=30)
            except Exception:  # a proxy that will not stop is killed; keep stopping the others
                proxy.kill()
        self._proxies.clear()
        if self._upstream is not None:
            self._upstream.stop()
            self._upstream = None


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)
