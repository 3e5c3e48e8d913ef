"""Scores of the firmware's beliefs and availability over the whole run (pure, no I/O).

Two questions the safety score (host.scoring) does not answer:

- Is the firmware honest about what it does not know? `uncertainty_coverage_pct` is the
  share of replies whose reported SOC uncertainty covers the true SOC error. And how wrong
  is it once it had a chance to know better? `soc_max_error_after_calibration_pct` is the
  largest error within CALIBRATION_HORIZON_S after a calibration opportunity: a rest of
  CALIBRATION_REST_S (true current at most C/50) or a full charge (the highest cell within
  FULL_BAND_V of v_max while the charge current has tapered to the CV cut-off).
  `soc_max_error_after_learning_pct` is the same over the samples from the firmware's
  first learned capacity on (a diagnostic, not a requirement: it tells an error the count's
  unknown capacity caused before anything could teach it from one that stays after).
- Does it keep the pack available? `discharge_blocked_s` is the time DSG was open while a
  discharge was asked for, every cell held more than BLOCK_SOC of true charge and nothing
  true called for it (cell voltages above v_min, temperatures inside the discharge range,
  no sensor channel broken by an injected fault now or in its repair's grace: up to the
  SENSOR_REPAIR_SAMPLES-th sample after it plus the BMS's release delay);
  `charge_limited_s` / `discharge_limited_s` how long the charger or load was held to the
  BMS's current limits.

Computed over whole arrays after the run; durations summed in sample order. Current is
positive on discharge.
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
# After a broken sensor channel is repaired, the BMS must first see readings it can trust
# again (the first sample after the repair, and one more: a stuck reading is cleared by a
# change from one sample to the next) and then wait out its release delay before it closes
# a switch: a block up to then is the fault's, not the estimator's. Counted in samples, not
# seconds, so a scenario sampled every 10 s (the slowest the firmware counts) gets the same
# two readings as one sampled every second.
SENSOR_REPAIR_SAMPLES = 2


@dataclass(frozen=True)
class SampleTruth:
    """The truth of the samples these scores need (arrays; per-cell ones (samples, cells))."""

    t_s: NDArray[np.float64]
    dt_s: NDArray[np.float64]
    demand_A: NDArray[np.float64]
    current_A: NDArray[np.float64]
    cell_soc: NDArray[np.float64]
    cell_v_V: NDArray[np.float64]
    cell_temp_degC: NDArray[np.float64]
    sensor_broken: NDArray[np.bool_]  # a channel broken by an injected fault


def _sum(values: NDArray[np.float64]) -> float:
    """A sum in sample order (as a running total would give it)."""
    return float(np.cumsum(values)[-1]) if values.size else 0.0


def _within_grace(
    t_s: NDArray[np.float64], flag: NDArray[np.bool_], samples: int, delay_s: float
) -> NDArray[np.bool_]:
    """Samples where `flag` holds, or that come at most delay_s after the `samples`-th
    sample following the last one where it held."""
    n = flag.size
    idx = np.where(flag, np.arange(n), -1)
    last = np.maximum.accumulate(idx)  # the latest flagged sample at or before each
    seen = np.minimum(np.maximum(last, 0) + samples, n - 1)
    return (last >= 0) & (t_s <= t_s[seen] + delay_s)


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()
    return list(zip(starts, stops, strict=True))


class EstimateQuality:
    """Coverage of the reported uncertainty and the error after calibration opportunities,
    over the samples that have a firmware estimate."""

    def __init__(self, nameplate_Ah: float, v_max_V: float, cv_cutoff_C: float) -> None:
        self.rest_current_A = nameplate_Ah / 50.0
        self.taper_current_A = nameplate_Ah * cv_cutoff_C
        self.v_max_V = v_max_V

    def rested(self, truth: SampleTruth) -> NDArray[np.bool_]:
        """Per sample: the run's first calibration rest has happened (at or before it)."""
        return np.logical_or.accumulate(self._rest_done(truth)) if truth.t_s.size else truth.t_s > 0

    def _rest_done(self, truth: SampleTruth) -> NDArray[np.bool_]:
        """Samples at which a rest has lasted CALIBRATION_REST_S (rest time summed in order)."""
        resting = np.abs(truth.current_A) <= self.rest_current_A
        done = np.zeros(truth.t_s.size, dtype=bool)
        for start, stop in _runs(resting):
            done[start:stop] = np.cumsum(truth.dt_s[start:stop]) >= CALIBRATION_REST_S
        return done

    def summary(
        self,
        truth: SampleTruth,
        err_pct: NDArray[np.float64],
        unc_pct: NDArray[np.float64],
        learned: NDArray[np.bool_],
    ) -> dict[str, Any]:
        """err_pct, unc_pct: the firmware's SOC error and reported uncertainty per sample;
        learned: it had learned a capacity by then."""
        full = np.max(truth.cell_v_V, axis=1) >= self.v_max_V - FULL_BAND_V
        tapered = (truth.current_A >= -self.taper_current_A) & (truth.current_A < 0.0)
        calibrated = self._rest_done(truth) | (full & tapered)
        idx = np.arange(truth.t_s.size)
        last_cal = np.maximum.accumulate(np.where(calibrated, idx, -1)) if idx.size else idx
        since_s = truth.t_s - truth.t_s[np.maximum(last_cal, 0)]
        judged = (last_cal >= 0) & (since_s <= CALIBRATION_HORIZON_S)
        reported = np.isfinite(unc_pct)
        # A reported uncertainty is only worth its coverage: equality counts as covered
        # (both are rounded to the protocol's 0.01 %).
        covered = int(np.count_nonzero(err_pct[reported] <= unc_pct[reported] + 1e-9))
        n_reported = int(np.count_nonzero(reported))
        return {
            "uncertainty_coverage_pct": (
                round(100.0 * covered / n_reported, 3) if n_reported else None
            ),
            **_max_error("after_calibration", truth.t_s, err_pct, judged),
            **_max_error("after_learning", truth.t_s, err_pct, judged & learned),
        }


def _max_error(
    name: str, t_s: NDArray[np.float64], err_pct: NDArray[np.float64], judged: NDArray[np.bool_]
) -> dict[str, Any]:
    """The largest error over the judged samples, when it came, and how many were judged."""
    max_err, max_t = 0.0, None
    if np.any(judged):
        k = int(np.argmax(np.where(judged, err_pct, -1.0)))
        if err_pct[k] > 0:
            max_err, max_t = float(err_pct[k]), float(t_s[k])
    n_judged = int(np.count_nonzero(judged))
    return {
        f"soc_max_error_{name}_pct": round(max_err, 4) if n_judged else None,
        f"soc_max_error_{name}_t_s": None if max_t is None else round(max_t, 3),
        f"samples_{name}": n_judged,
    }


class Availability:
    """How long the firmware kept discharge blocked without a true reason, and how long the
    charger and the load were held to its current limits."""

    def __init__(
        self,
        v_min_V: float,
        temp_min_degC: float,
        temp_max_degC: float,
        *,
        sensor_release_s: float,
    ) -> None:
        """sensor_release_s: how long the BMS waits after a sensor fault clears before it
        closes a switch again (its release delay)."""
        self.v_min_V = v_min_V
        self.temp_min_degC = temp_min_degC
        self.temp_max_degC = temp_max_degC
        self.sensor_release_s = sensor_release_s

    def summary(
        self, truth: SampleTruth, dsg_on: NDArray[np.bool_], limited: NDArray[np.bool_]
    ) -> dict[str, Any]:
        """dsg_on: the switch as it gated each sample's current; limited: the charger or
        load was held to the BMS's limit in it."""
        warranted = (
            (np.min(truth.cell_soc, axis=1) <= BLOCK_SOC)
            | (np.min(truth.cell_v_V, axis=1) <= self.v_min_V)
            | (np.min(truth.cell_temp_degC, axis=1) < self.temp_min_degC)
            | (np.max(truth.cell_temp_degC, axis=1) > self.temp_max_degC)
        )
        warranted |= _within_grace(
            truth.t_s, truth.sensor_broken, SENSOR_REPAIR_SAMPLES, self.sensor_release_s
        )
        blocked = ~dsg_on & (truth.demand_A > 0.0) & ~warranted
        first = np.flatnonzero(blocked)
        return {
            "discharge_blocked_s": round(_sum(truth.dt_s[blocked]), 3),
            "discharge_blocked_first_t_s": float(truth.t_s[first[0]]) if first.size else None,
            "discharge_blocked_soc_above": BLOCK_SOC,
            "charge_limited_s": round(_sum(truth.dt_s[limited & (truth.demand_A < 0.0)]), 3),
            "discharge_limited_s": round(_sum(truth.dt_s[limited & (truth.demand_A >= 0.0)]), 3),
        }
