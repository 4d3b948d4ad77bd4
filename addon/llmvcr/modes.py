"""The recording modes (go-vcr's), as one closed set with one table of behaviour."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Mode(StrEnum):
    RECORD_ONCE = "record_once"  # go-vcr ModeRecordOnce (the default)
    REPLAY = "replay"  # go-vcr ModeReplayOnly
    RECORD = "record"  # go-vcr ModeRecordOnly
    NEW_EPISODES = "new_episodes"  # go-vcr ModeReplayWithNewEpisodes
    PASSTHROUGH = "passthrough"  # go-vcr ModePassthrough
    VERIFY = "verify"  # llm-vcr's own: live upstream, compared with the recording, nothing written


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do with one request to an LLM host."""

    replay: bool  # look the request up in the cassette first
    record: bool  # a request that was not replayed goes upstream and is recorded
    replace_old: bool = False  # recording starts a cassette afresh if it predates this proxy
    # The request goes upstream live and its answer is compared with the interaction replay would
    # have chosen (looked up, and used, as replay would); nothing is written.
    verify: bool = False


# mode -> (plan for a new cassette, plan for an existing one). "New" is judged per session (see
# `sessions`); for the proxy's default session it is the design doc's: the file did not exist
# when this proxy first needed it, or was first written after this proxy started.
_PLANS: dict[Mode, tuple[Plan, Plan]] = {
    #                  new cassette                            existing cassette
    Mode.RECORD_ONCE: (Plan(replay=False, record=True),        Plan(replay=True, record=False)),
    Mode.REPLAY: (Plan(replay=True, record=False),) * 2,
    Mode.RECORD: (Plan(replay=False, record=True, replace_old=True),) * 2,
    Mode.NEW_EPISODES: (Plan(replay=True, record=True),) * 2,
    Mode.PASSTHROUGH: (Plan(replay=False, record=False),) * 2,
    Mode.VERIFY: (Plan(replay=False, record=False, verify=True),) * 2,
}


def plan_for(mode: Mode, cassette_is_new: bool) -> Plan:
    new, existing = _PLANS[mode]
    return new if cassette_is_new else existing


def needs_newness(mode: Mode) -> bool:
    """Whether the plan depends on the cassette being new (so the store must be asked)."""
    new, existing = _PLANS[mode]
    return new != existing
