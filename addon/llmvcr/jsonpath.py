"""The one JSON path syntax: `vcr_ignore_json` (matching) and `vcr_redact_json` (redaction).

A path is a dot-separated list of segments: `user`, `metadata.request_id`, `messages.*.id`.
- `*` stands for any key of an object or any index of an array.
- A segment of decimal digits indexes an array (`messages.0.content`); on an object it is a key.
- `\\.` is a literal dot inside a key (`headers.x\\.y` is the key `x.y`), `\\\\` a literal
  backslash; any other backslash is kept as it is.

Values are plain JSON values as `json.loads` builds them (dict, list, str, int, float, bool, None).
Nothing here modifies its input: the results are new containers wherever something changed, and
share the untouched parts (or are the input itself when nothing matched).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

WILDCARD = "*"

Path = tuple[str, ...]


@lru_cache(maxsize=1024)
def parse(path: str) -> Path:
    """Split a path into its segments; ValueError for an empty path or an empty segment."""
    if path == "":
        raise ValueError("empty JSON path")
    segments: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(path):
        char = path[i]
        if char == "\\" and i + 1 < len(path) and path[i + 1] in ".\\":
            current.append(path[i + 1])
            i += 2
            continue
        if char == ".":
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    segments.append("".join(current))
    if "" in segments:
        raise ValueError(
            f"JSON path {path!r} has an empty segment (a leading, trailing or double dot)"
        )
    return tuple(segments)


def format_path(segments: Iterable[str]) -> str:
    """The path text for `segments`: the inverse of `parse` (escapes dots and backslashes)."""
    return ".".join(s.replace("\\", "\\\\").replace(".", "\\.") for s in segments)


def remove(obj: object, paths: Iterable[str]) -> object:
    """`obj` without the values the paths point at (object keys dropped, array items taken out).

    All paths are applied together against the original structure, so `items.0` and `items.1`
    remove the first two items (not the first and the third). Paths that point at nothing are
    ignored.
    """
    parsed = [parse(p) for p in paths]
    if not parsed:
        return obj
    result, _ = _rewrite(obj, parsed, _REMOVE)
    return result


def replace(obj: object, paths: Iterable[str], value: object) -> tuple[object, bool]:
    """`obj` with every value the paths point at set to `value`, and whether anything changed.

    Only existing values are replaced (no keys are created). A value already equal to `value`
    (same type too) counts as unchanged, so replacing twice gives the same result as once.
    """
    parsed = [parse(p) for p in paths]
    if not parsed:
        return obj, False
    return _rewrite(obj, parsed, _Replacement(value))


class _Remove:
    pass


class _Replacement:
    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


_REMOVE = _Remove()


def _segment_matches(segment: str, key: str | int) -> bool:
    if segment == WILDCARD:
        return True
    if isinstance(key, int):
        return segment.isascii() and segment.isdigit() and int(segment) == key
    return segment == key


def _same_value(a: object, b: object) -> bool:
    return type(a) is type(b) and a == b


def _rewrite(
    node: object, paths: list[Path], action: _Remove | _Replacement
) -> tuple[object, bool]:
    """Apply every path (relative to `node`) at once: the new node, and whether it changed."""
    if isinstance(node, dict):
        items: Iterable[tuple[str | int, object]] = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return node, False

    changed = False
    kept: list[tuple[str | int, object]] = []
    for key, child in items:
        ends_here = False
        deeper: list[Path] = []
        for path in paths:
            if _segment_matches(path[0], key):
                if len(path) == 1:
                    ends_here = True
                else:
                    deeper.append(path[1:])
        if ends_here:
            if isinstance(action, _Replacement):
                if not _same_value(child, action.value):
                    child = action.value
                    changed = True
            else:
                changed = True
                continue
        elif deeper:
            child, child_changed = _rewrite(child, deeper, action)
            changed = changed or child_changed
        kept.append((key, child))

    if not changed:
        return node, False
    if isinstance(node, dict):
        return dict(kept), True
    return [child for _, child in kept], True
