"""Score a closed-loop run: SOC error, capacity learning, safety and protection latency.

Pure bookkeeping over the run's samples, no I/O, computed once over whole arrays when the
run is scored (so the loop pays nothing per sample for it). `Scorer.extend(Samples)` takes
the run at once; `Scorer.add` one sample (tests). Current is positive on discharge.

Safety: the true state must never leave the cell's limits by more than the
tolerances below (the firmware sees noisy, quantized sensors and debounces its
protections, so an exact limit cannot be demanded). Temperature limits apply
only while current flows in the direction they restrict. Latency is measured
from the first sample at which the true state crosses a limit while current
flows towards it to the first reply with the blocking switch open.

Sums run in sample order (np.cumsum, not pairwise): the figures equal a running
per-sample accumulation to the last bit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Below this true SOC the "near empty" error statistics apply.
NEAR_EMPTY_SOC = 0.20
# Current magnitude that counts as "flowing" for temperature limits and latency.
FLOW_A = 0.01
# A discharge step ends at v_min itself; only a clear undershoot starts a latency timer.
LATENCY_V_MARGIN_V = 0.010


def soc_error_pct(soc_est_pct: Any, soc_true: Any) -> Any:
    """The firmware's SOC error in percent of capacity: its estimate (%) against the truth
    (0..1), for numbers or arrays. The one formula: scoring and expectations both use it."""
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
class Latency:
    kind: str
    switch: str
    t_cross_s: float
    t_open_s: float | None = None


@dataclass(frozen=True)
class Samples:
    """A run's scored samples: one row per sample, per-cell arrays of shape (samples, cells).

    Each row holds the true state after a step (the current that flowed in it) and the
    firmware's latest estimate and switch decision in reply to it."""

    t_s: NDArray[np.float64]
    current_A: NDArray[np.float64]
    cell_v_V: NDArray[np.float64]
    soc_true: NDArray[np.float64]
    soc_est_pct: NDArray[np.float64]
    cell_temp_degC: NDArray[np.float64]
    anode_util_mAh_g: NDArray[np.float64]
    anode_potential_V: NDArray[np.float64]
    chg_on: NDArray[np.bool_]
    dsg_on: NDArray[np.bool_]
    # the charger or load was held to the BMS's CCL or DCL in this sample (None: never)
    limited: NDArray[np.bool_] | None = None

    @classmethod
    def from_rows(cls, rows: list[dict[str, Any]]) -> Samples:
        def col(name: str, dtype: Any = float) -> Any:
            return np.array([r[name] for r in rows], dtype=dtype)

        def cells(name: str) -> Any:
            return np.array([np.atleast_1d(r[name]) for r in rows], dtype=float)

        return cls(
            t_s=col("t_s"),
            current_A=col("current_A"),
            cell_v_V=cells("cell_v_V"),
            soc_true=col("soc_true"),
            soc_est_pct=col("soc_est_pct"),
            cell_temp_degC=cells("cell_temp_degC"),
            anode_util_mAh_g=cells("anode_util_mAh_g"),
            anode_potential_V=cells("anode_potential_V"),
            chg_on=col("chg_on", bool),
            dsg_on=col("dsg_on", bool),
            limited=np.array([r.get("limited", False) for r in rows], dtype=bool),
        )


@dataclass
class Scorer:
    limits: CellLimits
    tolerances: Tolerances = field(default_factory=Tolerances)
    max_violations_kept: int = 20

    def __post_init__(self) -> None:
        self._rows: list[dict[str, Any]] = []
        self._samples: Samples | None = None

    # -- input -------------------------------------------------------------------------
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
        limited: bool = False,
    ) -> None:
        """One sample: true state after the step (current that flowed in it) and the reply to it
        (limited: the charger or load was held to the BMS's CCL or DCL)."""
        row = dict(locals())
        del row["self"]
        self._rows.append(row)
        self._samples = None
        self.__dict__.pop("_result", None)

    def extend(self, samples: Samples) -> None:
        """The whole run at once (the rows added one by one before come first)."""
        if self._rows:
            raise ValueError("extend() takes the whole run; do not mix it with add()")
        self._samples = samples
        self.__dict__.pop("_result", None)

    @property
    def data(self) -> Samples:
        if self._samples is None:
            self._samples = Samples.from_rows(self._rows)
        return self._samples

    # -- results -----------------------------------------------------------------------
    @cached_property
    def _result(self) -> _Result:
        return _Result.compute(self.data, self.limits, self.tolerances, self.max_violations_kept)

    @property
    def soc_rmse_pct(self) -> float:
        return self._result.soc_rmse_pct

    @property
    def soc_max_error_pct(self) -> float:
        return self._result.max_err

    @property
    def samples(self) -> int:
        return int(self.data.t_s.size)

    @property
    def violations(self) -> list[Violation]:
        return self._result.violations

    @property
    def latencies(self) -> list[Latency]:
        return self._result.latencies

    def running_soc_rmse_pct(self) -> NDArray[np.float64]:
        """The RMS SOC error of the run so far, at each sample."""
        sq = self._result.sq_cum
        return np.sqrt(sq / np.arange(1, sq.size + 1))

    def summary(
        self, *, capacity_est_Ah: float | None = None, capacity_true_Ah: float | None = None
    ) -> dict[str, Any]:
        r = self._result
        lat_by_kind: dict[str, float] = {}
        for lat in r.latencies:
            if lat.t_open_s is not None:
                delay = lat.t_open_s - lat.t_cross_s
                lat_by_kind[lat.kind] = max(lat_by_kind.get(lat.kind, 0.0), delay)
        cap_err = None
        if capacity_est_Ah is not None and capacity_true_Ah:
            cap_err = (capacity_est_Ah - capacity_true_Ah) / capacity_true_Ah * 100.0
        n = self.samples
        return {
            "soc_rmse_pct": round(r.soc_rmse_pct, 4),
            "soc_max_error_pct": round(r.max_err, 4),
            "soc_max_error_t_s": round(r.max_err_t, 3),
            "soc_near_empty_rmse_pct": None if r.empty_rmse is None else round(r.empty_rmse, 4),
            "soc_near_empty_max_error_pct": None if r.empty_max is None else round(r.empty_max, 4),
            "near_empty_soc_below": NEAR_EMPTY_SOC,
            "capacity_est_Ah": None if capacity_est_Ah is None else round(capacity_est_Ah, 4),
            "capacity_true_Ah": None if capacity_true_Ah is None else round(capacity_true_Ah, 4),
            "capacity_error_pct": None if cap_err is None else round(cap_err, 3),
            "anode_util_min_mAh_g": round(r.util_min, 2) if n else None,
            "anode_util_max_mAh_g": round(r.util_max, 2) if n else None,
            "anode_util_max_t_s": round(r.util_max_t, 3) if n else None,
            "anode_potential_lowest_V": round(r.phi_min, 5) if n else None,
            "anode_potential_lowest_t_s": round(r.phi_min_t, 3) if n else None,
            # the same as margins to the limits, comparable across cells and limits
            "anode_potential_margin_mV": (
                round((r.phi_min - self.limits.anode_potential_min_V) * 1000.0, 2) if n else None
            ),
            "anode_util_margin_pct": (
                round((1.0 - r.util_max / self.limits.window_top_mAh_g) * 100.0, 3) if n else None
            ),
            "violations": [v.describe() for v in r.violations],
            "violation_counts": dict(r.counts),
            "tolerances": asdict(self.tolerances),
            "limits": asdict(self.limits),
            "protection_latency_s": {k: round(v, 3) for k, v in sorted(lat_by_kind.items())},
            "protection_never_opened": r.never_opened,
        }

    @property
    def safe(self) -> bool:
        return not self._result.counts


@dataclass
class _Result:
    soc_rmse_pct: float
    sq_cum: NDArray[np.float64]
    max_err: float
    max_err_t: float
    empty_rmse: float | None
    empty_max: float | None
    util_min: float
    # the closest approach to the anode's limits: the fullest cell's utilization and the
    # lowest cell's anode potential over the run, with when (the margin a run kept, where
    # "no violation" says only that it was not crossed)
    util_max: float
    util_max_t: float
    phi_min: float
    phi_min_t: float
    violations: list[Violation]
    counts: dict[str, int]
    latencies: list[Latency]
    never_opened: list[str]

    @classmethod
    def compute(cls, s: Samples, lim: CellLimits, tol: Tolerances, keep: int) -> _Result:
        n = s.t_s.size
        err = soc_error_pct(s.soc_est_pct, s.soc_true)
        sq = err * err
        sq_cum = np.cumsum(sq)
        rmse = math.sqrt(sq_cum[-1] / n) if n else 0.0
        k = int(np.argmax(err)) if n else 0
        max_err, max_t = (float(err[k]), float(s.t_s[k])) if n and err[k] > 0 else (0.0, 0.0)
        empty = s.soc_true < NEAR_EMPTY_SOC
        empty_rmse = empty_max = None
        if np.any(empty):
            e_sq = np.cumsum(sq[empty])
            empty_rmse = math.sqrt(e_sq[-1] / e_sq.size)
            empty_max = max(0.0, float(np.max(err[empty])))
        candidates = _limit_candidates(s, lim, tol) + _temperature_candidates(s, lim, tol)
        violations, counts = _record(candidates, keep)
        latencies, never = _latencies(s, lim, tol)
        util_min = float(np.min(s.anode_util_mAh_g)) if n else float("inf")
        util_max = phi_min = util_max_t = phi_min_t = float("nan")
        if n:
            u = np.max(s.anode_util_mAh_g, axis=1)
            phi = np.min(s.anode_potential_V, axis=1)
            i, j = int(np.argmax(u)), int(np.argmin(phi))
            util_max, util_max_t = float(u[i]), float(s.t_s[i])
            phi_min, phi_min_t = float(phi[j]), float(s.t_s[j])
        return cls(
            rmse, sq_cum, max_err, max_t, empty_rmse, empty_max, util_min,
            util_max, util_max_t, phi_min, phi_min_t, violations, counts, latencies, never,
        )  # fmt: skip


# A candidate violation: (sample, order of its check within the sample, Violation).
_Candidate = tuple[int, int, Violation]


def _limit_candidates(s: Samples, lim: CellLimits, tol: Tolerances) -> list[_Candidate]:
    """Cell voltage, anode window and anode potential beyond their limits plus tolerance."""
    util_tol = lim.window_top_mAh_g * tol.anode_util_pct / 100.0
    checks = [
        ("cell_over_voltage", s.cell_v_V, lim.v_max_V, tol.v_over_V, "V", True),
        ("cell_under_voltage", s.cell_v_V, lim.v_min_V, tol.v_under_V, "V", False),
        ("anode_window_top", s.anode_util_mAh_g, lim.window_top_mAh_g, util_tol, "mAh/g", True),
        ("anode_potential", s.anode_potential_V, lim.anode_potential_min_V,
         tol.anode_potential_V, "V", False),
    ]  # fmt: skip
    out: list[_Candidate] = []
    for order, (kind, values, limit, tolerance, unit, upper) in enumerate(checks):
        if values.size == 0:
            continue
        idx = np.argmax(values, axis=1) if upper else np.argmin(values, axis=1)
        worst = values[np.arange(values.shape[0]), idx]
        bad = worst > limit + tolerance if upper else worst < limit - tolerance
        for i in np.flatnonzero(bad):
            v = Violation(kind, int(idx[i]) + 1, float(s.t_s[i]), float(worst[i]), limit,
                          tolerance, unit)  # fmt: skip
            out.append((int(i), order, v))
    return out


def _temperature_candidates(s: Samples, lim: CellLimits, tol: Tolerances) -> list[_Candidate]:
    """A temperature beyond a limit while current flows its way, for longer than the grace."""
    out: list[_Candidate] = []
    temps = s.cell_temp_degC
    if temps.size == 0:
        return out
    hot, cold = np.argmax(temps, axis=1), np.argmin(temps, axis=1)
    rows = np.arange(temps.shape[0])
    t_hot, t_cold = temps[rows, hot], temps[rows, cold]
    directions = [
        ("charge_temp", s.current_A < -FLOW_A, lim.charge_temp_min_degC, lim.charge_temp_max_degC),
        ("discharge_temp", s.current_A > FLOW_A, lim.discharge_temp_min_degC,
         lim.discharge_temp_max_degC),
    ]  # fmt: skip
    for order, (kind, flowing, lo, hi) in enumerate(directions, start=4):
        too_hot = t_hot > hi + tol.temp_degC
        too_cold = ~too_hot & (t_cold < lo - tol.temp_degC)
        bad = flowing & (too_hot | too_cold)
        for start, stop in _runs(bad):
            since = s.t_s[start]
            for i in range(start, stop):
                if s.t_s[i] - since > tol.temp_grace_s:
                    idx, value, limit = (
                        (hot[i], t_hot[i], hi) if too_hot[i] else (cold[i], t_cold[i], lo)
                    )
                    v = Violation(kind, int(idx) + 1, float(s.t_s[i]), float(value), limit,
                                  tol.temp_degC, "degC")  # fmt: skip
                    out.append((i, order, v))
    return out


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in `mask`."""
    if not mask.size:
        return []
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()
    return list(zip(starts, stops, strict=True))


def _record(candidates: list[_Candidate], keep: int) -> tuple[list[Violation], dict[str, int]]:
    """Counts per kind, and the first violation of each kind and cell (at most `keep`), in
    the order they happened."""
    counts: dict[str, int] = {}
    kept: list[Violation] = []
    for _, _, v in sorted(candidates, key=lambda c: (c[0], c[1])):
        counts[v.kind] = counts.get(v.kind, 0) + 1
        if len(kept) < keep and not any(o.kind == v.kind and o.cell == v.cell for o in kept):
            kept.append(v)
    return kept, counts


def _latencies(s: Samples, lim: CellLimits, tol: Tolerances) -> tuple[list[Latency], list[str]]:
    """From each crossing with current flowing towards a limit to the blocking switch opening
    while the excursion lasts; one that ends first (a step that ended, a limit that pulled
    the current back) needed no protection, and one that lasts to the end of the run without
    it is a protection that never opened.
    Half a tolerance of margin on v_max, so a charger holding exactly v_max is no crossing.
    A voltage crossing while the charger or load was held to the BMS's CCL or DCL is no
    crossing either: the limit is at work there (it aims at the voltage limit, and a step's
    first sample may pass it), not a protection that failed to open; how far the cell went
    is the violation check's to judge."""
    if s.t_s.size == 0:
        return [], []
    charging, discharging = s.current_A < -FLOW_A, s.current_A > FLOW_A
    free = np.ones(s.t_s.size, dtype=bool) if s.limited is None else ~s.limited
    v_hi, v_lo = np.max(s.cell_v_V, axis=1), np.min(s.cell_v_V, axis=1)
    t_hi, t_lo = np.max(s.cell_temp_degC, axis=1), np.min(s.cell_temp_degC, axis=1)
    util_hi = np.max(s.anode_util_mAh_g, axis=1)
    cold_hot_chg = (t_lo < lim.charge_temp_min_degC) | (t_hi > lim.charge_temp_max_degC)
    cold_hot_dsg = (t_lo < lim.discharge_temp_min_degC) | (t_hi > lim.discharge_temp_max_degC)
    checks = [
        ("OV", "CHG", charging & free & (v_hi > lim.v_max_V + tol.v_over_V / 2), s.chg_on),
        ("UV", "DSG", discharging & free & (v_lo < lim.v_min_V - LATENCY_V_MARGIN_V), s.dsg_on),
        ("WIN_TOP", "CHG", charging & (util_hi >= lim.window_top_mAh_g), s.chg_on),
        ("TEMP_CHG", "CHG", charging & cold_hot_chg, s.chg_on),
        ("TEMP_DSG", "DSG", discharging & cold_hot_dsg, s.dsg_on),
    ]
    done: list[tuple[int, int, Latency]] = []
    never: set[str] = set()
    for order, (kind, switch, crossed, switch_on) in enumerate(checks):
        off = np.flatnonzero(~switch_on)
        i = 0
        while True:
            later = np.flatnonzero(crossed[i:])
            if not later.size:
                break
            c = i + int(later[0])
            if not switch_on[c]:  # opened in the same reply: zero latency after this sample
                done.append((c, order, Latency(kind, switch, float(s.t_s[c]), float(s.t_s[c]))))
                i = c + 1
                continue
            ended = np.flatnonzero(~crossed[c:])
            e = c + int(ended[0]) if ended.size else crossed.size  # the excursion's end
            k = int(np.searchsorted(off, c + 1))
            if k < off.size and int(off[k]) <= e:
                j = int(off[k])
                done.append((j, order, Latency(kind, switch, float(s.t_s[c]), float(s.t_s[j]))))
                i = j + 1
            elif e < crossed.size:  # it ended without the switch (a step ended, a limit)
                i = e
            else:
                never.add(kind)
                break
    return [lat for _, _, lat in sorted(done, key=lambda d: (d[0], d[1]))], sorted(never)
