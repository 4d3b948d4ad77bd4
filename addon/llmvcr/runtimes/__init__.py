"""What runtimes that ignore the generic proxy and CA variables need, and the hint when a command
never reached the proxy (pure; never imports mitmproxy).

- `client_environment(...)`: the Node (`runtimes.node`) and Java (`runtimes.java`) variables, on
  top of `launcher.proxy_environment`'s generic ones. Each runtime's variables are appended to
  the user's own (`NODE_OPTIONS`, `JAVA_TOOL_OPTIONS`), never replace them. What could not be done
  is one line through `say` (`llm-vcr: ...` on stderr), with what to do by hand; the run goes on.
- `hint(command)`: the one line `run` prints when the command failed and no request reached the
  proxy: the proxy variables of the command's runtime, and a pointer to the README's table.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from llmvcr.runtimes import java, node
from llmvcr.runtimes.cache import cache_dir

Say = Callable[[str], None]


def client_environment(
    proxy_url: str, confdir: Path, ca_cert: Path, base: Mapping[str, str],
    proxy_localhost: bool, say: Say, cwd: Path | None = None,
) -> dict[str, str | None]:
    """The runtime-specific variables (set: str) for a client started from `base` in `cwd`."""
    changes: dict[str, str | None] = {}
    changes.update(node.environment(base, cwd or Path.cwd(), cache_dir(dict(base)), say))
    changes.update(java.environment(proxy_url, confdir, ca_cert, base, proxy_localhost, say))
    return changes


# Command names -> what that runtime reads, for the hint. Wrappers (sh -c, make) get the generic
# line.
_NODE = ("node", "nodejs", "npm", "npx", "yarn", "pnpm", "bun", "deno", "jest", "vitest", "tsx")
_JAVA = ("java", "mvn", "mvnw", "gradle", "gradlew", "sbt", "kotlin", "lein", "jbang")
_PYTHON = ("python", "python3", "pytest", "uv", "poetry", "pipenv", "tox", "nox")
RUNTIME_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (_NODE, "Node reads HTTPS_PROXY only with NODE_USE_ENV_PROXY=1 from Node 24 (22.21); older "
            "ones need llm-vcr's NODE_OPTIONS preload, which a client with its own agent skips"),
    (_JAVA, "the JVM reads the proxy only from JAVA_TOOL_OPTIONS "
            "(-Dhttps.proxyHost/-Dhttps.proxyPort), which a forked JVM may not inherit"),
    (_PYTHON, "Python clients read HTTPS_PROXY and NO_PROXY (httpx: not with trust_env=False; "
              "an explicit proxy= or a custom transport wins)"),
    (("go",), "Go reads HTTPS_PROXY, never for localhost, and not with a custom Transport.Proxy"),
    (("curl",), "curl reads https_proxy/HTTPS_PROXY (http: only lower-case http_proxy), not "
                "with --noproxy or --proxy ''"),
)
GENERIC_HINT = ("clients read HTTPS_PROXY/HTTP_PROXY and NO_PROXY; Node < 24 needs the "
                "NODE_OPTIONS preload, Java JAVA_TOOL_OPTIONS")


def hint(command: Sequence[str]) -> str:
    """The hint line (without the `llm-vcr: ` prefix) for a failed `command` that sent nothing
    through the proxy."""
    name = os.path.basename(command[0]) if command else ""
    name = name.removesuffix(".exe").removesuffix(".cmd")
    if name.startswith("python"):
        name = "python"
    text = next((said for names, said in RUNTIME_HINTS if name in names), GENERIC_HINT)
    return (f"hint: the command failed and no request reached the proxy: {text}; see the "
            "README's runtime table (Troubleshooting), or add --isolate to see what it tried "
            "to reach")
