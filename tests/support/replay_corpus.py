"""Replay every interaction of a cassette folder through a real mitmdump and compare the answers.

Run as a script (so a test can run it inside a network namespace with only loopback:
`unshare -n python tests/support/replay_corpus.py CORPUS CONFDIR LOGFILE`). It starts mitmdump
with the addon in replay mode on CORPUS, sends each recorded request with httpx (the cassette
picked by the X-VCR-Cassette header), and prints one JSON object: how many interactions were
checked and every mismatch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "addon"))

from llmvcr.cassette import load
from support.proxy import SERVER_CONNECT_SPY, MitmProxy


def main(corpus: Path, confdir: Path, log_path: Path) -> dict[str, object]:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False, capture_output=True)
    proxy = MitmProxy(
        confdir=confdir,
        log_path=log_path,
        scripts=[SERVER_CONNECT_SPY],
        options={"vcr_mode": "replay", "vcr_dir": str(corpus), "vcr_hosts": ["*"]},
    )
    proxy.start()
    checked, mismatches = 0, []
    try:
        with httpx.Client(
            proxy=proxy.url(), verify=proxy.ssl_context(), trust_env=False, timeout=30
        ) as client:
            for path in sorted(corpus.rglob("*.yaml")):
                name = path.relative_to(corpus).as_posix().removesuffix(".yaml")
                for interaction in load(path).interactions:
                    request, recorded = interaction.request, interaction.response
                    headers = [(k, v) for k, vs in request.headers.items() for v in vs]
                    reply = client.request(
                        request.method,
                        request.url,
                        content=request.body,
                        headers=[*headers, ("X-VCR-Cassette", name)],
                    )
                    checked += 1
                    body = reply.read()
                    if reply.status_code != recorded.code or body != recorded.body:
                        mismatches.append(
                            {"cassette": name, "id": interaction.id, "status": reply.status_code,
                             "error": body[:300].decode("utf-8", "replace")}
                        )
    finally:
        proxy.stop()
    return {"checked": checked, "mismatches": mismatches, "log": proxy.output()}


if __name__ == "__main__":
    result = main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
    print(json.dumps(result))
