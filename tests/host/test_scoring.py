"""Scoring without I/O: SOC error statistics, safety tolerances, protection latency."""

from __future__ import annotations

import numpy as np
import pytest

from host.scoring import CellLimits, Scorer, Tolerances

LIMITS = CellLimits(
    v_max_V=4.2,
    v_min_V=2.75,
    window_top_mAh_g=1667.0,
    anode_potential_min_V=0.05,
    charge_temp_min_degC=0.0,
    charge_temp_max_degC=45.0,
    discharge_temp_min_degC=-20.0,
    discharge_temp_max_degC=60.0,
)


def add(s: Scorer, t: float, **kw: object) -> None:
    base: dict[str, object] = dict(
        current_A=1.0,
        cell_v_V=np.array([3.7]),
        soc_true=0.5,
        soc_est_pct=50.0,
        cell_temp_degC=np.array([25.0]),
        anode_util_mAh_g=np.array([800.0]),
        anode_potential_V=np.array([0.2]),
        chg_on=True,
        dsg_on=True,
    )
    base.update(kw)
    s.add(t, **base)  # type: ignore[arg-type]


def test_soc_error_statistics() -> None:
    s = Scorer(LIMITS)
    add(s, 1, soc_true=0.50, soc_est_pct=51.0)
    add(s, 2, soc_true=0.50, soc_est_pct=47.0)
    add(s, 3, soc_true=0.10, soc_est_pct=12.0)
    assert s.soc_rmse_pct == pytest.approx(np.sqrt((1 + 9 + 4) / 3))
    assert s.soc_max_error_pct == pytest.approx(3.0)
    out = s.summary(capacity_est_Ah=2.04, capacity_true_Ah=2.0)
    assert out["soc_near_empty_max_error_pct"] == pytest.approx(2.0)
    assert out["capacity_error_pct"] == pytest.approx(2.0)
    assert out["violations"] == [] and s.safe


def test_voltage_within_tolerance_is_safe_beyond_is_not() -> None:
    s = Scorer(LIMITS)
    add(s, 1, cell_v_V=np.array([3.9, 4.2 + 0.02]), current_A=-1.0)
    assert s.safe
    add(s, 2, cell_v_V=np.array([3.9, 4.2 + 0.05]), current_A=-1.0)
    assert not s.safe
    out = s.summary()
    assert out["violation_counts"] == {"cell_over_voltage": 1}
    assert "cell 2" in out["violations"][0]
    assert out["tolerances"]["v_over_V"] == Tolerances().v_over_V


def test_anode_window_and_potential() -> None:
    s = Scorer(LIMITS)
    add(s, 1, anode_util_mAh_g=np.array([1667 * 1.005]))
    assert s.safe
    add(s, 2, anode_util_mAh_g=np.array([1667 * 1.02]))
    add(s, 3, anode_potential_V=np.array([0.04]))
    assert set(s.summary()["violation_counts"]) == {"anode_window_top", "anode_potential"}


def test_the_closest_approach_to_the_anode_limits_is_reported() -> None:
    # "no violation" says the limits were not crossed; the summary also says by how much
    # they were missed, and when: the fullest cell and the lowest anode of any cell
    s = Scorer(LIMITS)
    add(s, 1, anode_util_mAh_g=np.array([900.0, 1500.0]), anode_potential_V=np.array([0.2, 0.1]))
    add(s, 2, anode_util_mAh_g=np.array([1600.0, 1000.0]), anode_potential_V=np.array([0.3, 0.2]))
    add(s, 3, anode_util_mAh_g=np.array([800.0, 900.0]), anode_potential_V=np.array([0.07, 0.2]))
    out = s.summary()
    assert out["violations"] == []
    assert out["anode_util_max_mAh_g"] == 1600.0 and out["anode_util_max_t_s"] == 2.0
    assert out["anode_potential_lowest_V"] == 0.07 and out["anode_potential_lowest_t_s"] == 3.0
    assert out["anode_util_min_mAh_g"] == 800.0
    assert out["anode_potential_margin_mV"] == pytest.approx(20.0)
    assert out["anode_util_margin_pct"] == pytest.approx((1 - 1600 / 1667) * 100, abs=1e-3)


def test_temperature_only_counts_while_current_flows_past_grace() -> None:
    s = Scorer(LIMITS)
    for t in range(0, 60, 2):  # cold, charge blocked: no current
        add(s, t, cell_temp_degC=np.array([-10.0]), current_A=0.0, chg_on=False)
    assert s.safe
    for t in range(60, 66, 2):  # charging cold, within the grace time
        add(s, t, cell_temp_degC=np.array([-10.0]), current_A=-1.0)
    assert s.safe
    for t in range(66, 80, 2):
        add(s, t, cell_temp_degC=np.array([-10.0]), current_A=-1.0)
    assert not s.safe


def test_latency_from_crossing_to_switch_opening() -> None:
    s = Scorer(LIMITS)
    add(s, 10, current_A=1.0, cell_v_V=np.array([2.70]), dsg_on=True)
    add(s, 11, current_A=1.0, cell_v_V=np.array([2.69]), dsg_on=True)
    add(s, 12, current_A=0.0, cell_v_V=np.array([2.9]), dsg_on=False)
    assert s.summary()["protection_latency_s"] == {"UV": 2.0}


def test_a_voltage_crossing_under_the_bms_limit_is_not_a_protection_latency() -> None:
    """A load held to the DCL at v_min passes it a little: the limit is at work, no
    protection failed to open. The same under a load that ignores the DCL starts the timer
    until DSG opens; a dip that ends by itself is none; the temperature check is no voltage
    crossing and keeps its timer."""
    held = Scorer(LIMITS)
    add(held, 10, current_A=1.0, cell_v_V=np.array([2.73]), limited=True)
    add(held, 11, current_A=0.8, cell_v_V=np.array([2.745]), limited=True)
    add(held, 12, current_A=0.7, cell_v_V=np.array([2.745]), limited=True, dsg_on=False)
    out = held.summary()
    assert out["protection_latency_s"] == {} and out["protection_never_opened"] == []
    free = Scorer(LIMITS)
    add(free, 10, current_A=1.0, cell_v_V=np.array([2.73]))
    add(free, 11, current_A=1.0, cell_v_V=np.array([2.72]), dsg_on=False)
    assert free.summary()["protection_latency_s"] == {"UV": 1.0}
    # a dip at a pulse's first sample that the next sample's lower current ends (the DCL
    # took the sample before as its base): no protection was needed
    dip = Scorer(LIMITS)
    add(dip, 10, current_A=2.0, cell_v_V=np.array([2.73]))
    add(dip, 11, current_A=1.5, cell_v_V=np.array([2.745]), limited=True)
    add(dip, 12, current_A=1.5, cell_v_V=np.array([2.745]), limited=True, dsg_on=False)
    out = dip.summary()
    assert out["protection_latency_s"] == {} and out["protection_never_opened"] == []
    cold = Scorer(LIMITS)
    add(cold, 1, current_A=-1.0, cell_temp_degC=np.array([-5.0]), limited=True)
    assert cold.summary()["protection_never_opened"] == ["TEMP_CHG"]


def test_latency_never_opened_is_reported() -> None:
    s = Scorer(LIMITS)
    add(s, 1, current_A=-1.0, cell_temp_degC=np.array([-5.0]))
    assert s.summary()["protection_never_opened"] == ["TEMP_CHG"]
