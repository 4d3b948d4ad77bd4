"""Mode verify in the addon, in-process (issue 17): each request goes upstream, its live answer
is judged against the recording replay would have chosen, and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path

from llmvcr.sessions import report, strict_failures
from support.inprocess import (
    ask,
    chat_flow,
    chat_interaction,
    run,
    upstream_answers,
    vcr_context,
    write_cassette,
)

ANSWER = (
    b'{"id": "chatcmpl-1", "created": 1, '
    b'"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}'
)


def test_verify_judges_live_answers_and_writes_nothing(tmp_path: Path) -> None:
    async def test() -> None:
        path = write_cassette(tmp_path / "cassettes", "v", [chat_interaction(answer=ANSWER)] * 4)
        before = path.read_bytes()
        _, addon = vcr_context(tmp_path, vcr_mode="verify", vcr_cassette="v")
        renamed = ANSWER.replace(b'"finish_reason": "stop"', b'"finish_reason": "length"')
        answers = [
            ANSWER,  # same
            ANSWER.replace(b"chatcmpl-1", b"chatcmpl-2").replace(b'"created": 1', b'"created": 9'),
            ANSWER.replace(b'"hi"', b'"hello there"'),  # benign: wording
            renamed,  # changed: finish_reason
        ]
        for body in answers:
            await upstream_answers(addon, await ask(addon, chat_flow()), body)
        refused = await ask(addon, chat_flow())  # a fifth request: nothing recorded is left
        await upstream_answers(addon, refused, b'{"error": {"message": "bad key"}}', status=401)
        assert addon.writer is not None
        await addon.writer.flush()
        assert path.read_bytes() == before
        data = report(addon.sessions.default, addon._unused)
        entry = data["cassettes"]["v"]
        assert [r["verdict"] for r in entry["verified"]] == [
            "same", "same", "benign", "changed", "not verified"]
        changed = entry["verified"][3]
        assert "choices.0.finish_reason" in [d["where"] for d in changed["differences"]]
        assert "401" in entry["verified"][4]["reason"]
        assert strict_failures(data) == [
            "changed: cassette 'v': POST https://api.openai.com/v1/chat/completions"]
        json.dumps(data)
    run(test)


def test_verify_lets_websockets_through_unrecorded(tmp_path: Path) -> None:
    async def test() -> None:
        _, addon = vcr_context(tmp_path, vcr_mode="verify")
        flow = await ask(addon, chat_flow("https://api.openai.com/v1/realtime", method="GET",
                                          headers={"Upgrade": "websocket"}, body=b""))
        assert flow.response is None and flow not in addon._flows
    run(test)
