"""`llm-vcr fmt` (commands.fmt.fmt_paths): rewrite in canonical form, --check, folders, errors."""

from __future__ import annotations

import io
import os
from pathlib import Path

from conftest import SEED
from llmvcr.cassette import dumps, loads
from llmvcr.commands.fmt import fmt_paths

CANONICAL = SEED.read_bytes()
# the seed as a hand-edited file: flow style, a quoted string, keys out of order
MESSY = CANONICAL.replace(
    b"    proto: HTTP/1.1\n    proto_major: 1\n", b"    proto_major: 1\n    proto: 'HTTP/1.1'\n"
).replace(
    b"      Content-Type:\n      - text/event-stream; charset=utf-8\n",
    b"      Content-Type: ['text/event-stream; charset=utf-8']\n",
)


def run(paths: list[Path], check: bool) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = fmt_paths([str(p) for p in paths], check, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_messy_input_is_not_canonical() -> None:
    assert MESSY != CANONICAL
    assert dumps(loads(MESSY)) == CANONICAL


def test_rewrites_a_file_in_canonical_form(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_bytes(MESSY)
    assert run([path], check=False) == (0, f"reformatted {path}\n", "")
    assert path.read_bytes() == CANONICAL
    assert [p.name for p in tmp_path.iterdir()] == ["a.yaml"]  # no temp file left behind


def test_check_lists_files_that_would_change_and_changes_nothing(tmp_path: Path) -> None:
    messy, canonical = tmp_path / "messy.yaml", tmp_path / "ok.yaml"
    messy.write_bytes(MESSY)
    canonical.write_bytes(CANONICAL)
    assert run([messy, canonical], check=True) == (1, f"{messy}\n", "")
    assert messy.read_bytes() == MESSY


def test_check_passes_on_canonical_files(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_bytes(CANONICAL)
    assert run([path], check=True) == (0, "", "")


def test_folders_are_searched_recursively_for_yaml(tmp_path: Path) -> None:
    nested = tmp_path / "TestX" / "sub"
    nested.mkdir(parents=True)
    (nested / "deep.yaml").write_bytes(MESSY)
    (tmp_path / "top.yaml").write_bytes(MESSY)
    (tmp_path / "ok.yaml").write_bytes(CANONICAL)
    (tmp_path / "notes.txt").write_bytes(b"not a cassette")
    code, out, err = run([tmp_path], check=True)
    assert (code, err) == (1, "")
    assert out.splitlines() == [str(nested / "deep.yaml"), str(tmp_path / "top.yaml")]
    code, out, err = run([tmp_path], check=False)
    assert (code, err) == (0, "")
    assert (nested / "deep.yaml").read_bytes() == CANONICAL
    assert (tmp_path / "top.yaml").read_bytes() == CANONICAL
    assert (tmp_path / "notes.txt").read_bytes() == b"not a cassette"
    assert run([tmp_path], check=True) == (0, "", "")


def test_canonical_files_are_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_bytes(CANONICAL)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = path.stat()
    assert run([path], check=False) == (0, "", "")
    after = path.stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)


def test_rewrite_keeps_the_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_bytes(MESSY)
    path.chmod(0o640)
    assert run([path], check=False)[0] == 0
    assert path.stat().st_mode & 0o777 == 0o640


def test_broken_file_is_reported_without_traceback(tmp_path: Path) -> None:
    broken, messy = tmp_path / "broken.yaml", tmp_path / "messy.yaml"
    broken.write_bytes(b"---\nversion: 1\ninteractions: []\n")
    messy.write_bytes(MESSY)
    code, out, err = run([broken, messy], check=False)
    assert code == 1
    assert err == f"llm-vcr: {broken}:2: unsupported cassette version 1 (version 2 expected)\n"
    assert "Traceback" not in err + out
    assert out == f"reformatted {messy}\n"  # the other files are still formatted
    assert broken.read_bytes() == b"---\nversion: 1\ninteractions: []\n"


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    assert run([missing], check=True) == (1, "", f"llm-vcr: {missing}: no such file or directory\n")
