"""What a comparison says: the verdicts, one `Difference` per thing that differs, the `Result`.

Verdicts, from harmless to failing:

| verdict   | meaning                                                                     |
| --------- | --------------------------------------------------------------------------- |
| `same`    | equal bytes, or equal after normalising what always changes (`rules`)      |
| `benign`  | the same structure with other wording, other delta counts, keys added      |
| `changed` | something a client may break on (status, content type, keys removed ...)   |
| `new`     | a live request (or an interaction of the NEW cassette) with no counterpart |
| `removed` | an interaction of the OLD cassette nothing paired with (counts as changed) |

Values are shown the way `matching.explain_miss` shows them: as JSON, cut to 60 characters
with "…", `(absent)` for a missing value.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

__all__ = [
    "ABSENT",
    "BENIGN",
    "CHANGED",
    "FAILING",
    "NEW",
    "REMOVED",
    "SAME",
    "VERDICTS",
    "Difference",
    "Result",
    "shorten",
    "show",
    "show_pair",
]

SAME = "same"
BENIGN = "benign"
CHANGED = "changed"
NEW = "new"
REMOVED = "removed"
VERDICTS = (SAME, BENIGN, CHANGED, NEW, REMOVED)
FAILING = frozenset({CHANGED, REMOVED})  # what makes `diff` and `verify --strict` exit 3

# As matching.py's miss explanations: values cut to this many characters (with "…").
VALUE_WIDTH = 60
# `summary()` names this many differences, then says how many more there are.
SUMMARY_DIFFERENCES = 3


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "(absent)"


ABSENT: object = _Absent()  # a key or item one side does not have


def shorten(text: str, width: int = VALUE_WIDTH) -> str:
    """`text`, cut to `width` characters with "…" when longer."""
    return text if len(text) <= width else text[: width - 1] + "…"


def show(value: object) -> str:
    """A value for a difference: `(absent)`, or its JSON text shortened."""
    if value is ABSENT:
        return "(absent)"
    return shorten(json.dumps(value, ensure_ascii=False))


# `show_pair`: when two strings share a longer start than this, both are shown from a little
# before their first difference ("…"), so the cut-short values still show what differs.
_CONTEXT = 12


def show_pair(old: object, new: object) -> tuple[str, str]:
    """Both values of a difference as `show` gives them; two long strings that start alike are
    shown from shortly before their first difference, with a leading "…"."""
    if isinstance(old, str) and isinstance(new, str):
        common = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
                      min(len(old), len(new)))
        if common > _CONTEXT * 2 and max(len(old), len(new)) + 2 > VALUE_WIDTH:
            start = common - _CONTEXT
            return ("…" + show(old[start:])[1:], "…" + show(new[start:])[1:])
    return show(old), show(new)


@dataclass(frozen=True, slots=True)
class Difference:
    """One thing that differs between the recorded (old) and the live (new) answer.

    `where`: a JSON path in `vcr_ignore_json` syntax (`choices.0.message.content`), prefixed by
    the stream event it is in (`event content_block_delta: delta.type`), or one of `status`,
    `content type`, `framing`, `body`, `events`, `event types`, `final event`, `answer`,
    `tool call N`, `error`. `old`/`new`: the values as `show` gives them. `what`: the kind of
    difference (`removed`, `type`, `value`, `wording`, `added`, `order`, `count` ...).
    """

    where: str
    old: str
    new: str
    changed: bool  # True: breaks clients (verdict `changed`); False: benign
    what: str = ""

    def __str__(self) -> str:
        what = f" ({self.what})" if self.what else ""
        return f"{self.where}: {self.old} -> {self.new}{what}"

    def to_json(self) -> dict[str, object]:
        return {
            "where": self.where,
            "old": self.old,
            "new": self.new,
            "verdict": CHANGED if self.changed else BENIGN,
            "what": self.what,
        }


@dataclass(slots=True)
class Result:
    """The verdict on one interaction, with every difference (changed ones first) and the JSON
    keys the new answer added (paths, stream event types prefixed). `label` names the request
    (`POST https://api.openai.com/v1/chat/completions`, URL redacted)."""

    verdict: str
    differences: list[Difference] = field(default_factory=list)
    added_keys: list[str] = field(default_factory=list)
    label: str = ""

    @property
    def failing(self) -> bool:
        """The verdict is `changed` or `removed`: `diff` and `verify --strict` exit 3."""
        return self.verdict in FAILING

    def summary(self) -> str:
        """One line for a log or `diff`'s text output: the verdict, the request, the first
        differences (changed ones first) and how many more there are."""
        head = f"{self.verdict} {self.label}".rstrip()
        shown = [str(d) for d in self.differences[:SUMMARY_DIFFERENCES]]
        rest = len(self.differences) - len(shown)
        if rest:
            shown.append(f"and {rest} more")
        if not shown and self.added_keys:
            shown.append("keys added: " + ", ".join(self.added_keys[:SUMMARY_DIFFERENCES]))
            if len(self.added_keys) > SUMMARY_DIFFERENCES:
                shown.append(f"and {len(self.added_keys) - SUMMARY_DIFFERENCES} more")
        return f"{head}: {'; '.join(shown)}" if shown else head

    def to_json(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "request": self.label,
            "differences": [d.to_json() for d in self.differences],
            "added_keys": list(self.added_keys),
        }
