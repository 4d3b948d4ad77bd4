"""Node: fetch and http(s) through the proxy on every Node version, with no change to the app.

What each Node version does with the proxy variables (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`):

| Node | built-in `fetch` | `http`/`https` default agents |
| --- | --- | --- |
| >= 24.5, and 22.21+ in the 22 line | with `NODE_USE_ENV_PROXY=1` | with `NODE_USE_ENV_PROXY=1` |
| 24.0 - 24.4 | with `NODE_USE_ENV_PROXY=1` | ignored |
| <= 23, and 22.0 - 22.20 | ignored | ignored |

llm-vcr sets `NODE_USE_ENV_PROXY=1` and appends `--require <node_preload.cjs>` to `NODE_OPTIONS`
(after what the user has). The preload fills in what the running Node lacks, and does nothing
where the runtime honours the proxy itself:
- `fetch` (and so every fetch-based client: the openai SDK from v5 on, the anthropic SDK, ...):
  undici's `EnvHttpProxyAgent` as the global dispatcher. Needs the `undici` package (>= 6.14):
  the app's own (resolved from the working folder), else one llm-vcr installs once with npm into
  `<cache>/node/undici-<version>` (one line of progress; a clear line when npm or the registry is
  unreachable) and names with `LLM_VCR_UNDICI`.
- `http`/`https` requests made with the default agents: agents that tunnel with CONNECT.
A client that brings its own agent (openai SDK v4's node-fetch with agentkeepalive, axios with
`proxy: false`, got with a custom agent) is not covered: `run --isolate` shows it.

The undici install is decided here, from the `node` on the command's PATH; the preload itself
is always passed (a Node elsewhere, e.g. from nvm inside a script, still gets it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from llmvcr.runtimes.cache import locked

PRELOAD = Path(__file__).resolve().parent / "node_preload.cjs"
UNDICI_VERSION = "6.29.1"  # 6.x: Node 18.17+; EnvHttpProxyAgent since 6.14
UNDICI_MINIMUM = (6, 14)
UNDICI_VARIABLE = "LLM_VCR_UNDICI"
NPM_TIMEOUT = 300.0

Say = Callable[[str], None]


def parse_version(text: str) -> tuple[int, int, int] | None:
    """`v20.20.2` or `20.20.2` -> (20, 20, 2); None when it is not a version."""
    found = re.match(r"v?(\d+)\.(\d+)\.(\d+)", text.strip())
    return (int(found[1]), int(found[2]), int(found[3])) if found else None


def native_fetch_proxy(version: tuple[int, int, int]) -> bool:
    """Whether this Node's own fetch honours the proxy variables with NODE_USE_ENV_PROXY=1."""
    major, minor, _ = version
    return major >= 24 or (major == 22 and minor >= 21)


def node_version(path: str | None) -> tuple[int, int, int] | None:
    """The version of the `node` found on `path`; None without one (or when it does not run)."""
    node = shutil.which("node", path=path)
    if node is None:
        return None
    try:
        result = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30,
                                env={"PATH": path or os.defpath})
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_version(result.stdout) if result.returncode == 0 else None


def app_undici(start: Path) -> Path | None:
    """An `undici` (>= 6.14) the app already has: `node_modules/undici` in `start` or above."""
    for folder in (start, *start.parents):
        package = folder / "node_modules" / "undici"
        try:
            version = parse_version(json.loads((package / "package.json").read_text())["version"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if version is not None and version[:2] >= UNDICI_MINIMUM:
            return package
    return None


def ensure_undici(cache: Path, environ: Mapping[str, str], say: Say) -> Path | None:
    """`<cache>/node/undici-<version>/node_modules/undici`, installed with npm on first use.

    Installed into a temporary folder and renamed, under a lock: concurrent runs install once and
    never see half a package. Returns None (after one line saying what to do by hand) when npm is
    missing or the install fails, e.g. with no registry reachable.
    """
    home = cache / "node" / f"undici-{UNDICI_VERSION}"
    package = home / "node_modules" / "undici"
    if (package / "package.json").is_file():
        return package
    by_hand = (f"install it in the app (npm install undici@{UNDICI_VERSION}) or use Node >= 24 "
               "(22.21+), whose fetch honours HTTPS_PROXY itself")
    npm = shutil.which("npm", path=environ.get("PATH"))
    if npm is None:
        say(f"Node's fetch needs the undici package to use the proxy and npm is not on PATH: "
            f"{by_hand}")
        return None
    with locked(cache / "node" / ".install.lock"):
        if (package / "package.json").is_file():
            return package
        say(f"installing undici {UNDICI_VERSION} for Node's fetch into {home} (once)")
        temp = cache / "node" / f".undici-{os.getpid()}.tmp"
        shutil.rmtree(temp, ignore_errors=True)
        temp.mkdir(parents=True)
        command = [npm, "install", "--prefix", str(temp), "--no-audit", "--no-fund",
                   "--no-package-lock", "--loglevel=error", f"undici@{UNDICI_VERSION}"]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=NPM_TIMEOUT,
                                    env=dict(environ), stdin=subprocess.DEVNULL, cwd=temp)
            failure = None if result.returncode == 0 else _npm_error(result.stderr)
        except subprocess.TimeoutExpired:
            failure = f"npm did not finish within {NPM_TIMEOUT:g} s"
        except OSError as e:
            failure = f"cannot run npm: {e.strerror}"
        if failure is None and not (temp / "node_modules" / "undici" / "package.json").is_file():
            failure = "npm reported success but installed no undici"
        if failure is not None:
            shutil.rmtree(temp, ignore_errors=True)
            say(f"could not install undici from the npm registry ({failure}), so Node's fetch "
                f"bypasses the proxy: {by_hand}")
            return None
        shutil.rmtree(home, ignore_errors=True)
        os.replace(temp, home)
    return package


def _npm_error(stderr: str) -> str:
    """npm's most telling error line (`npm error code ENOTFOUND`, ...), shortened."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for prefix in ("npm error code ", "npm ERR! code "):
        for line in lines:
            if line.startswith(prefix):
                return "npm error " + line[len(prefix):][:200]
    return (lines[0][:200] if lines else "npm failed")


def split_options(text: str) -> list[str] | None:
    """`NODE_OPTIONS` split as Node does (spaces; double quotes group, backslash escapes inside
    them). None when a quote is left open: appending to it would change what it means."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    has_part = False
    index = 0
    while index < len(text):
        char = text[index]
        if quoted and char == "\\" and index + 1 < len(text):
            current.append(text[index + 1])
            index += 2
            continue
        if char == '"':
            quoted = not quoted
            has_part = True
        elif char == " " and not quoted:
            if has_part:
                parts.append("".join(current))
            current, has_part = [], False
        else:
            current.append(char)
            has_part = True
        index += 1
    if quoted:
        return None
    if has_part:
        parts.append("".join(current))
    return parts


def node_options(existing: str | None, preload: Path = PRELOAD) -> str | None:
    """`existing` NODE_OPTIONS with `--require <preload>` appended (the user's options kept, in
    front); unchanged when it already loads the preload; None when it cannot be parsed."""
    require = f"--require {_quoted(str(preload))}"
    if not existing or not existing.strip():
        return require
    parts = split_options(existing)
    if parts is None:
        return None
    if str(preload) in parts:
        return existing
    return f"{existing.rstrip()} {require}"


def _quoted(text: str) -> str:
    """A NODE_OPTIONS word: double-quoted (with backslash escapes) when it has a space or quote."""
    if not re.search(r'[\s"\\]', text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def environment(
    base: Mapping[str, str], cwd: Path, cache: Path, say: Say
) -> dict[str, str | None]:
    """The Node variables for a client started from `base` in `cwd`: NODE_USE_ENV_PROXY,
    NODE_OPTIONS (appended) and, when the `node` on PATH needs it and the app has none, the
    undici llm-vcr installed (LLM_VCR_UNDICI)."""
    changes: dict[str, str | None] = {"NODE_USE_ENV_PROXY": "1"}
    options = node_options(base.get("NODE_OPTIONS"))
    if options is None:
        say("NODE_OPTIONS has an unclosed quote, so llm-vcr left it as it is and Node < 24 "
            f"ignores the proxy: add --require {_quoted(str(PRELOAD))} to it by hand")
    else:
        changes["NODE_OPTIONS"] = options
    version = node_version(base.get("PATH"))
    needs_undici = version is not None and not native_fetch_proxy(version)
    if options is not None and needs_undici and app_undici(cwd) is None:
        package = ensure_undici(cache, base, say)
        if package is not None:
            changes[UNDICI_VARIABLE] = str(package)
    return changes
