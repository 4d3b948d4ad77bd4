"""The cassette-per-test recipes of other runners (issue 15): examples/go (Go `testing`),
examples/node (`node --test`) and examples/java (a plain Java program), each run as the README
says, through `llm-vcr run`: the first run records one cassette per test from the fake upstream,
the second replays them (mode replay: the upstream sees nothing new), and a replay from an empty
folder fails the tests with the proxy's miss text.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from conftest import required
from support.fake_upstream import FakeUpstream
from support.proxy import route_to
from support.tls import UpstreamTLS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
LLM_VCR = Path(sys.executable).parent / "llm-vcr"

RECIPES = {
    # runtime: (program, command in its example folder, cassette names)
    "go": ("go", ["go", "test", "-count=1", "./..."], {"go/TestGreeting", "go/TestFarewell"}),
    "node": ("node", ["node", "--test"], {"node/greeting", "node/farewell"}),
    "java": ("java", ["java", "CassettePerTest.java"], {"java/greeting", "java/farewell"}),
}

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("runtime", sorted(RECIPES))
def test_recipe_records_then_replays_a_cassette_per_test(
    runtime: str, upstream: FakeUpstream, upstream_tls: UpstreamTLS, mitm_confdir: Path,
    tmp_path: Path, govcr_check: Callable[[Iterable[Path]], None],
) -> None:
    program, command, names = RECIPES[runtime]
    if shutil.which(program) is None:
        required(f"{program} is not installed")
    folder = tmp_path / "cassettes"

    def run(mode: str, cassettes: Path) -> subprocess.CompletedProcess[str]:
        argv = [
            str(LLM_VCR), "run", "--mode", mode, "--dir", str(cassettes),
            "--set", f"map_remote={route_to(upstream, ['api.openai.com'])[0]}",
            "--set", f"ssl_verify_upstream_trusted_ca={upstream_tls.ca_cert}",
            "--set", f"confdir={mitm_confdir}",
            "--", *command,
        ]
        env = dict(os.environ, GOPROXY="off", GOFLAGS="-mod=mod")
        return subprocess.run(argv, cwd=EXAMPLES / runtime, env=env, capture_output=True,
                              text=True, timeout=300, check=False)

    recorded = run("record_once", folder)
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    written = {p.relative_to(folder).with_suffix("").as_posix() for p in folder.rglob("*.yaml")}
    assert written == names
    assert len(upstream.requests) == 2
    govcr_check([folder])

    replayed = run("replay", folder)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert len(upstream.requests) == 2

    missed = run("replay", tmp_path / "empty")
    assert missed.returncode != 0
    assert "no recorded answer in cassette" in missed.stdout + missed.stderr
    assert len(upstream.requests) == 2
