"""Node and Java through `llm-vcr run` with no extra flags (issue 16), and the pieces behind it.

Unit tests first (NODE_OPTIONS/JAVA_TOOL_OPTIONS building, the user's settings kept, each bad
input's one line, the hint), then end to end through the real command line: Node 20's built-in
fetch, its https module and the npm openai SDK replay the seed and record a stream; Java's
HttpClient replays the seed and still reaches an HTTPS server signed by a CA from the (test) JDK
store. npm packages land in the llm-vcr cache (~/.cache/llm-vcr, outside the clone), so a second
run installs nothing. With CI=true a missing node, npm, registry or JDK fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import SEED, required
from llmvcr import runtimes
from llmvcr.runtimes import cache, java, node
from support.fake_upstream import FakeUpstream
from support.hello import hello_server
from support.proxy import route_to
from support.tls import UpstreamTLS

CLI = [sys.executable, "-m", "llmvcr.cli"]
TIMEOUT = 300  # generous: a first npm install on a slow registry
OPENAI_NODE = "6.30.1"  # the npm openai SDK the tests install (fetch-based, runs on Node 20)


def llm_vcr(*args: str, cwd: Path, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)


def lines_of(said: list[str]) -> Callable[[str], None]:
    return said.append


# -- Node: NODE_OPTIONS, versions, undici ---------------------------------------------------------


def test_node_options_are_appended_after_the_users() -> None:
    preload = node.PRELOAD
    assert node.node_options(None) == f"--require {preload}"
    assert node.node_options("  ") == f"--require {preload}"
    assert node.node_options("--max-old-space-size=64") == (
        f"--max-old-space-size=64 --require {preload}"
    )
    once = node.node_options("--trace-warnings")
    assert node.node_options(once) == once  # a nested run adds it once
    assert node.node_options('--title "unclosed') is None
    spaced = node.node_options(None, Path("/opt/my tools/p.cjs"))
    assert spaced == '--require "/opt/my tools/p.cjs"'
    assert node.split_options(spaced or "") == ["--require", "/opt/my tools/p.cjs"]


@pytest.mark.parametrize(("version", "native"), [
    ((18, 20, 0), False), ((20, 20, 2), False), ((22, 20, 0), False), ((22, 21, 0), True),
    ((23, 11, 0), False), ((24, 0, 0), True), ((25, 1, 0), True),
])
def test_which_nodes_have_a_proxy_aware_fetch(version: tuple[int, int, int], native: bool) -> None:
    assert node.native_fetch_proxy(version) is native


def test_a_node_options_llm_vcr_cannot_extend_is_kept_with_one_line(tmp_path: Path) -> None:
    said: list[str] = []
    base = {"PATH": "", "NODE_OPTIONS": '--title "oops'}
    changes = node.environment(base, tmp_path, tmp_path / "cache", lines_of(said))
    assert "NODE_OPTIONS" not in changes  # the user's value stays as it is
    assert changes["NODE_USE_ENV_PROXY"] == "1"
    assert len(said) == 1
    assert said[0].startswith("NODE_OPTIONS has an unclosed quote")
    assert f"--require {node.PRELOAD}" in said[0]


def test_the_apps_own_undici_is_used(tmp_path: Path) -> None:
    package = tmp_path / "app" / "node_modules" / "undici"
    package.mkdir(parents=True)
    (package / "package.json").write_text('{"version": "6.10.0"}')
    nested = tmp_path / "app" / "src"
    nested.mkdir()
    assert node.app_undici(nested) is None  # too old: no EnvHttpProxyAgent
    (package / "package.json").write_text('{"version": "7.2.0"}')
    assert node.app_undici(nested) == package


def test_no_npm_is_one_line(tmp_path: Path) -> None:
    said: list[str] = []
    assert node.ensure_undici(tmp_path, {"PATH": str(tmp_path)}, lines_of(said)) is None
    assert len(said) == 1
    assert said[0].startswith("Node's fetch needs the undici package to use the proxy and npm is")
    assert "npm install undici@" in said[0]


def _require_npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        required("npm is not installed")
    assert npm is not None
    return npm


def test_no_registry_is_one_line_and_installs_nothing(tmp_path: Path) -> None:
    _require_npm()
    environ = dict(os.environ, npm_config_registry="http://127.0.0.1:9/",
                   npm_config_fetch_retries="0", npm_config_cache=str(tmp_path / "npm-cache"),
                   npm_config_offline="false")
    said: list[str] = []
    assert node.ensure_undici(tmp_path / "cache", environ, lines_of(said)) is None
    assert said[0] == (f"installing undici {node.UNDICI_VERSION} for Node's fetch into "
                       f"{tmp_path / 'cache' / 'node' / f'undici-{node.UNDICI_VERSION}'} (once)")
    assert len(said) == 2, said
    assert said[1].startswith("could not install undici from the npm registry (npm error ")
    assert said[1].endswith("whose fetch honours HTTPS_PROXY itself")
    assert not (tmp_path / "cache" / "node" / f"undici-{node.UNDICI_VERSION}").exists()
    assert [p.name for p in (tmp_path / "cache" / "node").iterdir()] == [".install.lock"]


def test_the_cache_folder_is_outside_the_clone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/h")
    assert cache.cache_dir({}) == Path("/h/.cache/llm-vcr")
    assert cache.cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/llm-vcr")
    assert cache.cache_dir({"LLM_VCR_CACHE": "/c", "XDG_CACHE_HOME": "/x"}) == Path("/c")


# -- Java: JAVA_TOOL_OPTIONS ----------------------------------------------------------------------


def _fake_jdk(tmp_path: Path) -> Path:
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\nexit 0\n")
    (home / "bin" / "java").chmod(0o755)
    return home


def test_no_jdk_cacerts_is_one_line_and_the_proxy_is_still_set(tmp_path: Path) -> None:
    home = _fake_jdk(tmp_path)
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    said: list[str] = []
    changes = java.environment("http://127.0.0.1:8123", tmp_path, ca,
                               {"JAVA_HOME": str(home), "PATH": ""}, False, lines_of(said))
    assert len(said) == 1
    assert said[0].startswith(f"Java: no JDK cacerts found (looked in {home}/lib/security/cacerts")
    assert "keytool -importcert" in said[0]
    options = changes["JAVA_TOOL_OPTIONS"] or ""
    assert "-Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=8123" in options
    assert "-Dhttp.nonProxyHosts=localhost|127.*|[::1]" in options
    assert "trustStore" not in options


def test_no_jvm_adds_nothing(tmp_path: Path) -> None:
    assert java.environment("http://127.0.0.1:1", tmp_path, tmp_path / "ca.pem",
                            {"PATH": str(tmp_path)}, False, print) == {}


def test_java_tool_options_of_the_user_are_kept_with_one_line(tmp_path: Path) -> None:
    home = _fake_jdk(tmp_path)
    said: list[str] = []
    base = {"JAVA_HOME": str(home), "PATH": "",
            "JAVA_TOOL_OPTIONS": "-Xmx1g -Dhttps.proxyPort=3128 -Dhttps.proxyHost=corp"}
    changes = java.environment("http://127.0.0.1:8123", tmp_path, tmp_path / "ca.pem", base,
                               True, lines_of(said))
    options = changes["JAVA_TOOL_OPTIONS"] or ""
    assert options.startswith("-Xmx1g -Dhttps.proxyPort=3128 -Dhttps.proxyHost=corp ")
    assert options.count("https.proxyHost") == options.count("https.proxyPort") == 1
    assert options.endswith(
        "-Dhttp.proxyHost=127.0.0.1 -Dhttp.proxyPort=8123 -Dhttp.nonProxyHosts="
    )
    kept = [line for line in said if line.startswith("JAVA_TOOL_OPTIONS already sets")]
    assert kept == ["JAVA_TOOL_OPTIONS already sets https.proxyHost, https.proxyPort: kept as "
                    "the user's; llm-vcr set the rest (by hand: -Dhttps.proxyHost=127.0.0.1 "
                    "-Dhttps.proxyPort=8123)"]


# -- the hint -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("command", "says"), [
    (["node", "app.js"], "NODE_USE_ENV_PROXY=1 from Node 24"),
    (["/usr/bin/npm", "test"], "NODE_USE_ENV_PROXY=1 from Node 24"),
    (["./gradlew", "test"], "JAVA_TOOL_OPTIONS"),
    (["python3.12", "-m", "pytest"], "Python clients read HTTPS_PROXY"),
    (["make", "test"], runtimes.GENERIC_HINT),
])
def test_the_hint_names_the_runtimes_variables(command: list[str], says: str) -> None:
    line = runtimes.hint(command)
    assert line.startswith("hint: the command failed and no request reached the proxy: ")
    assert says in line
    assert "README" in line and "\n" not in line


# -- end to end: Node 20 ---------------------------------------------------------------------------

SEED_URL = "https://fantasy-playground-resource.openai.azure.com/openai/v1/chat/completions"

# fetch, the https module's default agent and the openai SDK, each streaming the seed's request
# to `process.argv[2]`; one line per client with the streamed text.
NODE_CLIENT = r"""
const https = require('https');
const url = process.argv[2];
const clients = process.argv[3].split(',');
const body = {
  messages: [{ role: 'system', content: 'You are a helpful assistant' },
             { role: 'user', content: 'Say hi in Portuguese' }],
  model: 'gpt-5-mini', max_completion_tokens: 4000,
  stream_options: { include_usage: true }, stream: true,
};
const headers = { 'content-type': 'application/json', authorization: 'Bearer k' };
const text = (sse) => sse.split('\n').filter((l) => l.startsWith('data: ') && l !== 'data: [DONE]')
  .map((l) => JSON.parse(l.slice(6)))
  .map((c) => (c.choices && c.choices[0] && c.choices[0].delta.content) || '').join('');
const run = {
  fetch: async () => {
    const answer = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
    return text(await answer.text());
  },
  https: () => new Promise((resolve, reject) => {
    const request = https.request(url, { method: 'POST', headers }, (answer) => {
      let data = '';
      answer.setEncoding('utf8');
      answer.on('data', (chunk) => { data += chunk; });
      answer.on('end', () => resolve(text(data)));
    });
    request.on('error', reject);
    request.end(JSON.stringify(body));
  }),
  openai: async () => {
    const OpenAI = require('openai');
    const client = new OpenAI({ baseURL: url.replace(/\/chat\/completions$/, ''), apiKey: 'k',
                                maxRetries: 0 });
    let said = '';
    for await (const chunk of await client.chat.completions.create(body)) {
      said += (chunk.choices[0] && chunk.choices[0].delta.content) || '';
    }
    return said;
  },
};
(async () => {
  for (const name of clients) {
    try {
      console.log(`${name}: ${await run[name]()}`);
    } catch (e) {
      console.log(`${name}: failed: ${e.message} ${(e.cause && e.cause.code) || ''}`);
      process.exitCode = 1;
    }
  }
})();
"""


def _npm_package(spec: str) -> Path:
    """`<cache>/test-node/<spec>/node_modules`, installed from the npm registry once (a lock
    keeps concurrent test runs from installing it twice)."""
    npm = _require_npm()
    home = cache.cache_dir() / "test-node" / spec.replace("/", "+")
    modules = home / "node_modules"
    with cache.locked(home.parent / f".{home.name}.lock"):
        if not (modules / ".llm-vcr-complete").is_file():
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir(parents=True)
            result = subprocess.run(
                [npm, "install", "--prefix", str(home), "--no-audit", "--no-fund",
                 "--no-package-lock", "--loglevel=error", spec],
                capture_output=True, text=True, timeout=TIMEOUT, cwd=home,
            )
            if result.returncode != 0:
                required(f"cannot install {spec} from the npm registry: {result.stderr[-500:]}")
            (modules / ".llm-vcr-complete").write_text(spec)
    return modules


@pytest.fixture(scope="module")
def node_20() -> str:
    found = shutil.which("node")
    if found is None:
        required("node is not installed")
    assert found is not None
    version = node.node_version(os.environ.get("PATH"))
    assert version is not None
    if node.native_fetch_proxy(version):
        required(f"node is {version}, not a Node whose fetch ignores HTTPS_PROXY (< 24)")
    return found


@pytest.fixture(scope="module")
def node_client(
    node_20: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, str]]:
    """The client script and an environment where `require('openai')` finds the npm SDK."""
    folder = tmp_path_factory.mktemp("node-client")
    script = folder / "client.cjs"
    script.write_text(NODE_CLIENT)
    modules = _npm_package(f"openai@{OPENAI_NODE}")
    return script, dict(os.environ, NODE_PATH=str(modules))


@pytest.fixture
def seed_store(tmp_path: Path) -> Path:
    store = tmp_path / "cassettes"
    store.mkdir()
    shutil.copy(SEED, store / "simple_streaming.yaml")
    return store


@pytest.mark.e2e
def test_node_20_fetch_https_and_the_openai_sdk_replay_the_seed(
    node_client: tuple[Path, dict[str, str]], seed_store: Path, tmp_path: Path
) -> None:
    script, env = node_client
    result = llm_vcr(
        "run", "--mode", "replay", "--reuse", "--strict", "--dir", str(seed_store),
        "--cassette", "simple_streaming", "--confdir", str(tmp_path / "conf"),
        "--", "node", str(script), SEED_URL, "fetch,https,openai", cwd=tmp_path, env=env,
    )
    assert result.stdout.splitlines() == ["fetch: Olá!", "https: Olá!", "openai: Olá!"], (
        result.stdout + result.stderr
    )
    assert result.returncode == 0, result.stderr
    assert "replayed 3, recorded 0, missed 0, unused 0" in result.stderr
    assert "EnvHttpProxyAgent is experimental" not in result.stderr
    assert "hint:" not in result.stderr


@pytest.mark.e2e
def test_node_20_fetch_and_the_openai_sdk_record_a_stream(
    node_client: tuple[Path, dict[str, str]], tmp_path: Path, upstream: FakeUpstream,
    upstream_tls: UpstreamTLS, written_cassettes: Callable[[Path], dict[str, object]],
) -> None:
    script, env = node_client
    store = tmp_path / "store"
    routes = [arg for spec in route_to(upstream) for arg in ("--set", f"map_remote={spec}")]
    result = llm_vcr(
        "run", "--mode", "record", "--dir", str(store), "--cassette", "node",
        "--confdir", str(tmp_path / "conf"), *routes,
        "--set", f"ssl_verify_upstream_trusted_ca={upstream_tls.ca_cert}",
        "--", "node", str(script), "https://api.openai.com/v1/chat/completions", "fetch,openai",
        cwd=tmp_path, env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == ["fetch", "openai"], result.stdout
    assert lines[0].removeprefix("fetch: ") == lines[1].removeprefix("openai: ") != ""
    assert len(upstream.requests) == 2
    cassettes = written_cassettes(store)
    assert list(cassettes) == ["node"]
    assert (store / "node.yaml").read_text().count("\n- id: ") == 2


# -- end to end: Java 17 ---------------------------------------------------------------------------

JAVA_CLIENT = r"""
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class Client {
    public static void main(String[] args) throws Exception {
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, "UTF-8");
        HttpClient client = HttpClient.newHttpClient();
        String body = ("{'messages':[{'content':'You are a helpful assistant','role':'system'},"
            + "{'content':'Say hi in Portuguese','role':'user'}],'model':'gpt-5-mini',"
            + "'max_completion_tokens':4000,'stream_options':{'include_usage':true},"
            + "'stream':true}").replace('\'', '"');
        HttpRequest seed = HttpRequest.newBuilder(URI.create(args[0]))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body)).build();
        String sse = client.send(seed, HttpResponse.BodyHandlers.ofString()).body();
        StringBuilder said = new StringBuilder();
        Matcher m = Pattern.compile("\"delta\":\\{\"content\":\"([^\"]*)\"").matcher(sse);
        while (m.find()) said.append(m.group(1));
        out.println("seed: " + said);
        HttpRequest direct = HttpRequest.newBuilder(URI.create(args[1])).build();
        out.println("direct: " + client.send(direct, HttpResponse.BodyHandlers.ofString()).body());
    }
}
"""


@pytest.fixture(scope="module")
def other_ca_server(upstream_tls: UpstreamTLS) -> Iterator[str]:
    """An HTTPS server on 127.0.0.1 whose certificate only the test CA vouches for: it stands
    in for a public site the JVM must keep trusting."""
    with hello_server(upstream_tls) as port:
        yield f"https://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def jdk() -> Path:
    home = java.java_home(os.environ)
    if home is None or shutil.which("javac") is None:
        required("no JDK (java and javac) on PATH")
    assert home is not None
    return home


@pytest.fixture(scope="module")
def java_client(jdk: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled client's class folder."""
    folder = tmp_path_factory.mktemp("java-client")
    (folder / "Client.java").write_text(JAVA_CLIENT)
    subprocess.run(["javac", "-d", str(folder), str(folder / "Client.java")], check=True,
                   capture_output=True, timeout=TIMEOUT)
    return folder


@pytest.fixture(scope="module")
def test_jdk_store(
    jdk: Path, upstream_tls: UpstreamTLS, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A copy of the JDK's cacerts with the test CA added (standing in for the public CAs)."""
    store = tmp_path_factory.mktemp("jdk-store") / "cacerts"
    shutil.copy(java.find_cacerts({}, jdk), store)
    store.chmod(0o644)
    subprocess.run(
        [str(java.find_keytool({}, jdk)), "-importcert", "-alias", "test-ca", "-file",
         str(upstream_tls.ca_cert), "-keystore", str(store), "-storepass", "changeit",
         "-noprompt"], check=True, capture_output=True, timeout=TIMEOUT,
    )
    return store


@pytest.mark.e2e
def test_java_httpclient_replays_the_seed_and_keeps_trusting_the_jdk_cas(
    java_client: Path, test_jdk_store: Path, other_ca_server: str, seed_store: Path,
    tmp_path: Path,
) -> None:
    env = dict(os.environ, LLM_VCR_JAVA_CACERTS=str(test_jdk_store),
               JAVA_TOOL_OPTIONS="-Dllmvcr.test.user=kept")
    confdir = tmp_path / "conf"
    result = llm_vcr(
        "run", "--mode", "replay", "--strict", "--dir", str(seed_store),
        "--cassette", "simple_streaming", "--confdir", str(confdir),
        "--", "java", "-cp", str(java_client), "Client", SEED_URL, f"{other_ca_server}/hi",
        cwd=tmp_path, env=env,
    )
    assert result.stdout.splitlines() == ["seed: Olá!", "direct: hello /hi"], (
        result.stdout + result.stderr
    )
    assert result.returncode == 0, result.stderr
    assert "replayed 1, recorded 0, missed 0, unused 0" in result.stderr
    picked = [line for line in result.stderr.splitlines() if line.startswith("Picked up")]
    assert picked and picked[0].startswith("Picked up JAVA_TOOL_OPTIONS: -Dllmvcr.test.user=kept ")
    assert [p.suffix for p in (confdir / java.STORE_FOLDER).glob("truststore-*")] == [".p12"]


def test_the_trust_store_is_made_once_and_remade_when_an_input_changes(
    jdk: Path, tmp_path: Path, mitm_confdir: Path, upstream_tls: UpstreamTLS
) -> None:
    keytool = java.find_keytool({}, jdk)
    cacerts = java.find_cacerts({}, jdk)
    ca = tmp_path / "ca.pem"
    shutil.copy(mitm_confdir / "mitmproxy-ca-cert.pem", ca)
    first = java.trust_store(tmp_path, ca, cacerts, keytool)
    made = first.stat().st_mtime_ns
    assert java.trust_store(tmp_path, ca, cacerts, keytool) == first
    assert first.stat().st_mtime_ns == made  # not made again
    listing = subprocess.run(
        [str(keytool), "-list", "-keystore", str(first), "-storepass", "changeit"],
        capture_output=True, text=True, check=True, timeout=TIMEOUT,
    ).stdout
    assert "llm-vcr-mitmproxy" in listing
    assert listing.count("trustedCertEntry") > 10  # the JDK's own CAs are in it too
    shutil.copy(upstream_tls.ca_cert, ca)  # a new mitmproxy CA
    second = java.trust_store(tmp_path, ca, cacerts, keytool)
    assert second != first and second.is_file() and not first.exists()
