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


def test_a_cell_that_names_nothing_is_reported_where_it_was_named(tmp_path: Path) -> None:
    """The scenario file and its key (not the missing name alone), or the option."""
    sc = scenario(cell="sisn-lco-2ah", bms_cell="cells/gone.toml")
    with pytest.raises(InputError) as err:
        resolve_designs(sc)  # type: ignore[arg-type]
    assert (err.value.source, err.value.field) == ("s.toml", "bms_cell")
    assert "gone.toml" in err.value.reason
    with pytest.raises(InputError) as err:
        resolve_designs(scenario(cell="no-such-preset"))  # type: ignore[arg-type]
    assert (err.value.source, err.value.field) == ("s.toml", "cell")
    with pytest.raises(InputError) as err:
        resolve_designs(scenario(), bms_cell="no-such-preset")  # type: ignore[arg-type]
    assert (err.value.source, err.value.field) == ("--bms-cell", "no-such-preset")
    # A cell file whose `extends` names nothing: that file and that key.
    child = tmp_path / "child.toml"
    child.write_text('extends = "no-such-base"\n')
    with pytest.raises(InputError) as err:
        load_cell(child)
    assert (err.value.source, err.value.field) == (str(child), "extends")


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
    near = scenario(initial={"soc": 0.4, "firmware_soc_error": -0.06}).initial  # type: ignore[attr-defined]
    assert (near.soc, near.firmware_soc, near.firmware_soc_error) == (0.4, None, -0.06)
    for bad, needle in [
        ({"firmware_soc": 0.3, "firmware_soc_error": 0.1}, "not both"),
        ({"state_file": False, "firmware_soc_error": 0.1}, "needs state_file"),
        ({"firmware_soc_error": 1.5}, "firmware_soc_error"),
    ]:
        with pytest.raises(InputError, match=needle) as err:
            scenario(initial=bad)
        assert "initial.firmware_soc_error" in str(err.value)


def sensors(**spec: float) -> Sensors:
    return Sensors(dataclasses.replace(SensorSpec.ideal(), **spec), 2, 2, seed=3)


def test_broken_sensors_read_what_broken_sensors_read() -> None:
    s = sensors()
    v, t = np.array([3.7, 3.8]), np.array([25.0, 26.0])
    assert not s.read(v, 1.0, t).sensor_broken
    s.open_cell_tap(1, 0)
    s.break_thermistor(0, -60.0)
    r = s.read(v, 1.0, t)
    assert r.cell_mV == [3700, 0] and r.temp_ddegC == [-600, 260] and r.sensor_broken
    s.stick_current()
    assert s.read(v, -5.0, t).current_mA == 1000  # stuck at its last reading
    s.repair_all()
    r = s.read(v, -5.0, t)
    assert r.cell_mV == [3700, 3800] and r.current_mA == -5000 and r.temp_ddegC == [250, 260]
    assert not r.sensor_broken
    s.step_current_gain(20000)
    r = s.read(v, 1.0, t)
    assert r.current_mA == 1020 and not r.sensor_broken  # drifted, but still measuring
    s.stick_current(0)
    assert s.read(v, 1.0, t).sensor_broken
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


@pytest.mark.parametrize("fast_path", [True, False])
def test_fixed_cell_and_temperature_biases_add_to_the_drawn_ones(fast_path: bool) -> None:
    """Every cell channel and every probe reads off by its bias, on the same draws."""
    spec = SensorSpec()
    base = Sensors(spec, 4, 2, seed=7, fast_path=fast_path)
    bias = dataclasses.replace(spec, cell_bias_mV=-5.0, temp_bias_degC=2.0)
    biased = Sensors(bias, 4, 2, seed=7, fast_path=fast_path)
    v, t = np.array([3.7, 3.6, 3.65, 3.71]), np.array([3.0, 4.0, 5.0, 6.0])
    a, b = base.read(v, 1.0, t), biased.read(v, 1.0, t)
    # noise and LSB rounding: within one LSB of the bias (1 mV, 0.1 degC)
    assert all(abs(y - x + 5) <= 1 for x, y in zip(a.cell_mV, b.cell_mV, strict=True))
    assert all(abs(y - x - 20) <= 1 for x, y in zip(a.temp_ddegC, b.temp_ddegC, strict=True))
    assert a.current_mA == b.current_mA


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


def truths(rows: list[tuple[float, float, float, float]], **cells: list[float]) -> SampleTruth:
    """Samples from (t, dt, current, highest cell voltage) rows; per-cell extras by name."""
    n = len(rows)
    col = np.array(rows, dtype=float)
    return SampleTruth(
        t_s=col[:, 0],
        dt_s=col[:, 1],
        demand_A=col[:, 2],
        current_A=col[:, 2],
        cell_soc=np.array(cells.get("soc", [0.5] * n), dtype=float)[:, None],
        cell_v_V=col[:, 3:4],
        cell_temp_degC=np.array(cells.get("temp", [25.0] * n), dtype=float)[:, None],
        sensor_broken=np.zeros(n, dtype=bool),
    )


def test_coverage_and_error_after_calibration() -> None:
    q = EstimateQuality(nameplate_Ah=2.0, v_max_V=4.2, cv_cutoff_C=0.05)
    rows = [(0.0, 0.0, 1.0, 3.7)]  # not covered, before any calibration
    errs, uncs = [5.0], [1.0]
    t = 0.0
    while t < CALIBRATION_REST_S:  # a rest opens the window
        t += 60.0
        rows.append((t, 60.0, 0.0, 3.7))
        errs.append(0.5)
        uncs.append(1.0)
    rows += [(t + 60, 60.0, 1.0, 3.7), (t + CALIBRATION_HORIZON_S + 120, 60.0, 1.0, 3.7)]
    errs += [2.5, 9.0]  # 9 % comes 8 h after the rest: outside the window
    uncs += [3.0, 10.0]
    sample = truths(rows)
    s = q.summary(sample, np.array(errs), np.array(uncs), np.zeros(len(rows), dtype=bool))
    n = len(rows)
    assert s["uncertainty_coverage_pct"] == pytest.approx(100.0 * (n - 1) / n, abs=1e-3)
    assert s["soc_max_error_after_calibration_pct"] == 2.5
    rested = q.rested(sample)
    assert not rested[:30].any() and rested[30:].all()  # from the 30th minute of rest on

    # A full charge: at v_max with the current tapered to the CV cut-off, not during CC.
    cc = truths([(0.0, 1.0, -1.0, 4.2)])
    cc_s = q.summary(cc, np.array([1.0]), np.array([np.nan]), np.array([True]))
    assert cc_s["samples_after_calibration"] == 0
    full = truths([(0.0, 1.0, -1.0, 4.2), (1.0, 1.0, -0.09, 4.195)])
    s = q.summary(full, np.array([1.0, 1.5]), np.array([np.nan, np.nan]), np.zeros(2, bool))
    assert s["soc_max_error_after_calibration_pct"] == 1.5
    assert s["uncertainty_coverage_pct"] is None  # nothing reported, nothing covered


def test_error_after_learning_counts_only_samples_once_a_capacity_is_learned() -> None:
    """The diagnostic figure: the error after calibration over the samples from the first
    learned capacity on. A large error before learning (the count divided by a capacity not
    yet known) is left out; one after it counts, even when learning came mid-window."""
    q = EstimateQuality(nameplate_Ah=2.0, v_max_V=4.2, cv_cutoff_C=0.05)
    n_rest = int(CALIBRATION_REST_S // 60)
    rows = [(60.0 * k, 60.0, 0.0, 3.7) for k in range(1, n_rest + 1)]  # the rest opens it
    rows += [(60.0 * k, 60.0, 1.0, 3.7) for k in range(n_rest + 1, n_rest + 5)]
    errs = np.array([0.5] * n_rest + [8.0, 6.0, 1.2, 2.2])
    learned = np.array([False] * n_rest + [False, False, True, True])
    s = q.summary(truths(rows), errs, np.full(len(rows), 10.0), learned)
    assert s["soc_max_error_after_calibration_pct"] == 8.0
    assert s["soc_max_error_after_learning_pct"] == 2.2 and s["samples_after_learning"] == 2
    assert s["soc_max_error_after_learning_t_s"] == rows[-1][0]
    # never learned: nothing judged, no figure (not a zero)
    never = q.summary(truths(rows), errs, np.full(len(rows), 10.0), np.zeros(len(rows), bool))
    assert never["soc_max_error_after_learning_pct"] is None
    assert never["samples_after_learning"] == 0


def test_discharge_blocked_without_a_true_reason_is_counted() -> None:
    a = Availability(v_min_V=2.75, temp_min_degC=-20.0, temp_max_degC=60.0, sensor_release_s=2.0)
    sample = truths(
        [
            (1.0, 10.0, 1.0, 3.7),  # blocked at 50 %: counts
            (2.0, 10.0, 1.0, 3.7),  # nearly empty: warranted
            (3.0, 10.0, 1.0, 3.7),  # too hot: warranted
            (4.0, 10.0, -1.0, 3.7),  # charging: DSG need not be on
            (5.0, 10.0, 1.0, 3.7),  # DSG on
            (6.0, 7.0, 1.0, 3.7),  # held to the DCL
        ],
        soc=[0.5, 0.04, 0.5, 0.5, 0.5, 0.5],
        temp=[25.0, 25.0, 70.0, 25.0, 25.0, 25.0],
    )
    dsg_on = np.array([False, False, False, False, True, True])
    limited = np.array([False, False, False, False, False, True])
    s = a.summary(sample, dsg_on, limited)
    assert s["discharge_blocked_s"] == 10.0 and s["discharge_blocked_first_t_s"] == 1.0
    assert s["discharge_limited_s"] == 7.0 and s["charge_limited_s"] == 0.0


@pytest.mark.parametrize(
    ("period_s", "first_counted_s"),
    [
        # broken through t = 5 s; the 2nd sample after it (7 s) plus the 2 s release: 9 s
        (1.0, 10.0),
        # broken through t = 50 s at the slowest sampling the firmware counts (10 s): the
        # 2nd sample after it (70 s) plus 2 s; a fixed 10 s grace would have ended at 60 s,
        # before the BMS had seen a second trustworthy reading
        (10.0, 80.0),
    ],
)
def test_discharge_blocked_for_a_broken_sensor_counts_only_after_the_repair_grace(
    period_s: float, first_counted_s: float
) -> None:
    """A stuck current sensor is a true reason to open DSG, and so is the moment after its
    repair while the BMS sees two trustworthy samples and waits out its release delay; a
    block that lasts beyond that is the BMS's own."""
    a = Availability(v_min_V=2.75, temp_min_degC=-20.0, temp_max_degC=60.0, sensor_release_s=2.0)
    t = [period_s * k for k in range(1, 31)]
    broken = np.array([k <= 5 for k in range(1, 31)])  # broken in the first 5 samples
    sample = truths([(tk, period_s, 1.0, 3.7) for tk in t])
    sample = dataclasses.replace(sample, sensor_broken=broken)
    blocked_until_s = 20 * period_s  # DSG open through the 20th sample
    dsg_on = np.array([tk > blocked_until_s for tk in t])
    s = a.summary(sample, dsg_on, np.zeros(len(t), dtype=bool))
    assert s["discharge_blocked_first_t_s"] == first_counted_s
    assert s["discharge_blocked_s"] == blocked_until_s - first_counted_s + period_s
    # never broken: the whole block counts
    never = dataclasses.replace(sample, sensor_broken=np.zeros(len(t), dtype=bool))
    whole = a.summary(never, dsg_on, np.zeros(len(t), dtype=bool))
    assert whole["discharge_blocked_s"] == blocked_until_s


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
