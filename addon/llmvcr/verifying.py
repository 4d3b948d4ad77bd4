"""Mode `verify`: a live answer judged against the recording replay would have chosen.

Each request goes upstream with the client's own credentials and its answer streams to the client
as in `record`; nothing is written. The interaction replay would have answered with (same
matching, same order within the session) is looked up and used, and the live answer, redacted as
the recorder redacts, is compared with it by `compare.classify`: `same`, `benign`, `changed`, or
`new` when nothing was recorded for the request. An upstream that cannot be reached, or that
refuses the credentials (401, 403, 407, where the recording did not), gives `not verified` with
the reason: never `changed`. Pure Python: the addon hands over plain values.
"""

from __future__ import annotations

import logging

from .cassette import Interaction, Request, Response
from .compare import CHANGED, classify
from .sessions import MAX_MISSES_KEPT, CassetteUse

log = logging.getLogger("llmvcr")

NOT_VERIFIED = "not verified"
_REFUSALS = frozenset({401, 403, 407})


def note(use: CassetteUse, entry: dict[str, object]) -> None:
    """Count a verify result in the session's use of the cassette (entries kept are bounded;
    their count goes on)."""
    verdict = str(entry["verdict"])
    use.verdicts[verdict] = use.verdicts.get(verdict, 0) + 1
    if len(use.verified) < MAX_MISSES_KEPT:
        use.verified.append(entry)


def judge(
    use: CassetteUse,
    cassette: str,
    recorded: Interaction | None,
    live: Response,
    request: Request,
) -> None:
    """Compare a live answer with the recorded one and note the result; one log line when it
    changed."""
    if live.code in _REFUSALS and (recorded is None or recorded.response.code != live.code):
        not_verified(use, request, f"the upstream answered {live.status}: check the credentials")
        return
    result = classify(recorded, live, request)
    note(use, result.to_json())
    if result.verdict == CHANGED:
        log.warning("llm-vcr: verify: cassette '%s': %s", cassette, result.summary())


def not_verified(use: CassetteUse, request: Request, reason: str) -> None:
    from .redact import redact_url

    note(use, {
        "verdict": NOT_VERIFIED,
        "request": f"{request.method} {redact_url(request.url)}",
        "reason": reason,
        "differences": [],
        "added_keys": [],
    })
