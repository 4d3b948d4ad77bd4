"""Sessions (pure): per-session use of a shared index, the registry, reports, strict rules, and
the control API's parsing (issue 13)."""

from __future__ import annotations

import json

import pytest

from llmvcr import control
from llmvcr.cassette import Interaction, Request, Response
from llmvcr.matching import RequestIndex, Usage
from llmvcr.modes import Mode
from llmvcr.replay import parse_latency
from llmvcr.sessions import (
    MAX_MISSES_KEPT,
    Miss,
    Registry,
    SessionError,
    Settings,
    report,
    strict_failures,
)
from llmvcr.store import validate_name

REPLAY = Settings(Mode.REPLAY)
NEW_EPISODES = Settings(Mode.NEW_EPISODES)


def interaction(url: str, answer: bytes) -> Interaction:
    return Interaction(Request(method="GET", url=url), Response(body=answer))


def registry(settings: Settings = NEW_EPISODES) -> Registry:
    return Registry(settings, idle_timeout=60, now=0.0)


# ---- the shared index, one Usage per session


def test_each_usage_takes_identical_requests_in_order_from_the_first() -> None:
    index = RequestIndex([interaction("https://x/a", b"1"), interaction("https://x/a", b"2")])
    first, second = Usage(), Usage()
    request = Request(method="GET", url="https://x/a")
    assert index.take(request, usage=first).response.body == b"1"
    assert index.take(request, usage=second).response.body == b"1"  # its own start
    assert index.take(request, usage=first).response.body == b"2"
    assert index.take(request, usage=first) is None  # both used, in this usage only
    assert index.take(request, usage=second).response.body == b"2"
    assert index.unused(Usage()) == [index[0], index[1]]
    assert index.unused(first) == []


def test_reuse_answers_again_and_counts_as_answered() -> None:
    index = RequestIndex([interaction("https://x/a", b"1")])
    usage = Usage()
    request = Request(method="GET", url="https://x/a")
    for _ in range(3):
        assert index.take(request, reuse=True, usage=usage).response.body == b"1"
    assert index.unused(usage) == []


def test_a_recorded_interaction_is_used_by_its_session_and_free_for_the_others() -> None:
    index = RequestIndex([])
    recorder, other = Usage(), Usage()
    position = index.add_used(interaction("https://x/new", b"n"), usage=recorder)
    request = Request(method="GET", url="https://x/new")
    assert index.take(request, usage=recorder) is None
    assert index.take_position(request, usage=other) == position


# ---- the registry


def test_open_find_close_and_the_default_session() -> None:
    sessions = registry()
    assert sessions.get("default") is sessions.default
    opened = sessions.open(REPLAY, now=1.0, cassette="a", client="w1")
    assert sessions.get(opened.id) is opened
    assert sessions.for_client("w1") is opened
    newer = sessions.open(REPLAY, now=2.0, client="w1")  # a client's new session replaces the old
    assert sessions.for_client("w1") is newer
    assert sessions.close(opened.id) is opened
    assert sessions.for_client("w1") is newer  # closing the old one keeps the new binding
    with pytest.raises(SessionError) as unknown:
        sessions.get(opened.id)
    assert unknown.value.status == 404 and unknown.value.field == "session"
    with pytest.raises(SessionError):
        sessions.close("default")
    sessions.close(newer.id)
    with pytest.raises(SessionError) as unbound:
        sessions.for_client("w1")
    assert unbound.value.status == 409


def test_closing_a_clients_session_binds_it_back_to_the_one_before() -> None:
    sessions = registry()
    idle = sessions.open(Settings(Mode.PASSTHROUGH), now=0.0, client="runner")
    for _ in range(3):  # a test runner: one session per test, the idle one in between
        test = sessions.open(REPLAY, now=1.0, client="runner")
        assert sessions.for_client("runner") is test
        sessions.close(test.id)
        assert sessions.for_client("runner") is idle


def test_ports_map_to_their_session() -> None:
    sessions = registry()
    opened = sessions.open(REPLAY, now=0.0, port=40123)
    assert sessions.for_port(40123) is opened
    assert sessions.for_port(40124) is None
    sessions.close(opened.id)
    assert sessions.for_port(40123) is None


def test_a_replay_proxy_accepts_only_replaying_sessions() -> None:
    sessions = registry(REPLAY)
    for mode in (Mode.RECORD, Mode.NEW_EPISODES, Mode.RECORD_ONCE, Mode.PASSTHROUGH):
        with pytest.raises(SessionError) as refused:
            sessions.open(Settings(mode), now=0.0)
        assert refused.value.status == 403 and refused.value.field == "mode"
    sessions.open(REPLAY, now=0.0)
    assert len(sessions) == 1


def test_idle_sessions_expire() -> None:
    sessions = registry()
    idle = sessions.open(REPLAY, now=0.0)
    busy = sessions.open(REPLAY, now=0.0)
    busy.last_seen = 50.0
    assert [s.id for s in sessions.expire(now=61.0)] == [idle.id]
    assert list(sessions) == [sessions.default, busy]


def test_record_starts_afresh_unless_another_open_session_wrote_since_this_one_opened() -> None:
    sessions = registry(Settings(Mode.RECORD))
    first = sessions.open(Settings(Mode.RECORD), now=1.0)
    assert sessions.starts_afresh(first, "c")
    first.use("c").wrote_at = 2.0
    assert not sessions.starts_afresh(first, "c")  # its later writes append
    second = sessions.open(Settings(Mode.RECORD), now=1.5)
    assert not sessions.starts_afresh(second, "c")  # first wrote after second opened
    late = sessions.open(Settings(Mode.RECORD), now=3.0)
    assert sessions.starts_afresh(late, "c")  # first's write predates it
    sessions.close(first.id)
    assert sessions.starts_afresh(second, "c")  # the writer is gone: nothing to erase


# ---- reports and strict rules


def test_report_counts_misses_unused_and_untouched_named_cassettes() -> None:
    sessions = registry()
    session = sessions.open(REPLAY, now=0.0, cassette="a", named=("a", "b"))
    use = session.use("a")
    use.replayed = 2
    use.add_miss(Miss("POST https://api.openai.com/v1/chat/completions", "body differs"))
    data = report(session, lambda name, usage: ["#3 GET https://x/left"] if name == "a" else None)
    json.dumps(data)  # JSON-ready
    assert data["totals"] == {"replayed": 2, "recorded": 0, "missed": 1, "unused": 1}
    assert data["cassettes"]["b"]["requests"] == 0
    assert strict_failures(data) == [
        "missed: cassette 'a': POST https://api.openai.com/v1/chat/completions: body differs",
        "unused: cassette 'a': #3 GET https://x/left",
        "no request reached cassette 'b'",
    ]


def test_a_run_that_used_exactly_what_was_recorded_has_no_strict_failure() -> None:
    session = registry().open(REPLAY, now=0.0, cassette="a", named=("a",))
    session.use("a").replayed = 1
    assert strict_failures(report(session, lambda name, usage: [])) == []


def test_misses_kept_are_bounded_but_counted() -> None:
    session = registry().open(REPLAY, now=0.0)
    use = session.use("a")
    for n in range(MAX_MISSES_KEPT + 5):
        use.add_miss(Miss(f"GET https://x/{n}", "no match"))
    data = report(session, lambda name, usage: [])
    assert data["totals"]["missed"] == MAX_MISSES_KEPT + 5
    assert len(data["cassettes"]["a"]["missed"]) == MAX_MISSES_KEPT
    assert strict_failures(data)[-1] == "missed: cassette 'a': 5 more request(s) not listed"


# ---- the control API


def parse(body: object) -> control.OpenRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return control.parse_open(raw, Settings(Mode.RECORD_ONCE), validate_name, parse_latency)


def test_open_takes_the_proxy_defaults_and_every_field() -> None:
    assert parse(b"") == control.OpenRequest(Settings(Mode.RECORD_ONCE), None, (), None, False)
    opened = parse({
        "cassettes": ["x.yaml", "team/y"], "mode": "replay", "reuse": True, "latency": "0.5",
        "strict": True, "client": "gw-0", "port": True,
    })
    assert opened.cassette == "x" and opened.named == ("x", "team/y")
    assert opened.settings == Settings(Mode.REPLAY, reuse=True, latency=0.5, strict=True)
    assert opened.client == "gw-0" and opened.port
    assert parse({"cassette": "y", "cassettes": ["x"]}).named == ("y", "x")


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (b"{not json", 400, "body"),
        (b"[1]", 400, "body"),
        (b"x" * (control.MAX_BODY_BYTES + 1), 413, "body"),
        ({"mode": "replay_only"}, 400, "mode"),
        ({"cassette": "../etc/passwd"}, 400, "cassette"),
        ({"cassettes": ["ok", "/abs"]}, 400, "cassettes"),
        ({"cassettes": "a"}, 400, "cassettes"),
        ({"latency": "fast"}, 400, "latency"),
        ({"latency": True}, 400, "latency"),
        ({"reuse": "yes"}, 400, "reuse"),
        ({"client": "has space"}, 400, "client"),
        ({"casette": "typo"}, 400, "casette"),
    ],
)
def test_bad_open_requests_name_the_field(body: object, status: int, field: str) -> None:
    with pytest.raises(SessionError) as bad:
        parse(body)
    assert (bad.value.status, bad.value.field) == (status, field)
    error = json.loads(control.error_body(bad.value))["error"]
    assert error["field"] == field and error["message"]


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/v1/sessions", control.Route("list")),
        ("POST", "/v1/sessions/", control.Route("open")),
        ("GET", "/v1/sessions/abc", control.Route("report", "abc")),
        ("DELETE", "/v1/sessions/abc", control.Route("close", "abc")),
        ("POST", "/v1/sessions/abc/close", control.Route("close", "abc")),
    ],
)
def test_routes(method: str, path: str, expected: control.Route) -> None:
    assert control.route(method, path) == expected


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("PUT", "/v1/sessions", 405), ("GET", "/v2/x", 404), ("POST", "/v1/sessions/a", 405),
     ("GET", "/v1/sessions/a/b", 404)],
)
def test_bad_routes(method: str, path: str, status: int) -> None:
    with pytest.raises(SessionError) as bad:
        control.route(method, path)
    assert bad.value.status == status
