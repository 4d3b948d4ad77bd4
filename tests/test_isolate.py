"""`llm-vcr run --isolate` (issue 16): the only way out is the proxy; what would bypass it fails at
once and is named in one line. And `run`'s hint when a failed command sent nothing to the proxy.

The namespace's pieces (DNS question and answer, the packet reader) are tested as pure
functions; the rest through the real command line and mitmdump. With CI=true a machine that
cannot make a network namespace fails these tests instead of skipping them.
"""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import SEED, required
from llmvcr import isolate, isolate_namespace
from llmvcr.launcher import LaunchError

CLI = [sys.executable, "-m", "llmvcr.cli"]
TIMEOUT = 120
SEED_URL = "https://fantasy-playground-resource.openai.azure.com/openai/v1/chat/completions"


def llm_vcr(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=TIMEOUT)


def llm_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("llm-vcr: ")]


# -- the namespace's pieces ------------------------------------------------------------------------


def dns_query(name: str, ident: int = 0x1234, qtype: int = 1) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + struct.pack("!HH", qtype, 1)


def test_a_name_lookup_is_recorded_and_answered_no_such_name() -> None:
    query = dns_query("API.OpenAI.com")
    parsed = isolate_namespace.parse_question(query)
    assert parsed == ("api.openai.com", len(query))
    answer = isolate_namespace.nxdomain(query, parsed[1])
    ident, flags, questions, answers = struct.unpack_from("!HHHH", answer)
    assert (ident, questions, answers) == (0x1234, 1, 0)
    assert flags & 0x8000 and flags & 0x0100 and flags & 0x000F == 3  # answer, RD kept, NXDOMAIN
    assert answer[12:] == query[12:]
    assert isolate_namespace.parse_question(query[:20]) is None  # cut short
    assert isolate_namespace.parse_question(b"\0" * 5) is None


def ipv4_packet(destination: str, port: int, protocol: int = 6, flags: int = 0x02,
                source_port: int = 40000) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0, 64, protocol, 0,
                         socket.inet_aton("127.0.0.1"), socket.inet_aton(destination))
    if protocol == 6:
        return header + struct.pack("!HHIIBBHHH", source_port, port, 0, 0, 0x50, flags, 0, 0, 0)
    return header + struct.pack("!HHHH", source_port, port, 8, 0)


def test_the_packet_reader_names_connections_that_bypass_the_relay() -> None:
    parse = isolate_namespace.parse_packet
    assert parse(ipv4_packet("93.184.216.34", 443), 4, 8080) == "93.184.216.34:443"
    assert parse(ipv4_packet("127.0.0.1", 8443), 4, 8080) == "127.0.0.1:8443"
    assert parse(ipv4_packet("127.0.0.1", 8080), 4, 8080) is None  # the relay to the proxy
    assert parse(ipv4_packet("10.0.0.1", 443, flags=0x12), 4, 8080) is None  # SYN-ACK
    assert parse(ipv4_packet("10.0.0.1", 443, flags=0x10), 4, 8080) is None  # data
    assert parse(ipv4_packet("8.8.8.8", 53, protocol=17), 4, 8080) == "8.8.8.8:53"
    assert parse(ipv4_packet("127.0.0.1", 53, protocol=17), 4, 8080) is None  # the responder
    assert parse(ipv4_packet("127.0.0.1", 40000, 17, source_port=53), 4, 8080) is None
    ipv6 = struct.pack("!IHBB16s16s", 0x60000000, 20, 6, 64, socket.inet_pton(
        socket.AF_INET6, "::1"), socket.inet_pton(socket.AF_INET6, "2001:db8::1"))
    ipv6 += struct.pack("!HHIIBBHHH", 40000, 443, 0, 0, 0x50, 0x02, 0, 0, 0)
    assert parse(ipv6, 6, 8080) == "[2001:db8::1]:443"
    assert parse(b"\x45" + b"\0" * 10, 4, 8080) is None


def test_the_report_line() -> None:
    assert isolate.report_line({"names": [], "addresses": []}) == (
        "--isolate: nothing tried to bypass the proxy"
    )
    assert isolate.report_line({"names": ["api.openai.com"], "addresses": ["10.0.0.1:443"]}) == (
        "--isolate: blocked what would have bypassed the proxy: api.openai.com (name lookup), "
        "10.0.0.1:443"
    )
    assert isolate.report_line(None).startswith("--isolate: no report from the namespace")


def test_no_namespaces_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(LaunchError) as raised:
        isolate.check_available()
    assert raised.value.exit_code == 2
    assert raised.value.message.startswith("--isolate needs Linux network namespaces, which darwin")
    monkeypatch.setattr(sys, "platform", "linux")
    refusing = tmp_path / "refuse.py"
    refusing.write_text("import sys\nprint('unshare: Operation not permitted', file=sys.stderr)\n"
                        "sys.exit(70)\n")
    monkeypatch.setattr(isolate, "NAMESPACE_SCRIPT", refusing)
    with pytest.raises(LaunchError) as raised:
        isolate.check_available()
    assert raised.value.message.startswith(
        "--isolate: this system does not allow a network namespace here (unshare: Operation not "
        "permitted): it needs root, or unprivileged user namespaces"
    )
    assert "\n" not in raised.value.message


# -- through the command line ----------------------------------------------------------------------

# The same program both ways: "direct" ignores the proxy variables (trust_env=False), "proxied"
# uses them. Each first looks the name up and connects to a local port by address.
CLIENT = """
    import socket, sys, httpx
    how, port = sys.argv[1], int(sys.argv[2])
    body = {"messages": [{"content": "You are a helpful assistant", "role": "system"},
                         {"content": "Say hi in Portuguese", "role": "user"}],
            "model": "gpt-5-mini", "max_completion_tokens": 4000,
            "stream_options": {"include_usage": True}, "stream": True}
    if how == "direct":
        try:
            socket.create_connection(("127.0.0.1", port), timeout=60)
        except ConnectionRefusedError:
            print("local port: refused")
    with httpx.Client(trust_env=how == "proxied", timeout=60) as client:
        try:
            answer = client.post(sys.argv[3], json=body)
        except httpx.ConnectError as e:  # refused or no such name: never a timeout
            print("request: cannot connect")
            sys.exit(4)
        print("request:", answer.status_code, "Ol\\u00e1" in answer.text)
"""


@pytest.fixture(scope="module")
def namespaces() -> None:
    try:
        isolate.check_available()
    except LaunchError as e:
        required(e.message)


@pytest.fixture
def seed_store(tmp_path: Path) -> Path:
    store = tmp_path / "cassettes"
    store.mkdir()
    shutil.copy(SEED, store / "simple_streaming.yaml")
    return store


def run_client(tmp_path: Path, store: Path, how: str, *extra: str, url: str = SEED_URL
               ) -> tuple[subprocess.CompletedProcess[str], int]:
    """CLIENT under `llm-vcr run`; and the port of a local server it tries to reach directly."""
    with socket.socket() as listening:  # a local server the isolated command cannot reach
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        result = llm_vcr(
            "run", *extra, "--mode", "replay", "--dir", str(store),
            "--cassette", "simple_streaming", "--confdir", str(tmp_path / "conf"), "--",
            sys.executable, "-c", textwrap.dedent(CLIENT), how, str(port), url,
            cwd=tmp_path,
        )
    return result, port


@pytest.mark.e2e
def test_isolate_blocks_and_names_what_bypasses_the_proxy(
    namespaces: None, tmp_path: Path, seed_store: Path
) -> None:
    result, port = run_client(tmp_path, seed_store, "direct", "--isolate")
    assert result.stdout.splitlines() == ["local port: refused", "request: cannot connect"], (
        result.stderr
    )
    assert result.returncode == 4
    reports = [line for line in llm_lines(result.stderr) if "--isolate:" in line]
    assert reports == [
        "llm-vcr: --isolate: blocked what would have bypassed the proxy: "
        f"fantasy-playground-resource.openai.azure.com (name lookup), 127.0.0.1:{port}"
    ], result.stderr


@pytest.mark.e2e
def test_isolate_lets_the_same_command_through_the_proxy(
    namespaces: None, tmp_path: Path, seed_store: Path
) -> None:
    result, _ = run_client(tmp_path, seed_store, "proxied", "--isolate", "--strict")
    assert result.stdout == "request: 200 True\n", result.stderr
    assert result.returncode == 0, result.stderr
    assert "llm-vcr: --isolate: nothing tried to bypass the proxy" in result.stderr
    assert "replayed 1, recorded 0, missed 0, unused 0" in result.stderr


@pytest.mark.e2e
def test_the_hint_appears_only_when_the_command_failed_and_the_proxy_saw_nothing(
    tmp_path: Path, seed_store: Path
) -> None:
    hint = "llm-vcr: hint: the command failed and no request reached the proxy: "
    # .invalid never resolves: this run is not isolated, and must not reach a real host.
    bypassing, _ = run_client(tmp_path, seed_store, "direct",
                              url="https://api.llm-vcr.invalid/v1/chat/completions")
    assert bypassing.returncode == 4
    hints = [line for line in llm_lines(bypassing.stderr) if line.startswith(hint)]
    assert len(hints) == 1 and "Python clients read HTTPS_PROXY" in hints[0], bypassing.stderr

    proxied_but_failing = llm_vcr(
        "run", "--mode", "replay", "--dir", str(seed_store), "--cassette", "simple_streaming",
        "--confdir", str(tmp_path / "conf"), "--", sys.executable, "-c", textwrap.dedent("""
            import httpx, sys
            httpx.get("https://api.openai.com/v1/models", timeout=60)
            sys.exit(5)
        """), cwd=tmp_path,
    )
    assert proxied_but_failing.returncode == 5, proxied_but_failing.stderr
    assert "hint:" not in proxied_but_failing.stderr

    quiet_success = llm_vcr("run", "--mode", "replay", "--dir", str(seed_store),
                            "--confdir", str(tmp_path / "conf"), "--", "true", cwd=tmp_path)
    assert quiet_success.returncode == 0, quiet_success.stderr
    assert "hint:" not in quiet_success.stderr


def test_the_namespace_script_needs_only_the_standard_library() -> None:
    """The namespace script is stdlib only (it runs with python -I, beside any PYTHONPATH)."""
    source = Path(isolate_namespace.__file__).read_text()
    imports = {line.split()[1].split(".")[0] for line in source.splitlines()
               if line.startswith(("import ", "from ")) and "__future__" not in line}
    assert not {name for name in imports if name == "llmvcr"}
    assert isolate.NAMESPACE_SCRIPT.name == "isolate_namespace.py"
