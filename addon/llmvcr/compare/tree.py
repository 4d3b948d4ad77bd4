"""Comparing JSON documents: position by position (`diff_json`), and by shape (`Shape`) for the
many events of a stream, whose counts differ from one answer to the next.

`diff_json(old, new, found)` walks both documents together:

| what differs                                   | verdict                                 |
| ---------------------------------------------- | --------------------------------------- |
| a value under a normalised key (`rules`)       | nothing (`same`)                        |
| a key old has and new has not                  | `changed` (removed)                     |
| a key new has and old has not                  | `benign`, listed in the added keys      |
| the JSON type of a value (string, number ...)  | `changed` (type)                        |
| array items old has and new has not           | `changed` (items removed)               |
| array items new has and old has not            | `benign` (items added)                  |
| a string under a `STRUCTURAL_KEYS` key         | `changed` (value)                       |
| any other string                               | `benign` (wording)                      |
| any other number or boolean                    | `benign` (value)                        |

A `Shape` is what a set of documents (the events of one type in a stream) holds: every path
(array indices as `*`) with the JSON types seen there, and the values seen under structural
keys. Two shapes compare like documents do: paths removed, types changed and structural values
that differ are `changed`; paths added are `benign`.

Pure Python (no mitmproxy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import jsonpath
from .result import ABSENT, Difference, show_pair
from .rules import STRUCTURAL_KEYS, normalised_scope

__all__ = ["Found", "Shape", "diff_json", "json_kind"]

Path = tuple[str, ...]
ANY = "any"  # the kind of a normalised value: any type goes


def json_kind(value: object) -> str:
    """The JSON type of a value as `json.loads` builds it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else type(value).__name__


def _where(prefix: str, path: Path) -> str:
    text = jsonpath.format_path(path) if path else "(root)"
    return f"{prefix}{text}"


@dataclass(slots=True)
class Found:
    """Differences and added keys collected by one comparison; `prefix` starts every `where`."""

    prefix: str = ""
    differences: list[Difference] = field(default_factory=list)
    added_keys: list[str] = field(default_factory=list)

    def changed(self, path: Path, old: object, new: object, what: str) -> None:
        self.differences.append(Difference(_where(self.prefix, path), *show_pair(old, new),
                                           True, what))

    def benign(self, path: Path, old: object, new: object, what: str) -> None:
        self.differences.append(Difference(_where(self.prefix, path), *show_pair(old, new),
                                           False, what))

    def added(self, path: Path) -> None:
        self.added_keys.append(_where(self.prefix, path))


def diff_json(old: object, new: object, found: Found, path: Path = (),
              numbers_free: bool = False) -> None:
    """Every difference between `old` and `new` (see the module's table), into `found`."""
    scope = normalised_scope(path)
    if scope == "value":
        return
    numbers_free = numbers_free or scope == "numbers"
    if isinstance(old, dict) and isinstance(new, dict):
        for key, value in old.items():
            if key in new:
                diff_json(value, new[key], found, (*path, key), numbers_free)
            else:
                found.changed((*path, key), value, ABSENT, "removed")
        for key in new:
            if key not in old:
                found.added((*path, key))
        return
    if isinstance(old, list) and isinstance(new, list):
        for index in range(min(len(old), len(new))):
            diff_json(old[index], new[index], found, (*path, str(index)), numbers_free)
        if len(old) > len(new):
            found.changed(path, f"{len(old)} items", f"{len(new)} items", "items removed")
        elif len(new) > len(old):
            found.benign(path, f"{len(old)} items", f"{len(new)} items", "items added")
        return
    old_kind, new_kind = json_kind(old), json_kind(new)
    if old_kind != new_kind:
        found.changed(path, old, new, "type")
    elif old != new:
        if old_kind == "number" and numbers_free:
            return
        if old_kind == "string" and path and path[-1] in STRUCTURAL_KEYS:
            found.changed(path, old, new, "value")
        else:
            found.benign(path, old, new, "wording" if old_kind == "string" else "value")


@dataclass(slots=True)
class Shape:
    """The paths of a set of JSON documents (array indices as `*`) with the JSON types seen at
    each, and the values seen under structural keys. Normalised values are of kind `any`."""

    kinds: dict[Path, set[str]] = field(default_factory=dict)
    values: dict[Path, set[str]] = field(default_factory=dict)

    def add(self, value: object, path: Path = ()) -> None:
        """Add one document (or the value at `path` of one)."""
        if normalised_scope(path) == "value":
            self.kinds.setdefault(path, set()).add(ANY)
            return
        self.kinds.setdefault(path, set()).add(json_kind(value))
        if isinstance(value, dict):
            for key, item in value.items():
                self.add(item, (*path, key))
        elif isinstance(value, list):
            for item in value:
                self.add(item, (*path, jsonpath.WILDCARD))
        elif isinstance(value, str) and path and path[-1] in STRUCTURAL_KEYS:
            self.values.setdefault(path, set()).add(value)

    def compare(self, new: Shape, found: Found) -> None:
        """What differs from this (old) shape to `new`, into `found`: only the outermost path of
        a removed or added subtree is named."""
        removed = _outermost(self.kinds.keys() - new.kinds.keys())
        for path in removed:
            found.changed(path, _kinds(self.kinds[path]), ABSENT, "removed")
        for path in _outermost(new.kinds.keys() - self.kinds.keys()):
            found.added(path)
        for path, old_kinds in self.kinds.items():
            new_kinds = new.kinds.get(path)
            if new_kinds is None or ANY in old_kinds or ANY in new_kinds:
                continue
            if old_kinds != new_kinds:
                found.changed(path, _kinds(old_kinds), _kinds(new_kinds), "type")
        for path, old_values in self.values.items():
            new_values = new.values.get(path)
            if new_values is not None and old_values != new_values:
                found.changed(path, _kinds(old_values), _kinds(new_values), "value")


def _kinds(kinds: set[str]) -> str:
    return " | ".join(sorted(kinds))


def _outermost(paths: set[Path]) -> list[Path]:
    """The paths that are not below another of `paths`, sorted."""
    ordered = sorted(paths)
    kept: list[Path] = []
    for path in ordered:
        if not any(path[: len(top)] == top for top in kept):
            kept.append(path)
    return kept
