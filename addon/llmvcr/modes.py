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


# (mode, cassette is new) -> plan. "New" is the design doc's: the file did not exist when this
# proxy first needed it, or was first written after this proxy started.
_PLANS: dict[tuple[Mode, bool], Plan] = {
    (Mode.RECORD_ONCE, True): Plan(replay=False, record=True),
    (Mode.RECORD_ONCE, False): Plan(replay=True, record=False),
    (Mode.REPLAY, True): Plan(replay=True, record=False),
    (Mode.REPLAY, False): Plan(replay=True, record=False),
    (Mode.RECORD, True): Plan(replay=False, record=True, replace_old=True),
    (Mode.RECORD, False): Plan(replay=False, record=True, replace_old=True),
    (Mode.NEW_EPISODES, True): Plan(replay=True, record=True),
    (Mode.NEW_EPISODES, False): Plan(replay=True, record=True),
    (Mode.PASSTHROUGH, True): Plan(replay=False, record=False),
    (Mode.PASSTHROUGH, False): Plan(replay=False, record=False),
    (Mode.VERIFY, True): Plan(replay=False, record=False, verify=True),
    (Mode.VERIFY, False): Plan(replay=False, record=False, verify=True),
}


def plan_for(mode: Mode, cassette_is_new: bool) -> Plan:
    return _PLANS[(mode, cassette_is_new)]


def needs_newness(mode: Mode) -> bool:
    """Whether the plan depends on the cassette being new (so the store must be asked)."""
    return _PLANS[(mode, True)] != _PLANS[(mode, False)]
