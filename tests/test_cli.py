"""The `llm-vcr` command, through the real command line (`python -m llmvcr.cli`) and mitmdump.

Every proxy gets a temporary `--confdir`, so the tests never touch ~/.mitmproxy, and runs in a
temporary working folder.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT, SEED
from llmvcr import cli, launcher
from support.fake_upstream import FakeUpstream
from support.hello import hello_server
from support.proxy import route_to
from support.tls import UpstreamTLS

CLI = [sys.executable, "-m", "llmvcr.cli"]
TIMEOUT = 120  # generous: only reached when something hangs
BUNDLE_VARIABLES = launcher.CA_VARIABLES


def llm_vcr(*args: str, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def python_child(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("llm-vcr: ")]


@pytest.fixture
def confdir(tmp_path: Path) -> Path:
    return tmp_path / "mitmproxy-conf"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


# -- run: exit code and environment ---------------------------------------------------------------

ENV_REPORTER = """
    import json, os, socket, sys
    port = int(os.environ["HTTPS_PROXY"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        listening = True
    json.dump({"env": dict(os.environ), "listening": listening}, sys.stdout)
    sys.exit(7)
"""


@pytest.mark.e2e
def test_run_gives_the_command_the_proxy_environment_and_returns_its_exit_code(
    confdir: Path, workdir: Path
) -> None:
    env = dict(os.environ, GIT_SSL_CAINFO="/somewhere/else.pem")
    env.pop("PIP_CERT", None)
    result = llm_vcr("run", "--mode", "passthrough", "--confdir", str(confdir), "--",
                     *python_child(ENV_REPORTER), cwd=workdir, env=env)
    assert result.returncode == 7, result.stderr
    report = json.loads(result.stdout)
    child_env = report["env"]
    assert report["listening"]
    url = child_env["HTTPS_PROXY"]
    assert url.startswith("http://127.0.0.1:")
    for name in ("HTTP_PROXY", "https_proxy", "http_proxy"):
        assert child_env[name] == url
    assert child_env["NO_PROXY"] == child_env["no_proxy"] == "localhost,127.0.0.1,::1"
    assert child_env["NODE_USE_ENV_PROXY"] == "1"
    bundle = confdir / "llm-vcr-ca-bundle.pem"
    for name in (*BUNDLE_VARIABLES, "GIT_SSL_CAINFO"):  # GIT_SSL_CAINFO: set before, overridden
        assert child_env[name] == str(bundle), name
    assert "PIP_CERT" not in child_env  # not set before: left alone
    text = bundle.read_text()
    assert (confdir / "mitmproxy-ca-cert.pem").read_text() in text
    assert text.count("-----BEGIN CERTIFICATE-----") > 1  # the system CAs are in it too


@pytest.mark.e2e
def test_run_stops_the_proxy_when_the_command_ends(confdir: Path, workdir: Path) -> None:
    code = """
        import os
        print(os.environ["HTTPS_PROXY"].rsplit(":", 1)[1])
    """
    result = llm_vcr("run", "--confdir", str(confdir), "--", *python_child(code), cwd=workdir)
    assert result.returncode == 0, result.stderr
    port = int(result.stdout)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 5):
        pass


# -- run: curl trusts the proxy ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_upstream(upstream_tls: UpstreamTLS) -> Iterator[tuple[UpstreamTLS, int]]:
    """A plain local HTTPS server whose certificate only the test CA vouches for."""
    with hello_server(upstream_tls, line_end="\n") as port:
        yield upstream_tls, port


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_trusts_the_proxy(
    confdir: Path, workdir: Path, tls_upstream: tuple[UpstreamTLS, int]
) -> None:
    tls, port = tls_upstream
    url = f"https://127.0.0.1:{port}/through-the-proxy"
    result = llm_vcr(
        "run", "--mode", "passthrough", "--proxy-localhost", "--confdir", str(confdir),
        "--set", f"ssl_verify_upstream_trusted_ca={tls.ca_cert}",
        "--", "curl", "-sS", "--fail", url, cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello /through-the-proxy\n"
    # The same bundle does not vouch for the upstream itself: curl succeeded above only because
    # it went through the proxy and trusted the proxy's CA.
    direct = subprocess.run(
        ["curl", "-sS", "--fail", "--noproxy", "*", url],
        env=dict(os.environ, CURL_CA_BUNDLE=str(confdir / "llm-vcr-ca-bundle.pem")),
        capture_output=True, text=True, timeout=30,
    )
    assert direct.returncode == 60, direct.stderr  # peer certificate cannot be authenticated


# -- run: failures are one line ------------------------------------------------------------------


def test_busy_port_is_one_line(confdir: Path, workdir: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = llm_vcr("run", "--port", str(port), "--confdir", str(confdir), "--", "true",
                         cwd=workdir)
    assert result.returncode == 2
    assert result.stderr == f"llm-vcr: port {port} is already in use\n"


def test_command_not_found_is_one_line(confdir: Path, workdir: Path) -> None:
    result = llm_vcr("run", "--confdir", str(confdir), "--", "no-such-command-xyz", "arg",
                     cwd=workdir)
    assert result.returncode == 127
    assert result.stderr == "llm-vcr: command not found: no-such-command-xyz\n"
    assert not confdir.exists()  # failed before starting any proxy


def test_missing_mitmdump_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setattr(sys, "executable", str(empty / "python3"))
    monkeypatch.setenv("PATH", str(empty))
    code = cli.main(["run", "--confdir", str(tmp_path / "conf"), "--", "/bin/sh", "-c", "true"])
    assert code == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("llm-vcr: mitmdump not found")


def test_too_old_python_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "version_info", (3, 11, 9, "final", 0))
    assert cli.main(["run", "--", "true"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("llm-vcr: needs Python >= 3.12, but this is Python 3.11.9")


def _old_python() -> str | None:
    for name in ("python3.11", "python3.10", "python3.9", "python3"):
        found = shutil.which(name)
        if found and subprocess.run(
            [found, "-c", "import sys; sys.exit(sys.version_info >= (3, 12))"], timeout=30
        ).returncode == 0:
            return found
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = Path(subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip())
        for candidate in sorted(root.glob("versions/3.1[01].*/bin/python3")):
            return str(candidate)
    return None


def test_cli_module_loads_and_refuses_under_a_real_old_python(workdir: Path) -> None:
    old = _old_python()
    if old is None:
        pytest.skip("no Python older than 3.12 on this machine")
    result = subprocess.run(
        [old, "-m", "llmvcr.cli", "run", "--", "true"], cwd=workdir, capture_output=True,
        text=True, env=dict(os.environ, PYTHONPATH=str(ROOT / "addon")), timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("llm-vcr: needs Python >= 3.12, but this is Python 3.")
    assert result.stderr.count("\n") == 1


@pytest.mark.e2e
def test_proxy_start_failure_shows_its_last_lines(confdir: Path, workdir: Path) -> None:
    result = llm_vcr("run", "--confdir", str(confdir), "--set", "vcr_mode=sideways", "--",
                     "true", cwd=workdir)
    assert result.returncode == 1
    assert result.stderr.startswith("llm-vcr: the proxy exited during start-up (exit code 1)")
    assert "sideways" in result.stderr  # mitmproxy's own complaint is shown


@pytest.mark.e2e
def test_proxy_start_timeout(confdir: Path, workdir: Path) -> None:
    result = llm_vcr("run", "--start-timeout", "0.01", "--confdir", str(confdir), "--", "true",
                     cwd=workdir)
    assert result.returncode == 1
    assert result.stderr.startswith("llm-vcr: the proxy did not start within 0.01 s")


# -- run: signals ----------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize(("signum", "expected"), [(signal.SIGINT, 42), (signal.SIGTERM, 43)])
def test_signals_reach_the_command(
    confdir: Path, workdir: Path, signum: int, expected: int
) -> None:
    code = """
        import os, signal, sys, time
        signal.signal(signal.SIGINT, lambda *a: sys.exit(42))
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(43))
        print(os.environ["HTTPS_PROXY"].rsplit(":", 1)[1], flush=True)
        time.sleep(60)
    """
    process = subprocess.Popen(
        [*CLI, "run", "--confdir", str(confdir), "--", *python_child(code)],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())  # the command runs
        process.send_signal(signum)
        assert process.wait(TIMEOUT) == expected
    finally:
        process.kill()
        process.communicate()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 5):
        pass


# -- run: replay, --strict, and the demo client ---------------------------------------------------


@pytest.fixture
def seed_store(workdir: Path) -> Path:
    store = workdir / "cassettes"
    store.mkdir()
    shutil.copy(SEED, store / "simple_streaming.yaml")
    return store


MISS_CLIENT = """
    import openai
    client = openai.OpenAI(
        base_url="https://fantasy-playground-resource.openai.azure.com/openai/v1",
        api_key="k", max_retries=0,
    )
    try:
        client.chat.completions.create(
            model="gpt-5-mini", messages=[{"role": "user", "content": "Say bye in Portuguese"}]
        )
    except openai.NotFoundError as e:
        print("miss", e.response.headers.get("x-should-retry"))
"""


@pytest.mark.e2e
@pytest.mark.parametrize("strict", [True, False])
def test_strict_fails_when_a_replay_misses(
    confdir: Path, workdir: Path, seed_store: Path, strict: bool
) -> None:
    args = ["run", "--mode", "replay", "--dir", str(seed_store), "--cassette", "simple_streaming",
            "--confdir", str(confdir)]
    if strict:
        args.append("--strict")
    result = llm_vcr(*args, "--", *python_child(MISS_CLIENT), cwd=workdir)
    assert result.stdout == "miss false\n", result.stderr
    assert "cassette 'simple_streaming': replayed 0, recorded 0, missed 1, unused 1" in (
        result.stderr
    )
    if strict:
        assert result.returncode == cli.STRICT_EXIT
        url = "https://fantasy-playground-resource.openai.azure.com/openai/v1/chat/completions"
        strict_lines = [line for line in error_lines(result.stderr) if "--strict" in line]
        assert len(strict_lines) == 2, result.stderr  # one line per finding
        assert strict_lines[0].startswith(
            f"llm-vcr: --strict: missed: cassette 'simple_streaming': POST {url}: "
        )
        assert strict_lines[1] == (
            f"llm-vcr: --strict: unused: cassette 'simple_streaming': #0 POST {url}"
        )
    else:
        assert result.returncode == 0, result.stderr


@pytest.mark.e2e
def test_demo_client_replays_the_seed_strictly(
    confdir: Path, workdir: Path, seed_store: Path
) -> None:
    result = llm_vcr(
        "run", "--mode", "replay", "--dir", str(seed_store), "--cassette", "simple_streaming",
        "--strict", "--confdir", str(confdir), "--",
        sys.executable, str(ROOT / "scripts" / "demo_client.py"), cwd=workdir,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "assistant: Olá!"
    assert "(usage: 19 prompt + 140 completion tokens)" in result.stdout
    assert "cassette 'simple_streaming': replayed 1, recorded 0, missed 0, unused 0" in (
        result.stderr
    )
    assert "client connect" not in result.stderr  # mitmproxy's connection lines are kept out


@pytest.mark.e2e
def test_run_records_then_replays_through_the_command(
    confdir: Path, workdir: Path, upstream: FakeUpstream, upstream_tls: UpstreamTLS
) -> None:
    store = workdir / "store"
    demo = [sys.executable, str(ROOT / "scripts" / "demo_client.py")]
    routes = [arg for spec in route_to(upstream) for arg in ("--set", f"map_remote={spec}")]
    recorded = llm_vcr(
        "run", "--mode", "record", "--dir", str(store), "--cassette", "team/seed",
        "--confdir", str(confdir), *routes,
        "--set", f"ssl_verify_upstream_trusted_ca={upstream_tls.ca_cert}", "--", *demo,
        cwd=workdir,
    )
    assert recorded.returncode == 0, recorded.stderr
    assert recorded.stdout.startswith("assistant: Olá!\n")
    assert len(upstream.requests) == 1
    # The proxy was stopped gently: the recording is on disk when `run` returns.
    assert (store / "team" / "seed.yaml").read_text().count("\n- id: ") == 1

    replayed = llm_vcr(
        "run", "--mode", "replay", "--strict", "--dir", str(store), "--cassette", "team/seed",
        "--confdir", str(confdir), "--", *demo, cwd=workdir,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout
    assert len(upstream.requests) == 1  # the replay never reached the upstream


# -- serve and env ---------------------------------------------------------------------------------


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "[::]:8080", "192.0.2.10:8080", "myhost:1"])
def test_serve_refuses_to_listen_beyond_loopback_without_auth(
    confdir: Path, workdir: Path, listen: str
) -> None:
    result = llm_vcr("serve", "--listen", listen, "--confdir", str(confdir), cwd=workdir)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("llm-vcr: refusing to listen on ")
    assert "--auth" in lines[0]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.3.2.1", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("LOCALHOST", True), ("0.0.0.0", False), ("::", False), ("", False),
     ("10.0.0.1", False), ("example.com", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert launcher.is_loopback(host) is loopback


def read_exports(lines: list[str]) -> dict[str, str]:
    exports = {}
    for line in lines:
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            exports[name] = shlex.split(value)[0]
    return exports


@pytest.mark.e2e
def test_serve_prints_exports_keeps_a_state_file_and_env_repeats_them(
    confdir: Path, workdir: Path
) -> None:
    # The password comes from the environment: `--auth` would show it to `ps` like any argument.
    process = subprocess.Popen(
        [*CLI, "serve", "--listen", "127.0.0.1:0", "--confdir", str(confdir)],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "LLM_VCR_AUTH": "team:pa ss@1"},
    )
    try:
        assert process.stdout is not None
        banner = []
        while not (line := process.stdout.readline()).startswith("# Pick a cassette"):
            assert line, "serve ended before printing its banner"
            banner.append(line.rstrip("\n"))
        exports = read_exports(banner)
        url = exports["HTTPS_PROXY"]
        assert url.startswith("http://team:pa%20ss%401@127.0.0.1:")
        state_file = confdir / "llm-vcr-serve.json"
        assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
        assert json.loads(state_file.read_text())["pid"] == process.pid

        env = llm_vcr("env", "--no-session", "--confdir", str(confdir), cwd=workdir)
        assert env.returncode == 0, env.stderr
        assert read_exports(env.stdout.splitlines()) == exports
        assert exports["SSL_CERT_FILE"] == str(confdir / "llm-vcr-ca-bundle.pem")
        # By default `env` opens a session of its own: on its own port (the password is the
        # login here), named in LLM_VCR_SESSION.
        own = llm_vcr("env", "--confdir", str(confdir), cwd=workdir)
        assert own.returncode == 0, own.stderr
        session_exports = read_exports(own.stdout.splitlines())
        assert session_exports["LLM_VCR_SESSION"]
        session_url = session_exports["HTTPS_PROXY"]
        assert session_url.startswith("http://team:pa%20ss%401@127.0.0.1:") and session_url != url

        port = int(url.rsplit(":", 1)[1])
        assert _proxy_status(port, None) == 407  # credentials required
        assert _proxy_status(port, "team:pa ss@2") == 407  # a wrong password
        assert _proxy_status(port, "team:pa ss@1") == 502  # accepted: upstream is closed
        # The password is on no command line (`ps` shows every user's) and in no file but the
        # private ones.
        proxy_pid = json.loads(state_file.read_text())["proxy_pid"]
        for pid in (process.pid, proxy_pid):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
            assert b"pa ss" not in argv and b"pa%20ss" not in argv, argv
        private = list(confdir.glob(".llm-vcr-serve-*.htpasswd"))
        assert len(private) == 1 and stat.S_IMODE(private[0].stat().st_mode) == 0o600
        assert b"pa ss" not in private[0].read_bytes()  # a hash
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(TIMEOUT)
        process.communicate()
    assert code == 0
    assert not state_file.exists()
    assert not list(confdir.glob(".llm-vcr-serve-*.htpasswd"))
    after = llm_vcr("env", "--confdir", str(confdir), cwd=workdir)
    assert after.returncode == 1
    assert after.stderr.startswith("llm-vcr: no llm-vcr serve is running")


def _proxy_status(port: int, auth: str | None) -> int:
    """The status the proxy answers to a plain-HTTP request for a closed local port."""
    import base64

    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        closed = _closed_port()
        head = f"GET http://127.0.0.1:{closed}/ HTTP/1.1\r\nHost: 127.0.0.1:{closed}\r\n"
        if auth:
            token = base64.b64encode(auth.encode()).decode()
            head += f"Proxy-Authorization: Basic {token}\r\n"
        conn.sendall((head + "Connection: close\r\n\r\n").encode())
        status_line = conn.makefile("rb").readline().decode()
    return int(status_line.split()[1])


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_env_reports_a_serve_that_is_gone(confdir: Path, workdir: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    confdir.mkdir()
    launcher.write_serve_state(confdir, {
        "pid": gone.pid, "proxy_url": "http://127.0.0.1:1", "ca_bundle": str(confdir / "b.pem"),
    })
    result = llm_vcr("env", "--confdir", str(confdir), cwd=workdir)
    assert result.returncode == 1
    assert result.stderr == (
        f"llm-vcr: the llm-vcr serve recorded in {confdir / 'llm-vcr-serve.json'} "
        f"(pid {gone.pid}) is no longer running\n"
    )


def test_env_for_a_port_and_ca_create_the_ca_without_a_proxy(
    confdir: Path, workdir: Path
) -> None:
    # A session needs the proxy: with none on the port, that is the one-line error ...
    nobody = llm_vcr("env", "--port", "8123", "--confdir", str(confdir), cwd=workdir)
    assert nobody.returncode == 1
    assert nobody.stderr == (
        "llm-vcr: cannot reach an llm-vcr proxy at 127.0.0.1:8123: Connection refused\n"
    )
    # ... and without one, the lines need no proxy at all.
    result = llm_vcr("env", "--no-session", "--port", "8123", "--proxy-localhost",
                     "--confdir", str(confdir), cwd=workdir)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    exports = read_exports(lines)
    assert exports["https_proxy"] == "http://127.0.0.1:8123"
    assert "NO_PROXY" not in exports
    assert lines[-1] == "unset NO_PROXY no_proxy"
    bundle = confdir / "llm-vcr-ca-bundle.pem"
    assert exports["CURL_CA_BUNDLE"] == str(bundle)
    ca = llm_vcr("ca", "--confdir", str(confdir), cwd=workdir)
    assert ca.returncode == 0, ca.stderr
    assert ca.stdout.splitlines() == [
        f"CA certificate: {confdir / 'mitmproxy-ca-cert.pem'}",
        f"CA bundle (system CAs + this CA): {bundle}",
    ]
    assert (confdir / "mitmproxy-ca-cert.pem").read_text() in bundle.read_text()


def test_concurrent_first_starts_make_one_ca(confdir: Path, workdir: Path) -> None:
    """While another llm-vcr holds the CA lock, a second one waits instead of making its own CA
    (two mitmdumps on a fresh confdir would overwrite each other's CA files)."""
    import fcntl

    confdir.mkdir()
    with open(confdir / ".llm-vcr-ca.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        waiting = subprocess.Popen([*CLI, "ca", "--confdir", str(confdir)], cwd=workdir,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            with pytest.raises(subprocess.TimeoutExpired):
                waiting.wait(1.5)
            assert not (confdir / "mitmproxy-ca-cert.pem").exists()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    out, err = waiting.communicate(timeout=TIMEOUT)
    assert waiting.returncode == 0, err
    assert out.startswith(f"CA certificate: {confdir / 'mitmproxy-ca-cert.pem'}\n")


def test_export_lines_quote_for_the_shell() -> None:
    lines = launcher.export_lines({"A": "x y", "B": None, "C": "plain"})
    assert lines == ["export A='x y'", "export C=plain", "unset B"]


# -- how options reach mitmdump --------------------------------------------------------------------


def test_options_become_mitmdump_settings(tmp_path: Path) -> None:
    args = cli.parse_args([
        "run", "--mode", "replay", "--hosts", "a.example, b.example", "--hosts", "c.example",
        "--ignore-json", "metadata.id", "--reuse", "--set", "vcr_mode=record",
        "--set", "confdir=/elsewhere", "--set", "vcr_hosts=d.example", "--", "cmd", "--mode", "x",
    ])
    assert args.command == ["cmd", "--mode", "x"]
    settings = cli.mitmdump_settings(args, {"flow_detail": "0", "confdir": "/c"})
    values = settings[1::2]
    assert set(settings[0::2]) == {"--set"}
    assert values == [
        "flow_detail=0", "confdir=/c", "vcr_reuse=true",
        "vcr_hosts=a.example", "vcr_hosts=b.example", "vcr_hosts=c.example",
        "vcr_ignore_json=metadata.id",
        "vcr_mode=record", "vcr_hosts=d.example",  # the user's --set wins over --mode
    ]
    assert cli.confdir_of(args) == Path("/elsewhere")


def test_run_without_double_dash_takes_the_rest_as_the_command() -> None:
    args = cli.parse_args(["run", "--strict", "python", "-c", "print(1)"])
    assert args.strict
    assert args.command == ["python", "-c", "print(1)"]


# -- fmt -------------------------------------------------------------------------------------------


def test_fmt_checks_and_rewrites_cassettes(workdir: Path) -> None:
    odd = workdir / "odd.yaml"
    odd.write_text(SEED.read_text().replace("    method: POST", "    method:   POST"))
    check = llm_vcr("fmt", "--check", str(workdir), cwd=workdir)
    assert check.returncode == 1
    assert check.stdout == f"{odd}\n"
    rewrite = llm_vcr("fmt", str(odd), cwd=workdir)
    assert rewrite.returncode == 0, rewrite.stderr
    assert odd.read_bytes() == SEED.read_bytes()
    assert llm_vcr("fmt", "--check", str(odd), cwd=workdir).returncode == 0


# -- scripts/llm-vcr -------------------------------------------------------------------------------


def test_script_wrapper_is_quiet_when_installed(confdir: Path, workdir: Path) -> None:
    result = subprocess.run(
        [str(ROOT / "scripts" / "llm-vcr"), "env", "--no-session", "--port", "8124",
         "--confdir", str(confdir)],
        cwd=workdir, capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert read_exports(result.stdout.splitlines())["HTTP_PROXY"] == "http://127.0.0.1:8124"
