"""Score a closed-loop run: SOC error, capacity learning, safety and protection latency.

Pure bookkeeping, no I/O: the emulator loop calls `Scorer.add` once per sample
with the true state of the cells and the firmware's reply, and `summary()` at
the end. Current is positive on discharge.

Safety: the true state must never leave the cell's limits by more than the
tolerances below (the firmware sees noisy, quantized sensors and debounces its
protections, so an exact limit cannot be demanded). Temperature limits apply
only while current flows in the direction they restrict. Latency is measured
from the first sample at which the true state crosses a limit while current
flows towards it to the first reply with the blocking switch open.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Below this true SOC the "near empty" error statistics apply.
NEAR_EMPTY_SOC = 0.20
# Current magnitude that counts as "flowing" for temperature limits and latency.
FLOW_A = 0.01
# A discharge step ends at v_min itself; only a clear undershoot starts a latency timer.
LATENCY_V_MARGIN_V = 0.010


def soc_error_pct(soc_est_pct: float, soc_true: float) -> float:
    """The firmware's SOC error in percent of capacity: its estimate (%) against the truth
    (0..1). The one formula: scoring and expectations both use it."""
    return abs(soc_est_pct - soc_true * 100.0)


@dataclass(frozen=True)
class Tolerances:
    """How far past a limit the true state may go before a run counts as unsafe."""

    v_over_V: float = 0.030  # above v_max (CC overshoot before the firmware's OV debounce)
    v_under_V: float = 0.150  # below v_min (IR drop of a discharge pulse near empty)
    anode_util_pct: float = 1.0  # above the window top, percent of the window top
    anode_potential_V: float = 0.005  # below the 50 mV lithium-plating / Li15Si4 limit
    temp_degC: float = 1.0  # beyond a charge/discharge temperature limit while current flows
    temp_grace_s: float = 10.0  # allowed time for a temperature protection to open the switch


@dataclass(frozen=True)
class CellLimits:
    v_max_V: float
    v_min_V: float
    window_top_mAh_g: float
    anode_potential_min_V: float
    charge_temp_min_degC: float
    charge_temp_max_degC: float
    discharge_temp_min_degC: float
    discharge_temp_max_degC: float

    @classmethod
    def from_design(cls, design: Any) -> CellLimits:
        lim = design.limits
        return cls(
            v_max_V=lim.v_max_V,
            v_min_V=lim.v_min_V,
            window_top_mAh_g=lim.window_top_mAh_g,
            anode_potential_min_V=lim.anode_potential_min_V,
            charge_temp_min_degC=lim.charge_temp_min_degC,
            charge_temp_max_degC=lim.charge_temp_max_degC,
            discharge_temp_min_degC=lim.discharge_temp_min_degC,
            discharge_temp_max_degC=lim.discharge_temp_max_degC,
        )


@dataclass(frozen=True)
class Violation:
    kind: str
    cell: int  # 1-based
    t_s: float
    value: float
    limit: float
    tolerance: float
    unit: str

    def describe(self) -> str:
        return (
            f"{self.kind} on cell {self.cell} at t={self.t_s:.0f} s: {self.value:.4g} {self.unit} "
            f"(limit {self.limit:.4g} {self.unit}, tolerance {self.tolerance:.4g})"
        )


@dataclass
class _Latency:
    kind: str
    switch: str
    t_cross_s: float
    t_open_s: float | None = None


@dataclass
class Scorer:
    limits: CellLimits
    tolerances: Tolerances = field(default_factory=Tolerances)
    max_violations_kept: int = 20

    def __post_init__(self) -> None:
        self._sq = 0.0
        self._n = 0
        self._max_err = 0.0
        self._max_err_t = 0.0
        self._empty_sq = 0.0
        self._empty_n = 0
        self._empty_max = 0.0
        self._counts: dict[str, int] = {}
        self.violations: list[Violation] = []
        self._open: dict[str, _Latency] = {}
        self.latencies: list[_Latency] = []
        self._temp_bad_since: dict[str, float] = {}
        self.last_soc_error_pct = 0.0
        self._util_min = float("inf")

    # Per sample ---------------------------------------------------------------
    def add(
        self,
        t_s: float,
        *,
        current_A: float,
        cell_v_V: NDArray[np.float64],
        soc_true: float,
        soc_est_pct: float,
        cell_temp_degC: NDArray[np.float64],
        anode_util_mAh_g: NDArray[np.float64],
        anode_potential_V: NDArray[np.float64],
        chg_on: bool,
        dsg_on: bool,
    ) -> None:
        """One sample: true state after the step (current that flowed in it) and the reply to it."""
        err = soc_error_pct(soc_est_pct, soc_true)
        self.last_soc_error_pct = err
        self._sq += err * err
        self._n += 1
        if err > self._max_err:
            self._max_err, self._max_err_t = err, t_s
        if soc_true < NEAR_EMPTY_SOC:
            self._empty_sq += err * err
            self._empty_n += 1
            self._empty_max = max(self._empty_max, err)

        lim, tol = self.limits, self.tolerances
        charging = current_A < -FLOW_A
        discharging = current_A > FLOW_A
        self._check_max("cell_over_voltage", cell_v_V, lim.v_max_V, tol.v_over_V, "V", t_s)
        self._check_min("cell_under_voltage", cell_v_V, lim.v_min_V, tol.v_under_V, "V", t_s)
        util_tol = lim.window_top_mAh_g * tol.anode_util_pct / 100.0
        self._check_max(
            "anode_window_top", anode_util_mAh_g, lim.window_top_mAh_g, util_tol, "mAh/g", t_s
        )
        # No bottom check: the design's limits end discharge by voltage (v_min), not by a
        # window bottom; the lowest utilization is reported in the summary instead.
        self._util_min = min(self._util_min, float(anode_util_mAh_g.min()))
        self._check_min(
            "anode_potential",
            anode_potential_V,
            lim.anode_potential_min_V,
            tol.anode_potential_V,
            "V",
            t_s,
        )
        self._check_temp(
            "charge_temp", charging, cell_temp_degC, lim.charge_temp_min_degC,
            lim.charge_temp_max_degC, t_s,
        )  # fmt: skip
        self._check_temp(
            "discharge_temp", discharging, cell_temp_degC, lim.discharge_temp_min_degC,
            lim.discharge_temp_max_degC, t_s,
        )  # fmt: skip

        # Latency: crossings while current flows towards the limit, until the switch opens.
        # Half a tolerance of margin so a charger holding exactly v_max is not a crossing.
        over = float(cell_v_V.max()) > lim.v_max_V + tol.v_over_V / 2
        under = float(cell_v_V.min()) < lim.v_min_V - LATENCY_V_MARGIN_V
        self._latency("OV", "CHG", charging and over, chg_on, t_s)
        self._latency("UV", "DSG", discharging and under, dsg_on, t_s)
        self._latency(
            "WIN_TOP",
            "CHG",
            charging and float(anode_util_mAh_g.max()) >= lim.window_top_mAh_g,
            chg_on,
            t_s,
        )
        t_max, t_min = float(cell_temp_degC.max()), float(cell_temp_degC.min())
        cold_or_hot_chg = t_min < lim.charge_temp_min_degC or t_max > lim.charge_temp_max_degC
        cold_or_hot_dsg = t_min < lim.discharge_temp_min_degC or t_max > lim.discharge_temp_max_degC
        self._latency("TEMP_CHG", "CHG", charging and cold_or_hot_chg, chg_on, t_s)
        self._latency("TEMP_DSG", "DSG", discharging and cold_or_hot_dsg, dsg_on, t_s)

    def _record(self, v: Violation) -> None:
        self._counts[v.kind] = self._counts.get(v.kind, 0) + 1
        if len(self.violations) < self.max_violations_kept and not any(
            old.kind == v.kind and old.cell == v.cell for old in self.violations
        ):
            self.violations.append(v)

    def _check_max(
        self, kind: str, values: NDArray[np.float64], limit: float, tol: float, unit: str, t: float
    ) -> None:
        idx = int(np.argmax(values))
        if float(values[idx]) > limit + tol:
            self._record(Violation(kind, idx + 1, t, float(values[idx]), limit, tol, unit))

    def _check_min(
        self, kind: str, values: NDArray[np.float64], limit: float, tol: float, unit: str, t: float
    ) -> None:
        idx = int(np.argmin(values))
        if float(values[idx]) < limit - tol:
            self._record(Violation(kind, idx + 1, t, float(values[idx]), limit, tol, unit))

    def _check_temp(
        self,
        kind: str,
        flowing: bool,
        temps: NDArray[np.float64],
        lo: float,
        hi: float,
        t: float,
    ) -> None:
        tol = self.tolerances.temp_degC
        hot, cold = int(np.argmax(temps)), int(np.argmin(temps))
        bad: tuple[int, float, float] | None = None
        if float(temps[hot]) > hi + tol:
            bad = (hot, float(temps[hot]), hi)
        elif float(temps[cold]) < lo - tol:
            bad = (cold, float(temps[cold]), lo)
        if not (flowing and bad):
            self._temp_bad_since.pop(kind, None)
            return
        since = self._temp_bad_since.setdefault(kind, t)
        if t - since > self.tolerances.temp_grace_s:
            idx, value, limit = bad
            self._record(Violation(kind, idx + 1, t, value, limit, tol, "degC"))

    def _latency(self, kind: str, switch: str, crossed: bool, switch_on: bool, t: float) -> None:
        pending = self._open.get(kind)
        if pending is None:
            if crossed:
                if not switch_on:  # opened in the same reply: zero latency after this sample
                    self.latencies.append(_Latency(kind, switch, t, t))
                else:
                    self._open[kind] = _Latency(kind, switch, t)
            return
        if not switch_on:
            pending.t_open_s = t
            self.latencies.append(pending)
            del self._open[kind]

    # Results ------------------------------------------------------------------
    @property
    def soc_rmse_pct(self) -> float:
        return math.sqrt(self._sq / self._n) if self._n else 0.0

    @property
    def soc_max_error_pct(self) -> float:
        return self._max_err

    @property
    def samples(self) -> int:
        return self._n

    def summary(
        self, *, capacity_est_Ah: float | None = None, capacity_true_Ah: float | None = None
    ) -> dict[str, Any]:
        lat_by_kind: dict[str, float] = {}
        for lat in self.latencies:
            if lat.t_open_s is not None:
                delay = lat.t_open_s - lat.t_cross_s
                lat_by_kind[lat.kind] = max(lat_by_kind.get(lat.kind, 0.0), delay)
        never_opened = sorted({lat.kind for lat in self._open.values()})
        cap_err = None
        if capacity_est_Ah is not None and capacity_true_Ah:
            cap_err = (capacity_est_Ah - capacity_true_Ah) / capacity_true_Ah * 100.0
        return {
            "soc_rmse_pct": round(self.soc_rmse_pct, 4),
            "soc_max_error_pct": round(self._max_err, 4),
            "soc_max_error_t_s": round(self._max_err_t, 3),
            "soc_near_empty_rmse_pct": (
                round(math.sqrt(self._empty_sq / self._empty_n), 4) if self._empty_n else None
            ),
            "soc_near_empty_max_error_pct": round(self._empty_max, 4) if self._empty_n else None,
            "near_empty_soc_below": NEAR_EMPTY_SOC,
            "capacity_est_Ah": None if capacity_est_Ah is None else round(capacity_est_Ah, 4),
            "capacity_true_Ah": None if capacity_true_Ah is None else round(capacity_true_Ah, 4),
            "capacity_error_pct": None if cap_err is None else round(cap_err, 3),
            "anode_util_min_mAh_g": round(self._util_min, 2) if self._n else None,
            "violations": [v.describe() for v in self.violations],
            "violation_counts": dict(self._counts),
            "tolerances": asdict(self.tolerances),
            "limits": asdict(self.limits),
            "protection_latency_s": {k: round(v, 3) for k, v in sorted(lat_by_kind.items())},
            "protection_never_opened": never_opened,
        }

    @property
    def safe(self) -> bool:
        return not self._counts
