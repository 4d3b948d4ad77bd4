"""The per-file loop of the cassette commands (`fmt`, `show`, `check`, `redact`).

PATH arguments name cassette files, or folders searched recursively for `*.yaml` (sorted); the
order of the arguments is kept and a file named twice is handled once (`cassette_files`). Each
file is handed to the command's action; what goes wrong is a `Problem` with one wording whichever
command met it, and the loop goes on with the next file:

| what                              | message                                         |
| --------------------------------- | ----------------------------------------------- |
| a PATH that does not exist        | `no such file or directory`                     |
| a file that does not load         | the `CassetteError`'s own (`path:line: ...`)    |
| a file that cannot be read        | `cannot read the cassette: <reason>`            |
| a file that cannot be written     | `cannot rewrite the cassette: <reason>`         |

`fmt`, `show` and `redact` print problems on stderr as `llm-vcr: path[:line]: message`
(`print_problems`); `check` turns them into its own `path:line: error: message` findings. The
exit status is 1 when a PATH was missing or a file failed (`Outcome.status`), and the commands
add their own reasons (`fmt --check`: a file would change; `check`: an error found).

Pure Python (no mitmproxy).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TextIO

from ..cassette import CassetteError

__all__ = [
    "MISSING",
    "Outcome",
    "Problem",
    "cannot_read",
    "cannot_rewrite",
    "cassette_files",
    "for_each_cassette",
    "print_problems",
]

MISSING = "no such file or directory"


def cannot_read(error: OSError) -> str:
    """The message for a cassette file that could not be read."""
    return f"cannot read the cassette: {error.strerror or error}"


def cannot_rewrite(error: OSError) -> str:
    """The message for a cassette file that could not be rewritten (read, written or renamed
    under its lock)."""
    return f"cannot rewrite the cassette: {error.strerror or error}"


class Problem(NamedTuple):
    """A PATH or file a command could not handle: where (line 0 when unknown) and why."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the loop met: files found, files whose action failed, PATHs that do not exist."""

    files: int
    failed: int
    missing: int

    @property
    def status(self) -> int:
        """1 when a PATH was missing or a file failed, else 0."""
        return 1 if self.failed or self.missing else 0


def cassette_files(paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The cassette files named by `paths` (folders: every `*.yaml` below, sorted), and the paths
    that do not exist. The order of `paths` is kept; a file named twice is listed once."""
    files: list[Path] = []
    missing: list[str] = []
    seen: set[Path] = set()
    for name in paths:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*.yaml") if p.is_file())
        elif path.is_file():
            found = [path]
        else:
            missing.append(name)
            continue
        for file in found:
            if file not in seen:
                seen.add(file)
                files.append(file)
    return files, missing


def print_problems(err: TextIO) -> Callable[[Problem], None]:
    """A problem handler writing `llm-vcr: path[:line]: message` lines to `err`."""
    return lambda problem: err.write(f"llm-vcr: {problem}\n")


def for_each_cassette(
    paths: Sequence[str],
    action: Callable[[Path], object],
    problem: Callable[[Problem], None],
    *,
    writes: bool,
) -> Outcome:
    """Call `action` on each cassette file under `paths`, in order; report each missing PATH, and
    each file whose action raises CassetteError or OSError, to `problem` and go on.

    `writes`: the action rewrites files, so an OSError is worded `cannot rewrite`, else `cannot
    read`. Other exceptions are not caught (a bug shows its traceback).
    """
    files, missing = cassette_files(paths)
    for name in missing:
        problem(Problem(name, 0, MISSING))
    failed = 0
    for path in files:
        try:
            action(path)
        except CassetteError as e:
            problem(Problem(e.path or str(path), e.line or 0, e.message))
            failed += 1
        except OSError as e:
            problem(Problem(str(path), 0, cannot_rewrite(e) if writes else cannot_read(e)))
            failed += 1
    return Outcome(len(files), failed, len(missing))
