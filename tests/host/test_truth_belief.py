"""Truth against belief: the simulated cell is perturbed, the firmware keeps the nominal design.

Pure host logic (scenario parsing, design resolution, sensor faults, whole-run scores);
the closed loop with a real firmware is in test_emulator_closed_loop.py.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from cellmodel import load_cell
from cellmodel.errors import InputError
from cellmodel.pack import PackModel
from host.boards import load_board
from host.emulator.expectations import ExpectationChecker
from host.emulator.run import resolve_designs
from host.estimate_scoring import (
    CALIBRATION_HORIZON_S,
    CALIBRATION_REST_S,
    Availability,
    EstimateQuality,
    SampleTruth,
)
from host.firmware_config import build_config
from host.scenarios import load_scenario, parse_scenario
from host.scenarios.mismatch import Mismatch, parse_mismatch
from host.scenarios.steps import Observation, parse_expectation
from host.sensors import Sensors, SensorSpec


def scenario(**extra: object) -> object:
    return parse_scenario({"steps": ["Rest for 1 s"], **extra}, "s.toml")


def test_the_bms_gets_the_nominal_design_never_the_aged_or_perturbed_cell() -> None:
    aged = load_scenario("aged-cell")
    designs = resolve_designs(aged)
    assert designs.truth.aging.capacity_retention < 1.0
    assert designs.belief.aging.capacity_retention == 1.0
    board = load_board("virtual")
    assert build_config(designs.belief, board) == build_config(load_cell("sisn-lco-2ah"), board)

    sc = scenario(mismatch={"capacity_factor": 0.8, "hysteresis_rate_factor": 0.5})
    designs = resolve_designs(sc)  # type: ignore[arg-type]
    assert designs.truth.capacity_Ah == pytest.approx(0.8 * designs.belief.capacity_Ah)
    assert designs.truth.anode_mass_g == pytest.approx(0.8 * designs.belief.anode_mass_g)
    assert designs.truth.circuit.hysteresis_gamma == pytest.approx(20.0)
    assert build_config(designs.belief, board) == build_config(load_cell("sisn-lco-2ah"), board)


def test_bms_cell_key_and_option_choose_the_belief() -> None:
    sc = scenario(cell="sisn-lco-2ah-aged", bms_cell="sisn-lco-2ah-aged")
    d = resolve_designs(sc)  # type: ignore[arg-type]
    assert d.belief.aging.capacity_retention < 1.0  # asked for explicitly: the user's choice
    d = resolve_designs(sc, bms_cell="sisn-lco-2ah")  # type: ignore[arg-type]
    assert d.belief.name == "sisn-lco-2ah"
    with pytest.raises(InputError, match="in series"):
        resolve_designs(sc, bms_cell="sisn-lco-2ah-4s")  # type: ignore[arg-type]


def test_mismatch_changes_the_simulated_cell_as_stated() -> None:
    base = load_cell()
    m = Mismatch(ocv_offset_mV=20.0, ocv_charge_offset_mV=-5.0, resistance_factor=2.0)
    truth = m.apply(base)
    np.testing.assert_allclose(truth.ocv.charge_V, base.ocv.charge_V + 0.015)
    np.testing.assert_allclose(truth.ocv.discharge_V, base.ocv.discharge_V + 0.020)

    # Resistance doubled: a 2 A pulse sags about twice as far below the OCV.
    def sag(design: object) -> float:
        model = PackModel(design, initial_soc=0.5, isothermal=True)  # type: ignore[arg-type]
        ocv = float(model.ocv_V[0])
        return ocv - float(model.step(2.0, 1.0).v_V[0])

    assert sag(truth) == pytest.approx(2.0 * sag(base), rel=0.05)
    assert Mismatch().apply(base) is base


def test_mismatch_ranges_are_drawn_from_the_seed_and_checked() -> None:
    table = {"resistance_factor": [0.7, 2.0], "ocv_offset_mV": [-20, 20]}
    a = parse_mismatch(table, "s", seed=1)
    assert a == parse_mismatch(table, "s", seed=1)
    draws = {parse_mismatch(table, "s", seed=k).resistance_factor for k in range(40)}
    assert len(draws) == 40 and min(draws) >= 0.7 and max(draws) <= 2.0
    # One key's draw does not depend on which other keys are present.
    alone = parse_mismatch({"resistance_factor": [0.7, 2.0]}, "s", seed=1)
    assert alone.resistance_factor == a.resistance_factor
    for bad, needle in [
        ({"capacity_factor": 5.0}, "plausible"),
        ({"capacity_factor": [0.9, 0.8]}, "lo <= hi"),
        ({"capacity_factor": "big"}, "number"),
        ({"wobble": 1.0}, "unknown key"),
    ]:
        with pytest.raises(InputError, match=needle):
            parse_mismatch(bad, "s", seed=1)


def test_stale_state_file_and_no_state_file_parse() -> None:
    sc = scenario(initial={"soc": 0.55, "firmware_soc": 0.7, "firmware_branch": "charge"})
    init = sc.initial  # type: ignore[attr-defined]
    assert (init.soc, init.firmware_soc, init.firmware_branch) == (0.55, 0.7, "charge")
    with pytest.raises(InputError, match="firmware_branch"):
        scenario(initial={"state_file": False, "firmware_branch": "charge"})
    with pytest.raises(InputError, match="firmware_branch"):
        scenario(initial={"firmware_branch": "sideways"})


def sensors(**spec: float) -> Sensors:
    return Sensors(dataclasses.replace(SensorSpec.ideal(), **spec), 2, 2, seed=3)


def test_broken_sensors_read_what_broken_sensors_read() -> None:
    s = sensors()
    v, t = np.array([3.7, 3.8]), np.array([25.0, 26.0])
    s.open_cell_tap(1, 0)
    s.break_thermistor(0, -60.0)
    r = s.read(v, 1.0, t)
    assert r.cell_mV == [3700, 0] and r.temp_ddegC == [-600, 260]
    s.stick_current()
    assert s.read(v, -5.0, t).current_mA == 1000  # stuck at its last reading
    s.repair_all()
    r = s.read(v, -5.0, t)
    assert r.cell_mV == [3700, 3800] and r.current_mA == -5000 and r.temp_ddegC == [250, 260]
    s.step_current_gain(20000)
    assert s.read(v, 1.0, t).current_mA == 1020
    with pytest.raises(ValueError, match="probe 3"):
        s.break_thermistor(2, 150.0)


def test_fixed_current_bias_and_gain_error_add_to_the_drawn_ones() -> None:
    base = Sensors(SensorSpec(), 1, 1, seed=5)
    biased = Sensors(
        dataclasses.replace(SensorSpec(), current_bias_mA=20.0, current_gain_bias_ppm=-20000),
        1,
        1,
        seed=5,
    )
    v, t = np.array([3.7]), np.array([25.0])
    # Same seed, same draws: the difference is the bias alone (within the 1 mA LSB).
    diff = biased.read(v, 2.0, t).current_mA - base.read(v, 2.0, t).current_mA
    assert abs(diff - (20 - 40)) <= 1


def obs(t: float, err: float, *, rested: bool = False) -> Observation:
    return Observation(t, True, True, 0, err, 0.0, None, rested=rested)


def test_whole_run_expectations_judge_every_reply_in_their_window() -> None:
    throughout = parse_expectation("Expect SOC error below 2% throughout")
    after_rest = parse_expectation("Expect SOC error below 2% after the first rest")
    assert throughout is not None and after_rest is not None
    c = ExpectationChecker([(3, throughout), (5, after_rest)])
    for t, err, rested in [(1, 1.0, False), (2, 4.0, False), (3, 1.0, True), (4, 1.9, True)]:
        c.observe(obs(t, err, rested=rested))
    c.finish(10)
    by_step = {r.index: r for r in c.results}
    assert by_step[3].passed is False and by_step[3].t_judged_s == 2  # the error at t=2
    assert by_step[5].passed is True  # the error before the rest is outside its window
    empty = ExpectationChecker([(0, after_rest)])
    empty.observe(obs(1, 0.1))
    empty.finish(5)
    assert empty.results[0].passed is False and "never opened" in empty.results[0].detail


def truth(t: float, dt: float, current_A: float, v: float = 3.7, **kw: object) -> SampleTruth:
    base: dict[str, object] = dict(
        t_s=t,
        dt_s=dt,
        demand_A=current_A,
        current_A=current_A,
        cell_soc=np.array([0.5]),
        cell_v_V=np.array([v]),
        cell_temp_degC=np.array([25.0]),
    )
    base.update(kw)
    return SampleTruth(**base)  # type: ignore[arg-type]


def test_coverage_and_error_after_calibration() -> None:
    q = EstimateQuality(nameplate_Ah=2.0, v_max_V=4.2, cv_cutoff_C=0.05)
    q.add(truth(0, 0, 1.0), err_pct=5.0, unc_pct=1.0)  # not covered, before any calibration
    t = 0.0
    while t < CALIBRATION_REST_S:  # a rest opens the window
        t += 60.0
        q.add(truth(t, 60.0, 0.0), err_pct=0.5, unc_pct=1.0)
    q.add(truth(t + 60, 60.0, 1.0), err_pct=2.5, unc_pct=3.0)
    q.add(truth(t + CALIBRATION_HORIZON_S + 120, 60.0, 1.0), err_pct=9.0, unc_pct=10.0)
    s = q.summary()
    n = 1 + int(CALIBRATION_REST_S / 60) + 2
    assert s["uncertainty_coverage_pct"] == pytest.approx(100.0 * (n - 1) / n, abs=1e-3)
    assert s["soc_max_error_after_calibration_pct"] == 2.5  # 9 % came 8 h after it
    assert q.rested

    full = EstimateQuality(nameplate_Ah=2.0, v_max_V=4.2, cv_cutoff_C=0.05)
    full.add(truth(0, 1, -1.0, v=4.2), err_pct=1.0, unc_pct=None)  # CC at v_max: not yet
    assert full.summary()["samples_after_calibration"] == 0
    full.add(truth(1, 1, -0.09, v=4.195), err_pct=1.5, unc_pct=None)  # tapered: full
    assert full.summary()["soc_max_error_after_calibration_pct"] == 1.5


def test_discharge_blocked_without_a_true_reason_is_counted() -> None:
    a = Availability(v_min_V=2.75, temp_min_degC=-20.0, temp_max_degC=60.0)
    a.add(truth(1, 10, 1.0), dsg_on=False)  # blocked at 50 %: counts
    a.add(truth(2, 10, 1.0, cell_soc=np.array([0.04])), dsg_on=False)  # nearly empty: fine
    a.add(truth(3, 10, 1.0, cell_temp_degC=np.array([70.0])), dsg_on=False)  # too hot: fine
    a.add(truth(4, 10, -1.0), dsg_on=False)  # charging: DSG need not be on
    a.add(truth(5, 10, 1.0), dsg_on=True)
    assert a.summary()["discharge_blocked_s"] == 10.0
    assert a.summary()["discharge_blocked_first_t_s"] == 1


def test_scenario_file_with_everything_new(tmp_path: Path) -> None:
    path = tmp_path / "new.toml"
    path.write_text(
        'steps = ["Open cell 1 tap", "Rest for 1 s", "Expect SOC error below 3% throughout"]\n'
        'bms_cell = "sisn-lco-2ah"\n'
        "[mismatch]\nhysteresis_rate_factor = 0.5\nocv_offset_mV = [-20, 20]\n"
        "[sensors]\ncurrent_bias_mA = -20\ncurrent_gain_bias_ppm = 20000\n"
    )
    sc = load_scenario(path)
    assert sc.bms_cell == "sisn-lco-2ah" and sc.mismatch.hysteresis_rate_factor == 0.5
    assert -20 <= sc.mismatch.ocv_offset_mV <= 20
    assert sc.sensors.current_bias_mA == -20
    path.write_text('steps = ["Rest for 1 s"]\n[sensors]\ncurrent_bias_mA = 1e9\n')
    with pytest.raises(InputError, match="sensors.current_bias_mA"):
        load_scenario(path)
