"""Profile CSV loading and its errors (with line numbers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellmodel import InputError
from cellmodel.profile import load_profile


def test_load_with_comments(tmp_path: Path) -> None:
    p = tmp_path / "p.csv"
    p.write_text("# current positive on discharge\ntime_s,current_A\n0,1\n1.5,-2.0\n\n3,0\n")
    prof = load_profile(p)
    assert list(prof.t_s) == [0.0, 1.5, 3.0]
    assert list(prof.current_A) == [1.0, -2.0, 0.0]


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("t,i\n0,1\n1,1\n", "line 1", "header"),
        ("time_s,current_A\n0,1\n1,abc\n", "line 3", "not a number"),
        ("time_s,current_A\n0,1\n1,1,1\n", "line 3", "expected 2 values"),
        ("time_s,current_A\n0,1\n2,1\n2,0\n", "line 4", "does not rise"),
        ("time_s,current_A\n0,nan\n1,1\n", "line 2", "finite"),
        ("time_s,current_A\n0,1\n", "rows", "at least 2"),
        ("", "line 1", "empty"),
    ],
)
def test_bad_profiles(tmp_path: Path, text: str, field: str, words: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(InputError) as info:
        load_profile(p)
    assert info.value.source == str(p)
    assert info.value.field == field
    assert words in info.value.reason


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        load_profile(tmp_path / "none.csv")
    assert info.value.field == "file"
