"""The BDF-style CSV writer is readable by a plain CSV reader."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from cellmodel import bdf


def test_write_and_read_back(tmp_path: Path) -> None:
    cols = {
        bdf.TIME: [0.0, 1.0, 2.5],
        bdf.CURRENT: [0.0, 2.0, -1.25],
        bdf.VOLTAGE: [4.2, 4.1, 4.15],
    }
    path = bdf.write_bdf(tmp_path / "sub" / "x.bdf.csv", cols)
    with path.open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [bdf.TIME, bdf.CURRENT, bdf.VOLTAGE]
    assert [float(r[bdf.CURRENT]) for r in rows] == [0.0, 2.0, -1.25]
    back = bdf.read_bdf(path)
    assert np.array_equal(back[bdf.VOLTAGE], [4.2, 4.1, 4.15])
    assert "discharge positive" in bdf.CURRENT


def test_cell_path_and_bad_names(tmp_path: Path) -> None:
    assert bdf.cell_path(tmp_path / "run.bdf.csv", 0).name == "run.cell1.bdf.csv"
    assert bdf.cell_path(tmp_path / "run.csv", 3).name == "run.cell4.bdf.csv"
    with pytest.raises(ValueError):
        bdf.write_bdf(tmp_path / "y.csv", {"a,b": [1.0]})
