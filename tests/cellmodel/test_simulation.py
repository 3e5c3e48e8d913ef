"""Profile simulation: one row per profile time, input current echoed, pack files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from cellmodel import CellDesign, PackModel, bdf, load_cell
from cellmodel.experiment import parse_experiment
from cellmodel.profile import Profile
from cellmodel.simulation import SimulationResult, run_experiment, simulate_profile


def _profile() -> Profile:
    t = np.array([0.0, 10.0, 20.0, 50.0, 51.0])
    i = np.array([2.0, 0.0, -1.0, 4.0, 0.0])
    return Profile(source="test", t_s=t, values=i)


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


def test_profile_rows_are_sampled_at_the_period(default_design: CellDesign) -> None:
    prof = Profile(
        source="test", t_s=np.array([0.0, 3600.0, 3605.0]), values=np.array([1.0, 0.0, 0.0])
    )
    res = simulate_profile(PackModel(default_design, initial_soc=0.9), prof, period_s=10.0)
    assert np.array_equal(res.t_s, np.concatenate((np.arange(0.0, 3600.0, 10.0), [3600.0, 3605.0])))
    assert np.all(res.current_A[:-2] == 1.0) and np.all(res.current_A[-2:] == 0.0)
    assert res.discharged_Ah[-1] == pytest.approx(1.0, rel=1e-12)


def test_hold_at_one_volt_is_refused_before_the_current_flows(default_design: CellDesign) -> None:
    """Issue 12: 'Hold at 1V for 20 seconds' from half charge asked for ~100 A of a 2 Ah cell."""
    model = PackModel(default_design, initial_soc=0.5)
    res = run_experiment(model, parse_experiment(["Hold at 1V for 20 seconds"]))
    assert res.event is not None and res.event.kind == "current"
    assert res.event.value > 20 * default_design.capacity_Ah
    assert len(res.t_s) == 1 and model.soc[0] == 0.5  # nothing flowed
    assert "sanity bound" in res.step_reasons[-1]


def test_a_draining_profile_stops_at_the_guard_rail(default_design: CellDesign) -> None:
    """Issue 12: a profile that drains the cell ended at SOC -0.30 and 1.90 V."""
    prof = Profile(source="drain", t_s=np.array([0.0, 7200.0]), values=np.array([2.0, 0.0]))
    model = PackModel(default_design, initial_soc=0.5)
    res = simulate_profile(model, prof, period_s=1.0)
    assert res.event is not None and res.event.kind in ("soc_low", "voltage_low")
    ok = res.soc[:-1, 0] >= model.guards.soc_min
    assert np.all(ok) and np.all(res.v_V[:-1, 0] >= default_design.limits.v_abuse_min_V)
    # The model is left at the event row, not at the profile's end.
    assert model.t_s == res.t_s[-1] and model.soc[0] == res.soc[-1, 0]


@pytest.mark.parametrize(
    ("steps", "kind"),
    [
        (["Charge at 1C for 3 hours"], "voltage_high"),
        (["Discharge at 3C for 1 hour"], "voltage_low"),
    ],
)
def test_abuse_voltages_end_the_run(
    default_design: CellDesign, steps: list[str], kind: str
) -> None:
    res = run_experiment(PackModel(default_design, initial_soc=0.5), parse_experiment(steps))
    assert res.event is not None and res.event.kind == kind
    assert res.stopped is not None


def test_thermal_abuse_ends_the_run(default_design: CellDesign) -> None:
    # 15C pulses with rests: far below the current bound, but the heat adds up.
    cycle = ("Discharge at 15C for 20 s", "Charge at 15C for 20 s")
    model = PackModel(default_design, initial_soc=0.5, ambient_degC=60.0)
    res = run_experiment(model, parse_experiment([cycle] * 400))
    assert res.event is not None and res.event.kind == "temperature"
    assert res.temp_degC[-1, 0] > default_design.limits.temp_abuse_max_degC
    assert np.all(res.temp_degC[:-1, 0] <= default_design.limits.temp_abuse_max_degC)


def _run(design: CellDesign, text: str, period_s: float, soc: float = 1.0) -> SimulationResult:
    model = PackModel(design, initial_soc=soc)
    return run_experiment(model, parse_experiment([text]), period_s=period_s)


def test_a_long_period_ends_a_discharge_at_its_cut_off(default_design: CellDesign) -> None:
    """Probe: at a 3600 s period one step per period took 4 Ah from the 2 Ah cell (SOC -100 %)."""
    text = "Discharge at 1C until 2.75 V"
    fine, coarse = _run(default_design, text, 1.0), _run(default_design, text, 3600.0)
    assert coarse.event is None and "voltage reached 2.75 V" in coarse.step_reasons[0]
    assert abs(coarse.v_V[-1, 0] - 2.75) < 5e-3
    assert abs(coarse.soc[-1, 0] - fine.soc[-1, 0]) < 0.01
    tolerance_Ah = 0.01 * default_design.capacity_Ah
    assert abs(coarse.discharged_Ah[-1] - fine.discharged_Ah[-1]) < tolerance_Ah
    # Rows stay once per period; the last is where the cut-off was reached, off the grid.
    assert list(coarse.t_s[:-1]) == [0.0, 3600.0] and 3600.0 < coarse.t_s[-1] < 7200.0


def test_a_long_period_cv_hold_holds_its_voltage(default_design: CellDesign) -> None:
    """Probe: a CV hold at a 3600 s period charged 26.6 Ah into the 2 Ah cell (6.17 V, 819 degC)."""
    text = "Hold at 4.2 V until C/50"
    fine, coarse = _run(default_design, text, 1.0, 0.2), _run(default_design, text, 3600.0, 0.2)
    assert coarse.event is None and "current fell" in coarse.step_reasons[0]
    assert coarse.v_V.max() <= 4.2 + 1e-3
    assert coarse.charged_Ah[-1] <= fine.charged_Ah[-1]
    assert coarse.charged_Ah[-1] > 0.99 * fine.charged_Ah[-1]
    assert coarse.soc[-1, 0] <= fine.soc[-1, 0]


def test_a_long_period_resistive_load_stops_near_its_cut_off(default_design: CellDesign) -> None:
    """Probe: a 1 Ohm load at a 600 s period ended at 1.55 V for a 3 V cut-off."""
    text = "Discharge at 1 Ohm until 3 V"
    fine, coarse = _run(default_design, text, 1.0), _run(default_design, text, 600.0)
    assert coarse.event is None and "voltage reached 3 V" in coarse.step_reasons[0]
    assert abs(coarse.v_V[-1, 0] - 3.0) < 5e-3
    # Each row's current is the period's mean, so the rows' charge is what flowed.
    tolerance_Ah = 0.01 * default_design.capacity_Ah
    assert abs(coarse.discharged_Ah[-1] - fine.discharged_Ah[-1]) < tolerance_Ah
    assert np.all(np.diff(coarse.t_s[:-1]) == 600.0)


def test_a_hold_reports_the_current_it_measured(default_design: CellDesign) -> None:
    """Probe: the reason gave the cut-off (1.9984e-06 A) as the current the hold fell to."""
    res = _run(default_design, "Hold at 4.2 V until C/1000000", 1.0)
    reason = res.step_reasons[0]
    measured_A = float(reason.split("current fell to ")[1].split(" A")[0])
    assert measured_A < default_design.capacity_Ah / 1e6
    assert measured_A == pytest.approx(abs(res.current_A[-1]), rel=1e-4)


def test_a_long_period_stops_at_the_guard_rail_within_it(default_design: CellDesign) -> None:
    """Probe: one 3600 s step per period went past the guard rails to SOC -100 %."""
    text = "Discharge at 1C for 3 hours"
    fine, coarse = _run(default_design, text, 1.0, 0.5), _run(default_design, text, 3600.0, 0.5)
    assert fine.event is not None and fine.event.kind == "voltage_low"
    assert coarse.event is not None and coarse.event.kind == "voltage_low"
    # Stopped at the sub-step that crossed the rail, not at the end of the hour.
    assert abs(coarse.t_s[-1] - fine.t_s[-1]) <= 5.0
    assert abs(coarse.soc[-1, 0] - fine.soc[-1, 0]) < 0.005
