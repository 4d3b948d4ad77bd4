"""The per-file loop of `fmt`, `show`, `check` and `redact` (`commands.files`): one wording for
each problem whichever command meets it, the other files still handled, exit status 1."""

from __future__ import annotations

import errno
import io
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import SEED
from llmvcr.commands import fmt, redact
from llmvcr.commands.check import check_paths
from llmvcr.commands.files import Problem, cassette_files, for_each_cassette
from llmvcr.commands.fmt import fmt_paths
from llmvcr.commands.redact import redact_paths
from llmvcr.commands.show import show_paths

BROKEN = b"---\nversion: 1\ninteractions: []\n"
BROKEN_MESSAGE = "2: unsupported cassette version 1 (version 2 expected)"


def _fmt(paths: list[str], out: io.StringIO, err: io.StringIO) -> int:
    return fmt_paths(paths, False, out=out, err=err)


def _fmt_check(paths: list[str], out: io.StringIO, err: io.StringIO) -> int:
    return fmt_paths(paths, True, out=out, err=err)


def _show(paths: list[str], out: io.StringIO, err: io.StringIO) -> int:
    return show_paths(paths, out=out, err=err, color=False)


def _redact(paths: list[str], out: io.StringIO, err: io.StringIO) -> int:
    return redact_paths(paths, out=out, err=err)


STDERR_COMMANDS: dict[str, Callable[[list[str], io.StringIO, io.StringIO], int]] = {
    "fmt": _fmt, "fmt --check": _fmt_check, "show": _show, "redact": _redact}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A missing path, a file that does not load, and a good file (in that order of arguments)."""
    broken = tmp_path / "broken.yaml"
    broken.write_bytes(BROKEN)
    good = tmp_path / "good.yaml"
    shutil.copy(SEED, good)
    return tmp_path / "absent.yaml", broken, good


@pytest.mark.parametrize("command", STDERR_COMMANDS)
def test_missing_and_broken_files_are_worded_alike(command: str,
                                                   files: tuple[Path, Path, Path]) -> None:
    missing, broken, good = files
    out, err = io.StringIO(), io.StringIO()
    status = STDERR_COMMANDS[command]([str(missing), str(broken), str(good)], out, err)
    assert status == 1
    assert err.getvalue() == (f"llm-vcr: {missing}: no such file or directory\n"
                              f"llm-vcr: {broken}:{BROKEN_MESSAGE}\n")
    assert broken.read_bytes() == BROKEN
    if command == "show":
        assert "Say hi in Portuguese" in out.getvalue()  # the good file is still shown


def test_check_words_them_alike_as_findings(files: tuple[Path, Path, Path]) -> None:
    missing, broken, good = files
    out = io.StringIO()
    assert check_paths([str(missing), str(broken), str(good)], out=out) == 1
    assert out.getvalue().splitlines() == [
        f"{missing}: error: no such file or directory",
        f"{broken}:{BROKEN_MESSAGE.replace(': ', ': error: ', 1)}",
        "checked 2 cassettes: 2 errors, 0 warnings",
    ]


@pytest.mark.parametrize("module", [fmt, redact], ids=["fmt", "redact"])
def test_a_file_that_cannot_be_rewritten(module: object, files: tuple[Path, Path, Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """(Tests run as root here, so no file mode stops a write: the rewrite itself fails.)"""
    _, _, good = files

    def refuse(path: Path, change: object) -> bool:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(module, "rewrite_cassette", refuse)
    out, err = io.StringIO(), io.StringIO()
    run = _fmt if module is fmt else _redact
    assert run([str(good)], out, err) == 1
    assert err.getvalue() == (
        f"llm-vcr: {good}: cannot rewrite the cassette: Read-only file system\n")


def test_a_file_that_cannot_be_read(files: tuple[Path, Path, Path]) -> None:
    _, _, good = files
    problems: list[Problem] = []

    def unreadable(path: Path) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    outcome = for_each_cassette([str(good)], unreadable, problems.append, writes=False)
    assert (outcome.files, outcome.failed, outcome.missing, outcome.status) == (1, 1, 0, 1)
    assert [str(p) for p in problems] == [f"{good}: cannot read the cassette: Permission denied"]


def test_cassette_files_order_folders_and_duplicates(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    for name in ("b/z.yaml", "b/a.yaml", "top.yaml", "b/notes.txt"):
        (tmp_path / name).write_text("")
    files, missing = cassette_files([str(tmp_path / "top.yaml"), str(tmp_path),
                                     str(tmp_path / "nope")])
    assert files == [tmp_path / "top.yaml", tmp_path / "b" / "a.yaml", tmp_path / "b" / "z.yaml"]
    assert missing == [str(tmp_path / "nope")]
