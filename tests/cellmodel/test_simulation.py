"""Profile simulation: one row per profile time, input current echoed, pack files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from cellmodel import CellDesign, PackModel, bdf, load_cell
from cellmodel.profile import Profile
from cellmodel.simulation import simulate_profile


def _profile() -> Profile:
    t = np.array([0.0, 10.0, 20.0, 50.0, 51.0])
    i = np.array([2.0, 0.0, -1.0, 4.0, 0.0])
    return Profile(source="test", t_s=t, current_A=i)


def test_one_row_per_profile_time(default_design: CellDesign) -> None:
    prof = _profile()
    model = PackModel(default_design, initial_soc=0.6, isothermal=True)
    res = simulate_profile(model, prof)
    assert np.array_equal(res.t_s, prof.t_s)
    assert np.array_equal(res.current_A, prof.current_A)
    ref = PackModel(default_design, initial_soc=0.6, isothermal=True)
    # Row k: state at t_k with I_k switched on; compare with the model stepped by hand.
    assert res.v_V[0, 0] == pytest.approx(ref.terminal_voltage_V(2.0)[0])
    ref.step(2.0, 10.0)
    assert res.soc[1, 0] == pytest.approx(ref.soc[0])
    assert res.v_V[1, 0] == pytest.approx(ref.terminal_voltage_V(0.0)[0], abs=1e-9)
    assert res.discharged_Ah[-1] == pytest.approx((2.0 * 10 + 4.0 * 1) / 3600)
    assert res.charged_Ah[-1] == pytest.approx(30 / 3600)


def test_pack_writes_pack_and_cell_files(tmp_path: Path) -> None:
    design = load_cell("sisn-lco-2ah-4s")
    res = simulate_profile(PackModel(design), _profile())
    paths = res.write(tmp_path / "run.bdf.csv")
    assert [p.name for p in paths] == ["run.bdf.csv"] + [
        f"run.cell{k}.bdf.csv" for k in range(1, 5)
    ]
    with paths[0].open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5
    cells = [bdf.read_bdf(p)[bdf.VOLTAGE] for p in paths[1:]]
    assert np.allclose(np.sum(cells, axis=0), [float(r[bdf.VOLTAGE]) for r in rows])
