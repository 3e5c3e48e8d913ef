"""Scores of the firmware's beliefs and availability over the whole run (pure, no I/O).

Two questions the safety score (host.scoring) does not answer:

- Is the firmware honest about what it does not know? `uncertainty_coverage_pct` is the
  share of replies whose reported SOC uncertainty covers the true SOC error. And how wrong
  is it once it had a chance to know better? `soc_max_error_after_calibration_pct` is the
  largest error within CALIBRATION_HORIZON_S after a calibration opportunity: a rest of
  CALIBRATION_REST_S (true current at most C/50) or a full charge (the highest cell within
  FULL_BAND_V of v_max while the charge current has tapered to the CV cut-off).
- Does it keep the pack available? `discharge_blocked_s` is the time DSG was open while a
  discharge was asked for, every cell held more than BLOCK_SOC of true charge and nothing
  true called for it (cell voltages above v_min, temperatures inside the discharge range).

Current is positive on discharge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

CALIBRATION_REST_S = 1800.0
CALIBRATION_HORIZON_S = 8 * 3600.0
FULL_BAND_V = 0.015
BLOCK_SOC = 0.05


@dataclass(frozen=True)
class SampleTruth:
    """The truth of one sample that these scores need (per-cell arrays)."""

    t_s: float
    dt_s: float
    demand_A: float
    current_A: float
    cell_soc: NDArray[np.float64]
    cell_v_V: NDArray[np.float64]
    cell_temp_degC: NDArray[np.float64]


class EstimateQuality:
    """Coverage of the reported uncertainty and the error after calibration opportunities."""

    def __init__(self, nameplate_Ah: float, v_max_V: float, cv_cutoff_C: float) -> None:
        self.rest_current_A = nameplate_Ah / 50.0
        self.taper_current_A = nameplate_Ah * cv_cutoff_C
        self.v_max_V = v_max_V
        self._rest_s = 0.0
        self.rested = False  # the run's first calibration rest has happened
        self._last_cal_s: float | None = None
        self._replies = 0
        self._covered = 0
        self._judged = 0
        self._max_err = 0.0
        self._max_err_t: float | None = None

    def add(self, truth: SampleTruth, err_pct: float, unc_pct: float | None) -> None:
        """One sample that has a firmware estimate: its error and its reported uncertainty."""
        self._track_calibration(truth)
        if unc_pct is not None and np.isfinite(unc_pct):
            self._replies += 1
            # A reported uncertainty is only worth its coverage: equality counts as covered
            # (both are rounded to the protocol's 0.01 %).
            self._covered += err_pct <= unc_pct + 1e-9
        if self._last_cal_s is not None and truth.t_s - self._last_cal_s <= CALIBRATION_HORIZON_S:
            self._judged += 1
            if err_pct > self._max_err:
                self._max_err, self._max_err_t = err_pct, truth.t_s

    def _track_calibration(self, truth: SampleTruth) -> None:
        if abs(truth.current_A) <= self.rest_current_A:
            self._rest_s += truth.dt_s
            if self._rest_s >= CALIBRATION_REST_S:
                self._last_cal_s = truth.t_s
                self.rested = True
        else:
            self._rest_s = 0.0
        full = float(np.max(truth.cell_v_V)) >= self.v_max_V - FULL_BAND_V
        if full and -self.taper_current_A <= truth.current_A < 0.0:
            self._last_cal_s = truth.t_s

    def summary(self) -> dict[str, Any]:
        return {
            "uncertainty_coverage_pct": (
                round(100.0 * self._covered / self._replies, 3) if self._replies else None
            ),
            "soc_max_error_after_calibration_pct": (
                round(self._max_err, 4) if self._judged else None
            ),
            "soc_max_error_after_calibration_t_s": (
                None if self._max_err_t is None else round(self._max_err_t, 3)
            ),
            "samples_after_calibration": self._judged,
        }


class Availability:
    """How long the firmware kept discharge blocked without a true reason, and how long the
    charger and the load were held to its current limits."""

    def __init__(self, v_min_V: float, temp_min_degC: float, temp_max_degC: float) -> None:
        self.v_min_V = v_min_V
        self.temp_min_degC = temp_min_degC
        self.temp_max_degC = temp_max_degC
        self.blocked_s = 0.0
        self.first_blocked_t_s: float | None = None
        self.charge_limited_s = 0.0
        self.discharge_limited_s = 0.0

    def add(self, truth: SampleTruth, dsg_on: bool, limited: bool = False) -> None:
        """dsg_on: the switch as it gated this sample's current; limited: the charger or load
        was held to the BMS's limit in it."""
        if limited:
            if truth.demand_A < 0.0:
                self.charge_limited_s += truth.dt_s
            else:
                self.discharge_limited_s += truth.dt_s
        if dsg_on or truth.demand_A <= 0.0:
            return
        warranted = (
            float(np.min(truth.cell_soc)) <= BLOCK_SOC
            or float(np.min(truth.cell_v_V)) <= self.v_min_V
            or float(np.min(truth.cell_temp_degC)) < self.temp_min_degC
            or float(np.max(truth.cell_temp_degC)) > self.temp_max_degC
        )
        if warranted:
            return
        self.blocked_s += truth.dt_s
        if self.first_blocked_t_s is None:
            self.first_blocked_t_s = truth.t_s

    def summary(self) -> dict[str, Any]:
        return {
            "discharge_blocked_s": round(self.blocked_s, 3),
            "discharge_blocked_first_t_s": self.first_blocked_t_s,
            "discharge_blocked_soc_above": BLOCK_SOC,
            "charge_limited_s": round(self.charge_limited_s, 3),
            "discharge_limited_s": round(self.discharge_limited_s, 3),
        }
