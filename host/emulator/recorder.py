"""What a run records per sample, and its scores, from one place.

Per sample the loop hands the PlantStep (the truth after the step and the reading the
firmware got), the gates the plant now applies and the firmware's reply; the recorder
stores them as one row of the run log (host.report.log) and, for each reply, what the
expectations will look at. Everything that judges the run (safety, SOC error, estimate
quality, availability, expectations) is computed once over the whole arrays in
`finish()`, so the loop pays a few array stores per sample. The recorder keeps the
firmware's latest reply (its beliefs): a sample without a reply (link down, lost frame) is
logged and scored against the last estimate the host has. Current is positive on discharge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cellmodel.design import CellDesign
from host.emulator.expectations import ExpectationChecker
from host.emulator.plant import Gates, PlantStep
from host.estimate_scoring import Availability, EstimateQuality, SampleTruth
from host.firmware_config import firmware_rules
from host.protocol.codec import State
from host.report.log import RunLog
from host.scenarios.steps import Expectation, Observation
from host.scoring import CellLimits, Samples, Scorer, soc_error_pct


@dataclass(frozen=True)
class _Reply:
    """What an observation needs of a reply: its time, the reply, where the truth then is
    logged, and how many estimated samples the run had by then (for the RMS error and the
    rest so far)."""

    t_s: float
    state: State
    row: int  # the log row holding the truth at the reply
    capacity_true_Ah: float
    scored: int


class Recorder:
    def __init__(
        self,
        design: CellDesign,
        *,
        nameplate_Ah: float,
        whole_run: Sequence[tuple[int, Expectation]] = (),
    ) -> None:
        """`design`: the simulated cell (its limits are the safety limits); `nameplate_Ah`: the
        capacity C-rates refer to; `whole_run`: expectations judged over the whole run."""
        limits = CellLimits.from_design(design)
        self.scorer = Scorer(limits)
        self.quality = EstimateQuality(nameplate_Ah, limits.v_max_V, design.limits.cv_cutoff_C)
        self.availability = Availability(
            limits.v_min_V,
            limits.discharge_temp_min_degC,
            limits.discharge_temp_max_degC,
            # the firmware's default: a board configured to wait longer pays for it here
            sensor_release_s=firmware_rules().DEFAULTS["release_delay_ms"] / 1000.0,
        )
        self.checker = ExpectationChecker(whole_run)
        self.log = RunLog(design.n_series)
        self.last_reply: State | None = None
        self.beliefs: dict[str, Any] = {}
        # In order: ("reply", _Reply) and ("expect", index, step), replayed in finish().
        self._events: list[tuple[Any, ...]] = []
        self._scored = 0

    def expect(self, index: int, step: Expectation) -> None:
        """An expectation reached in the scenario: judged from the replies up to here on."""
        self._events.append(("expect", index, step))

    def reply(self, t_s: float, reply: State, capacity_true_Ah: float, *, logged: bool) -> None:
        """A reply that is not a sample's (the state read when the link comes back): judged
        against the truth of the latest step, already logged or the next row to be."""
        self.last_reply = reply
        row = len(self.log) - 1 if logged else len(self.log)
        self._note_reply(t_s, reply, row, capacity_true_Ah)

    def sample(
        self,
        t_s: float,
        place: tuple[int, int, float],
        ps: PlantStep,
        gates: Gates,
        reply: State | None,
        *,
        link_up: bool,
        capacity_true_Ah: float,
    ) -> None:
        """One sample: place (step index, cycle, ambient degC), ps the plant's, gates after
        the reply, reply None when none came."""
        if reply is not None:
            self.last_reply = reply
        last = self.last_reply
        if last is not None:
            self._scored += 1
            if reply is not None:
                self._note_reply(t_s, reply, len(self.log), capacity_true_Ah)
        self._log(t_s, place, ps, gates, last, link_up and reply is not None)

    def _note_reply(self, t_s: float, reply: State, row: int, cap_Ah: float) -> None:
        self._events.append(("reply", _Reply(t_s, reply, row, cap_Ah, self._scored)))

    def _log(
        self,
        t_s: float,
        place: tuple[int, int, float],
        ps: PlantStep,
        gates: Gates,
        st: State | None,
        link_ok: bool,
    ) -> None:
        """One row of the log, in COLUMNS + EXTRA order; the per-cell aggregates (mean SOC,
        hottest cell, ...) are filled in by finish(). place: (step, cycle, ambient)."""
        truth = ps.truth
        nan = float("nan")
        step, cycle, ambient_degC = place
        self.log.append(
            (
                t_s, step, ps.demand_A, ps.applied_A, truth.pack_v_V,
                nan, nan, nan, nan, nan, nan,
                ps.reading.current_mA,
                st.soc_pct if st else nan,
                st.soc_unc_pct if st else nan,
                st.capacity_mAh if st else 0,
                st.anode_util_mAh_g if st else nan,
                st.current_mA if st else 0,
                gates.chg_on, gates.dsg_on,
                st.fault_bits if st else 0,
                st.latched_bits if st else 0,
                st.warning_bits if st else 0,
                gates.balance_bits, link_ok, cycle, ambient_degC,
                st.ccl_mA if st else nan,
                st.dcl_mA if st else nan,
                _or_nan(st.anode_potential_mV) if st else nan,
                ps.dt_s, ps.limited, ps.gates.dsg_on, st is not None,
                st is not None and st.cap_learn_count > 0,
                ps.reading.sensor_broken,
            ),
            (
                truth.v_V, truth.soc, truth.temp_degC, truth.anode_util_mAh_g,
                truth.anode_potential_V, truth.h,
            ),
        )  # fmt: skip

    # -- the scores, over the whole run -------------------------------------------------
    def finish(self, t_end_s: float) -> None:
        """Aggregate the log's per-cell columns and judge the run: safety and SOC error
        (scorer), estimate quality and availability (beliefs), expectations (checker)."""
        log = self.log
        soc = log.cells("soc")
        log.set_column("soc_true", np.mean(soc, axis=1))
        log.set_column("soc_min_true", np.min(soc, axis=1))
        log.set_column("temp_max_degC", np.max(log.cells("temp_degC"), axis=1))
        log.set_column("anode_util_max_mAh_g", np.max(log.cells("anode_util_mAh_g"), axis=1))
        log.set_column("anode_potential_min_V", np.min(log.cells("anode_potential_V"), axis=1))
        log.set_column("h_mean", np.mean(log.cells("h"), axis=1))
        est = log.column("has_estimate") > 0
        truth = self._truth(est)
        self.scorer.extend(self._scored_samples(est))
        err = soc_error_pct(log.column("fw_soc_pct")[est], log.column("soc_true")[est])
        self.beliefs = {
            **self.quality.summary(
                truth,
                err,
                log.column("fw_soc_unc_pct")[est],
                log.column("fw_cap_learned")[est] > 0,
            ),
            **self.availability.summary(
                self._truth(slice(None)),
                log.column("gated_dsg_on") > 0,
                log.column("limited") > 0,
            ),
        }
        self._replay_expectations(self.quality.rested(truth))
        self.checker.finish(t_end_s)

    def _truth(self, rows: Any) -> SampleTruth:
        log = self.log
        return SampleTruth(
            t_s=log.column("t_s")[rows],
            dt_s=log.column("dt_s")[rows],
            demand_A=log.column("demand_A")[rows],
            current_A=log.column("current_A")[rows],
            cell_soc=log.cells("soc")[rows],
            cell_v_V=log.cells("v_V")[rows],
            cell_temp_degC=log.cells("temp_degC")[rows],
            sensor_broken=log.column("sensor_broken")[rows] > 0,
        )

    def _scored_samples(self, est: Any) -> Samples:
        log = self.log
        return Samples(
            t_s=log.column("t_s")[est],
            current_A=log.column("current_A")[est],
            cell_v_V=log.cells("v_V")[est],
            soc_true=log.column("soc_true")[est],
            soc_est_pct=log.column("fw_soc_pct")[est],
            cell_temp_degC=log.cells("temp_degC")[est],
            anode_util_mAh_g=log.cells("anode_util_mAh_g")[est],
            anode_potential_V=log.cells("anode_potential_V")[est],
            chg_on=log.column("chg_on")[est] > 0,
            dsg_on=log.column("dsg_on")[est] > 0,
            limited=log.column("limited")[est] > 0,
        )

    def _replay_expectations(self, rested: Any) -> None:
        """The expectations against the replies in the order they happened."""
        rmse = self.scorer.running_soc_rmse_pct()
        soc_true = self.log.column("soc_true")
        latest: Observation | None = None
        for event in self._events:
            if event[0] == "expect":
                self.checker.add(event[1], event[2], latest)
                continue
            r: _Reply = event[1]
            latest = _observation(r, float(soc_true[r.row]), rmse, rested)
            self.checker.observe(latest)


def _observation(r: _Reply, soc_true: float, rmse: Any, rested: Any) -> Observation:
    st = r.state
    cap_err = None
    if st.capacity_mAh:
        true_mAh = r.capacity_true_Ah * 1000.0
        cap_err = (st.capacity_mAh - true_mAh) / true_mAh * 100.0
    k = r.scored - 1  # the estimated samples so far, this one included
    return Observation(
        t_s=r.t_s,
        chg_on=st.chg_on,
        dsg_on=st.dsg_on,
        faults=st.fault_bits,
        soc_error_pct=soc_error_pct(st.soc_pct, soc_true),
        soc_rmse_pct=float(rmse[k]) if k >= 0 else 0.0,
        capacity_error_pct=cap_err,
        rested=bool(rested[k]) if k >= 0 else False,
    )


def _or_nan(v: float | None) -> float:
    return float("nan") if v is None else float(v)
