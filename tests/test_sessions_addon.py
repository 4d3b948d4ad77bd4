"""Sessions in the addon, in-process (issue 13): the control API, how a request finds its
session, per-session use and counts, record_once/new_episodes/record per session, strict
reports, idle expiry, and every bad input's answer."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import http
from mitmproxy.test import tflow

from llmvcr.addon import VCR
from llmvcr.cassette import load
from llmvcr.sessions import strict_failures
from support.inprocess import (
    BODY,
    CHAT_URL,
    ask,
    chat_flow,
    chat_interaction,
    error_of,
    run,
    upstream_answers,
    vcr_context,
    write_cassette,
)

CONTROL = "http://llm-vcr.invalid/v1/sessions"


async def control(addon: VCR, method: str, path: str = "", body: object = None) -> tuple[int, Any]:
    raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    flow = await ask(addon, chat_flow(CONTROL + path, method=method, body=raw))
    assert flow.response is not None
    return flow.response.status_code, json.loads(flow.response.content)


async def open_session(addon: VCR, **fields: object) -> str:
    status, data = await control(addon, "POST", body=fields)
    assert status == 201, data
    assert data["proxy_password"] == f"session={data['session']}"
    return data["session"]


async def chat(addon: VCR, **headers: str) -> http.HTTPFlow:
    return await ask(addon, chat_flow(headers=headers))


async def record(addon: VCR, flow: http.HTTPFlow, answer: bytes = b'{"live": 1}') -> None:
    await upstream_answers(addon, flow, answer)


def body_of(flow: http.HTTPFlow) -> bytes:
    assert flow.response is not None
    return flow.response.content or b""


def test_each_session_replays_from_the_first_interaction(tmp_path: Path) -> None:
    async def test() -> None:
        write_cassette(tmp_path / "cassettes", "seed", [chat_interaction(answer=b'{"n": 1}')])
        _, addon = vcr_context(tmp_path, vcr_mode="replay", vcr_cassette="seed")
        for _ in range(10):  # ten CI runs against one long-running proxy
            session = await open_session(addon, cassette="seed", strict=True)
            assert body_of(await chat(addon, **{"X-VCR-Session": session})) == b'{"n": 1}'
            again = await chat(addon, **{"X-VCR-Session": session})
            assert again.response is not None and again.response.status_code == 404
            message = error_of(again)["message"]
            assert "vcr_reuse" in message and "new session" in message
            status, report = await control(addon, "DELETE", f"/{session}")
            assert status == 200 and report["open"] is False
            assert [line.split(": ")[0] for line in strict_failures(report)] == ["missed"]
    run(test)


def test_the_proxy_password_and_client_names_pick_the_session(tmp_path: Path) -> None:
    async def test() -> None:
        write_cassette(tmp_path / "cassettes", "team/a", [chat_interaction(answer=b"A")])
        _, addon = vcr_context(tmp_path, vcr_mode="replay", proxyauth="any")
        session = await open_session(addon)
        token = base64.b64encode(f"team%2Fa:session%3D{session}".encode()).decode()
        flow = await chat(addon, **{"Proxy-Authorization": f"Basic {token}"})
        assert body_of(flow) == b"A"
        assert "Proxy-Authorization" not in flow.request.headers
        _, report = await control(addon, "GET", f"/{session}")
        assert report["cassettes"]["team/a"]["replayed"] == 1
        # A stable client name, bound to its current session by the control API.
        first = await open_session(addon, client="worker-1", cassette="team/a")
        token = base64.b64encode(b":client=worker-1").decode()  # no user: the session's cassette
        headers = {"Proxy-Authorization": f"Basic {token}"}
        assert body_of(await chat(addon, **headers)) == b"A"  # the session's cassette
        second = await open_session(addon, client="worker-1", cassette="team/a")
        assert body_of(await chat(addon, **headers)) == b"A"  # the new session starts afresh
        reports = {s: (await control(addon, "GET", f"/{s}"))[1] for s in (first, second)}
        assert reports[first]["totals"]["replayed"] == 1
        assert reports[second]["totals"]["replayed"] == 1
        await control(addon, "DELETE", f"/{second}")  # bound back to the one before it ...
        assert addon.sessions.for_client("worker-1").id == first
        await control(addon, "DELETE", f"/{first}")  # ... and then to none
        orphan = await chat(addon, **headers)
        assert orphan.response is not None and orphan.response.status_code == 409
        assert error_of(orphan)["code"] == "session_not_found"
    run(test)


def test_two_sessions_on_one_cassette_each_get_the_whole_ordered_sequence(tmp_path) -> None:
    async def test() -> None:
        answers = [b'{"n": %d}' % n for n in range(3)]
        write_cassette(tmp_path / "cassettes", "seq", [chat_interaction(answer=a) for a in answers])
        _, addon = vcr_context(tmp_path, vcr_mode="replay")
        one = await open_session(addon, cassette="seq")
        two = await open_session(addon, cassette="seq")
        got: dict[str, list[bytes]] = {one: [], two: []}
        for _ in answers:  # interleaved
            for session in (one, two):
                got[session].append(body_of(await chat(addon, **{"X-VCR-Session": session})))
        assert got == {one: answers, two: answers}
    run(test)


def test_new_episodes_records_once_then_every_new_session_replays(tmp_path: Path) -> None:
    async def test() -> None:
        _, addon = vcr_context(tmp_path, vcr_mode="new_episodes", vcr_cassette="grow")
        cassette = tmp_path / "cassettes" / "grow.yaml"
        first = await open_session(addon)
        await record(addon, await chat(addon, **{"X-VCR-Session": first}), b'{"first": 1}')
        await record(addon, await chat(addon, **{"X-VCR-Session": first}), b'{"second": 2}')
        await control(addon, "DELETE", f"/{first}")
        recorded = cassette.read_bytes()
        assert len(load(cassette).interactions) == 2
        for _ in range(9):
            session = await open_session(addon)
            a = await chat(addon, **{"X-VCR-Session": session})
            b = await chat(addon, **{"X-VCR-Session": session})
            assert (body_of(a), body_of(b)) == (b'{"first": 1}', b'{"second": 2}')
            _, report = await control(addon, "DELETE", f"/{session}")
            assert report["totals"] == {"replayed": 2, "recorded": 0, "missed": 0, "unused": 0}
        assert cassette.read_bytes() == recorded
    run(test)


def test_record_once_is_new_per_session(tmp_path: Path) -> None:
    async def test() -> None:
        _, addon = vcr_context(tmp_path, vcr_mode="record_once", vcr_cassette="once")
        first = await open_session(addon)
        await record(addon, await chat(addon, **{"X-VCR-Session": first}))
        await record(addon, await chat(addon, **{"X-VCR-Session": first}))  # still new for it
        later = await open_session(addon)
        assert body_of(await chat(addon, **{"X-VCR-Session": later})) == b'{"live": 1}'
        assert body_of(await chat(addon, **{"X-VCR-Session": later})) == b'{"live": 1}'
        miss = await chat(addon, **{"X-VCR-Session": later})  # the file existed: no recording
        assert miss.response is not None and miss.response.status_code == 404
    run(test)


def test_session_settings_and_the_replay_ceiling(tmp_path: Path) -> None:
    async def test() -> None:
        write_cassette(tmp_path / "cassettes", "c", [chat_interaction(answer=b"x")])
        _, addon = vcr_context(tmp_path, vcr_mode="replay")
        status, data = await control(addon, "POST", body={"mode": "record"})
        assert status == 403 and data["error"]["field"] == "mode"
        reuse = await open_session(addon, cassette="c", reuse=True)
        for _ in range(3):
            assert body_of(await chat(addon, **{"X-VCR-Session": reuse})) == b"x"
    run(test)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "", {"mode": "replay_only"}, 400, "mode"),
        ("POST", "", {"cassette": "../../etc/passwd"}, 400, "cassette"),
        ("POST", "", b"{broken", 400, "body"),
        ("POST", "", b"x" * 70_000, 413, "body"),
        ("GET", "/no-such-session", None, 404, "session"),
        ("DELETE", "/no-such-session", None, 404, "session"),
        ("PUT", "", None, 405, "method"),
        ("GET", "/a/b", None, 404, "path"),
    ],
)
def test_bad_control_requests(tmp_path, method, path, body, status, field) -> None:
    async def test() -> None:
        _, addon = vcr_context(tmp_path, vcr_mode="new_episodes")
        got, data = await control(addon, method, path, body)
        assert (got, data["error"]["field"]) == (status, field)
        assert len(addon.sessions) == 0
        assert not (tmp_path / "cassettes" / "etc").exists()
        # ... and the proxy keeps serving.
        assert (await open_session(addon)) in {s.id for s in addon.sessions}
    run(test)


def test_an_unknown_session_is_refused_not_replaced(tmp_path: Path) -> None:
    async def test() -> None:
        _, addon = vcr_context(tmp_path, vcr_mode="record")
        flow = await chat(addon, **{"X-VCR-Session": "nope"})
        assert flow.response is not None and flow.response.status_code == 404
        assert error_of(flow)["code"] == "session_not_found"
        assert flow.request.headers.get("X-VCR-Session") is None
    run(test)


def test_idle_sessions_expire_and_their_report_is_logged(tmp_path, caplog) -> None:
    async def test() -> None:
        write_cassette(tmp_path / "cassettes", "c", [chat_interaction()])
        _, addon = vcr_context(tmp_path, vcr_mode="replay", vcr_session_idle=0.5)
        session = await open_session(addon, cassette="c")
        addon.sessions.get(session).last_seen -= 10  # idle for 10 s
        with caplog.at_level(logging.INFO, "llmvcr"):
            status, _ = await control(addon, "GET", f"/{session}")
        assert status == 404
        lines = [r.getMessage() for r in caplog.records]
        assert f"llm-vcr: session {session} expired after being idle (mode replay)" in lines
        assert (
            f"llm-vcr: session {session}: cassette 'c': replayed 0, recorded 0, missed 0, unused 1"
            in lines
        )
    run(test)


def test_the_summary_keeps_cassette_totals_and_adds_sessions(tmp_path: Path) -> None:
    async def test() -> None:
        write_cassette(tmp_path / "cassettes", "c", [chat_interaction(answer=b"x")])
        summary = tmp_path / "summary.json"
        _, addon = vcr_context(tmp_path, vcr_mode="replay", vcr_summary=str(summary))
        for _ in range(2):
            session = await open_session(addon, cassette="c")
            await chat(addon, **{"X-VCR-Session": session})
            await control(addon, "DELETE", f"/{session}")
        still_open = await open_session(addon, cassette="c")
        await addon.done()
        data = json.loads(summary.read_text())
        assert data["cassettes"] == {"c": {"replayed": 2, "recorded": 0, "missed": 0, "unused": 1}}
        assert len(data["sessions"]) == 3 and data["sessions"][still_open]["open"] is True
    run(test)


def test_reports_never_hold_bodies_or_secrets(tmp_path: Path) -> None:
    async def test() -> None:
        write_cassette(tmp_path / "cassettes", "c", [chat_interaction(CHAT_URL + "?key=s3cr3t")])
        _, addon = vcr_context(tmp_path, vcr_mode="replay")
        session = await open_session(addon, cassette="c")
        flow = tflow.tflow(req=http.Request.make(
            "POST", CHAT_URL + "?key=an0ther", b'{"other": 1}', {"X-VCR-Session": session}))
        await ask(addon, flow)
        _, report = await control(addon, "GET", f"/{session}")
        text = json.dumps(report)
        assert "s3cr3t" not in text and "an0ther" not in text
        assert BODY.decode() not in text
        assert report["cassettes"]["c"]["unused"] == [
            {"request": "#0 POST https://api.openai.com/v1/chat/completions?key=REDACTED"}
        ]
    run(test)


def test_record_sessions_start_afresh_once_and_never_erase_each_other(tmp_path: Path) -> None:
    async def test() -> None:
        _, addon = vcr_context(tmp_path, vcr_mode="record", vcr_cassette="r")
        cassette = tmp_path / "cassettes" / "r.yaml"
        first = await open_session(addon)
        await record(addon, await chat(addon, **{"X-VCR-Session": first}), b'{"a": 1}')
        await record(addon, await chat(addon, **{"X-VCR-Session": first}), b'{"a": 2}')
        assert len(load(cassette).interactions) == 2  # its later writes appended
        second = await open_session(addon)
        await record(addon, await chat(addon, **{"X-VCR-Session": first}), b'{"a": 3}')
        await record(addon, await chat(addon, **{"X-VCR-Session": second}), b'{"b": 1}')
        assert len(load(cassette).interactions) == 4  # first wrote since second opened: append
        await control(addon, "DELETE", f"/{first}")
        await control(addon, "DELETE", f"/{second}")
        third = await open_session(addon)  # the next run records the cassette anew
        await record(addon, await chat(addon, **{"X-VCR-Session": third}), b'{"c": 1}')
        assert [i.response.body for i in load(cassette).interactions] == [b'{"c": 1}']
    run(test)


def test_named_cassettes_are_searched_in_order_and_the_first_records(tmp_path: Path) -> None:
    async def test() -> None:
        other = "https://api.openai.com/v1/embeddings"
        write_cassette(tmp_path / "cassettes", "a", [chat_interaction(answer=b"A")])
        write_cassette(tmp_path / "cassettes", "b", [chat_interaction(answer=b"B1"),
                                                    chat_interaction(other, b"B2")])
        _, addon = vcr_context(tmp_path, vcr_mode="new_episodes")
        session = await open_session(addon, cassettes=["a", "b"])
        header = {"X-VCR-Session": session}
        assert body_of(await chat(addon, **header)) == b"A"
        assert body_of(await chat(addon, **header)) == b"B1"  # a is used up: b, in order
        assert body_of(await ask(addon, chat_flow(other, header))) == b"B2"
        fresh = await chat(addon, **header)  # nothing left anywhere: recorded into a
        await record(addon, fresh, b"live")
        _, data = await control(addon, "DELETE", f"/{session}")
        assert data["cassettes"]["a"]["replayed"] == 1 and data["cassettes"]["a"]["recorded"] == 1
        assert data["cassettes"]["b"]["replayed"] == 2
        assert len(load(tmp_path / "cassettes" / "a.yaml").interactions) == 2
        assert len(load(tmp_path / "cassettes" / "b.yaml").interactions) == 2
    run(test)


def test_the_user_name_dash_names_no_cassette(tmp_path: Path) -> None:
    async def test() -> None:
        write_cassette(tmp_path / "cassettes", "mine", [chat_interaction(answer=b"M")])
        _, addon = vcr_context(tmp_path, vcr_mode="replay", proxyauth="any")
        session = await open_session(addon, cassette="mine")
        token = base64.b64encode(f"-:session={session}".encode()).decode()
        assert body_of(await chat(addon, **{"Proxy-Authorization": f"Basic {token}"})) == b"M"
    run(test)
