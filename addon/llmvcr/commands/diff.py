"""`llm-vcr diff OLD NEW`: what changed between two recordings, offline, by the same classifier
`verify` uses (`llmvcr.compare`). For reviewing a re-recording in a pull request:

    llm-vcr diff main-cassettes/ cassettes/          # folders: cassettes paired by name
    llm-vcr diff old.yaml new.yaml --json            # two cassettes

OLD and NEW are two cassette files, or two folders whose `*.yaml` files (searched recursively)
are paired by their path inside the folder. Within a pair, interactions are paired the way replay
would answer NEW's requests from OLD (`compare.pair`: the replay matcher in file order, with
`--ignore-json` and `--match-headers` as `run` takes them: comma lists, repeatable). A NEW
interaction nothing in OLD matches is `new`; an OLD one nothing took is `removed`; a cassette
only one folder has counts all its interactions so.

Output: one line per interaction that is not `same` (`NAME #ID: verdict METHOD URL: the first
differences`), then a summary line; `--json` prints one document with every result instead. A
path that does not exist or a cassette that does not load is reported on stderr the
`commands.files` way (`llm-vcr: path:line: message`) and the other pairs are still compared.

Exit status: 1 when a path is missing or a cassette did not load (the comparison is incomplete,
whatever the rest says); else 3 when anything is `changed` or `removed`; else 0. 2 for bad
arguments (OLD a file and NEW a folder, a bad `--ignore-json` path).

Pure Python (no mitmproxy).
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from ..cassette import CassetteError, CassetteWarning, Interaction, load
from ..compare import FAILING, VERDICTS, Pair, Result, classify_pair, pair
from ..matching import MatchOptions
from .files import MISSING, Problem, cannot_read, cassette_files

__all__ = ["add_arguments", "diff_paths", "run"]

DRIFT_EXIT = 3
PROBLEM_EXIT = 1
USAGE_EXIT = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("old", metavar="OLD", help="the cassette (or folder) as it was")
    parser.add_argument("new", metavar="NEW", help="the re-recorded cassette (or folder)")
    parser.add_argument("--json", action="store_true", help="print every result as JSON")
    parser.add_argument("--ignore-json", action="append", default=[], metavar="LIST",
                        help="JSON body paths left out of pairing requests (a.b, x.*.id)")
    parser.add_argument("--match-headers", action="append", default=[], metavar="LIST",
                        help="header names that must also match to pair requests")


def _items(values: Sequence[str]) -> tuple[str, ...]:
    """Comma lists, repeated: `run`'s way of taking list flags."""
    return tuple(item.strip() for given in values for item in given.split(",") if item.strip())


def run(args: argparse.Namespace) -> int:
    try:
        options = MatchOptions(_items(args.ignore_json), _items(args.match_headers))
    except ValueError as e:
        print(f"llm-vcr: --ignore-json: {e}", file=sys.stderr)
        return USAGE_EXIT
    return diff_paths(args.old, args.new, options, as_json=args.json)


@dataclass(slots=True)
class _Compared:
    """The results of one pair of cassettes."""

    name: str
    old: str | None
    new: str | None
    results: list[tuple[Pair, Result]] = field(default_factory=list)


def _file_pairs(old: Path, new: Path) -> list[tuple[str, Path | None, Path | None]] | None:
    """(name, OLD file, NEW file) for two files or two folders; None when they are one of each."""
    if old.is_file() and new.is_file():
        return [(str(new), old, new)]
    if not (old.is_dir() and new.is_dir()):
        return None
    olds = {str(path.relative_to(old)): path for path in cassette_files([str(old)])[0]}
    news = {str(path.relative_to(new)): path for path in cassette_files([str(new)])[0]}
    return [(name, olds.get(name), news.get(name)) for name in sorted(olds.keys() | news.keys())]


def _load(path: Path | None, err: TextIO) -> list[Interaction]:
    if path is None:
        return []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CassetteWarning)
        cassette = load(path)
    for warning in caught:
        err.write(f"llm-vcr: warning: {warning.message}\n")
    return cassette.interactions


def diff_paths(old: str, new: str, options: MatchOptions | None = None, as_json: bool = False,
               out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Compare OLD with NEW (see the module's text); the exit status."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    options = options or MatchOptions()
    problems = [Problem(name, 0, MISSING) for name in (old, new) if not Path(name).exists()]
    files = [] if problems else _file_pairs(Path(old), Path(new))
    if files is None:
        err.write("llm-vcr: diff: OLD and NEW must both be cassette files or both folders\n")
        return USAGE_EXIT
    compared: list[_Compared] = []
    for name, old_file, new_file in files:
        try:
            old_interactions = _load(old_file, err)
            new_interactions = _load(new_file, err)
        except CassetteError as e:
            problems.append(Problem(e.path or name, e.line or 0, e.message))
            continue
        except OSError as e:
            problems.append(Problem(name, 0, cannot_read(e)))
            continue
        entry = _Compared(name, None if old_file is None else str(old_file),
                          None if new_file is None else str(new_file))
        for found in pair(old_interactions, new_interactions, options):
            entry.results.append((found, classify_pair(found)))
        compared.append(entry)
    for problem in problems:
        err.write(f"llm-vcr: {problem}\n")
    totals = Counter(result.verdict for entry in compared for _, result in entry.results)
    if problems:
        status = PROBLEM_EXIT
    elif any(verdict in FAILING for verdict in totals):
        status = DRIFT_EXIT
    else:
        status = 0
    if as_json:
        json.dump(_document(compared, totals, problems, status), out, indent=2,
                  ensure_ascii=False)
        out.write("\n")
    else:
        _text(compared, totals, problems, out)
    return status


def _ids(found: Pair) -> tuple[int | None, int | None]:
    return (None if found.old is None else found.old.id,
            None if found.new is None else found.new.id)


def _text(compared: list[_Compared], totals: Counter[str], problems: list[Problem],
          out: TextIO) -> None:
    for entry in compared:
        for found, result in entry.results:
            if result.verdict == "same":
                continue
            old_id, new_id = _ids(found)
            where = f"#{new_id}" if new_id is not None else f"#{old_id} (old)"
            if old_id is not None and new_id is not None and old_id != new_id:
                where += f" (old #{old_id})"
            out.write(f"{entry.name} {where}: {result.summary()}\n")
    count = sum(totals.values())
    parts = ", ".join(f"{totals[verdict]} {verdict}" for verdict in VERDICTS)
    line = f"{count} interactions in {len(compared)} cassettes: {parts}"
    if problems:
        line += f"; {len(problems)} not compared (see above)"
    out.write(line + "\n")


def _document(compared: list[_Compared], totals: Counter[str], problems: list[Problem],
              status: int) -> dict[str, object]:
    return {
        "cassettes": [{
            "name": entry.name,
            "old": entry.old,
            "new": entry.new,
            "interactions": [
                {"old_id": _ids(found)[0], "new_id": _ids(found)[1], **result.to_json()}
                for found, result in entry.results
            ],
        } for entry in compared],
        "totals": {verdict: totals[verdict] for verdict in VERDICTS},
        "problems": [str(problem) for problem in problems],
        "status": status,
    }
