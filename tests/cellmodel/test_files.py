"""cellmodel.files' writers: a file is written whole or not at all, and a failure names the
file the caller asked for, never the hidden temporary one beside it."""

from __future__ import annotations

from pathlib import Path

import pytest

from cellmodel.files import write_text_atomic


def test_a_file_is_replaced_whole_and_no_temporary_is_left(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "summary.json"
    write_text_atomic(target, "old")
    write_text_atomic(target, "new")
    assert target.read_text(encoding="utf-8") == "new"
    assert [p.name for p in target.parent.iterdir()] == ["summary.json"]


def test_a_folder_where_the_file_belongs_is_named_and_left_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    (target / "inside").mkdir(parents=True)
    with pytest.raises(OSError) as info:
        write_text_atomic(target, "{}")
    assert info.value.filename == str(target)
    assert "Is a directory" in str(info.value) or "Directory not empty" in str(info.value)
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]
    assert [p.name for p in target.iterdir()] == ["inside"]
