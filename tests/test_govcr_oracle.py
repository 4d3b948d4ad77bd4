"""go-vcr v4 itself (../shared/govcr) as the oracle of the cassettes the suite writes: it must
accept what it should and reject what it should, or every check that uses it proves nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SEED


def test_the_seed_passes(govcr_check) -> None:
    govcr_check([SEED])


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("version: 2", "version: 1"),  # go-vcr refuses other format versions
        ("duration: ", "duration: not-a-duration # "),  # a duration Go cannot parse
        ("code: 200", "code: \"200\""),  # a quoted integer does not unmarshal into an int
    ],
)
def test_a_cassette_go_vcr_cannot_load_fails(
    govcr_check, tmp_path: Path, old: str, new: str
) -> None:
    text = SEED.read_text()
    assert old in text
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace(old, new, 1))
    with pytest.raises(AssertionError, match="go-vcr v4 rejects"):
        govcr_check([broken])


def test_checking_nothing_is_an_error(govcr_check, tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="no cassette"):
        govcr_check([tmp_path])
