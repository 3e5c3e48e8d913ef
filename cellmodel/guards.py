"""Physical guard rails: the states the cell model refuses to run into silently.

Like PyBaMM's events, a run stops when a cell leaves what the model describes:

- SOC above 1 + SOC_MARGIN of its usable range (0..1 is the anode window; normal
  cut-offs stop within a few percent of either end), or below the anode's empty point
  (its lithium fraction 0, anode_potential.li_fraction_empty below SOC 0) or -SOC_MARGIN,
  whichever is lower,
- a cell voltage beyond the abuse limits (limits.v_abuse_min_V / v_abuse_max_V),
- a cell temperature above limits.temp_abuse_max_degC,
- a current beyond limits.current_abuse_max_C times the cell's capacity (checked
  on the demand, before it flows: a hold at 1 V would otherwise ask hundreds of A).

PackModel.current_event() and state_event() give a GuardEvent or None; the
runners (cellmodel.simulation, the emulator) end the step and the run with it.
Current is positive on discharge.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cellmodel.design import CellDesign

# Normal use ends within 2 % of either end (the aged cell reaches SOC -1.9 % at its
# 2.75 V cut-off under load); 5 % beyond full is outside what the OCV tables describe.
# Below empty the model runs on to the anode's empty point: a load that keeps to a BMS's
# DCL is held at v_min while its current tapers, and the default cell's OCV (the tables'
# end segment extended) reaches its 2.75 V there at SOC -5.2 %; its anode is empty at
# -7.1 % (lithium fraction 0.05 at SOC 0, 0.75 at 1).
SOC_MARGIN = 0.05


@dataclass(frozen=True)
class GuardEvent:
    """Why a run stopped. cell is 0-based (None for the series current)."""

    kind: str  # "soc_low" | "soc_high" | "voltage_low" | "voltage_high" | "temperature" | "current"
    value: float
    limit: float
    unit: str
    t_s: float
    cell: int | None = None

    @property
    def message(self) -> str:
        what = {
            "soc_low": "SOC below the usable range",
            "soc_high": "SOC above the usable range",
            "voltage_low": "voltage below the abuse limit",
            "voltage_high": "voltage above the abuse limit",
            "temperature": "temperature above the thermal-abuse limit",
            "current": "current beyond the sanity bound",
        }[self.kind]
        who = "series" if self.cell is None else f"cell {self.cell + 1}"
        return (
            f"{who} {what}: {self.value:.4g} {self.unit} (limit {self.limit:.4g} {self.unit}) "
            f"at t={self.t_s:g} s"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "cell": None if self.cell is None else self.cell + 1,
            "value": self.value,
            "limit": self.limit,
            "unit": self.unit,
            "t_s": self.t_s,
            "message": self.message,
        }


@dataclass(frozen=True)
class GuardRails:
    soc_min: float
    soc_max: float
    v_min_V: float
    v_max_V: float
    temp_max_degC: float
    current_max_A: float

    @classmethod
    def for_design(cls, design: CellDesign) -> GuardRails:
        lim = design.limits
        ap = design.anode_potential
        return cls(
            soc_min=min(-SOC_MARGIN, ap.soc_at(0.0)),
            soc_max=1.0 + SOC_MARGIN,
            v_min_V=lim.v_abuse_min_V,
            v_max_V=lim.v_abuse_max_V,
            temp_max_degC=lim.temp_abuse_max_degC,
            current_max_A=lim.current_abuse_max_C * design.capacity_Ah,
        )

    def check_current(self, cell_current_A: np.ndarray | float, t_s: float) -> GuardEvent | None:
        """The event a current would cause (per cell with its bleed, or the series current)."""
        i = np.abs(np.atleast_1d(cell_current_A))
        k = int(np.argmax(i))
        if not i[k] <= self.current_max_A:  # also catches NaN
            cell = k if np.ndim(cell_current_A) else None
            return GuardEvent("current", float(i[k]), self.current_max_A, "A", t_s, cell)
        return None

    def current_within(self, current_A: float, bleed_A: list[float] | None) -> bool:
        """True when check_current would find nothing: a quick check on Python floats for
        small packs. NaN (or +inf with -inf) answers False; check_current then decides."""
        lim = self.current_max_A
        if bleed_A is None:
            return abs(current_A) <= lim
        cells = [current_A + b for b in bleed_A]
        total = sum(cells)
        return -lim <= min(cells) and max(cells) <= lim and total == total

    def state_within(self, soc: list[float], v_V: list[float], temp_degC: list[float]) -> bool:
        """True when check_state would find nothing: a quick check on Python floats for small
        packs. It never says True where check_state finds an event (soc >= soc_min implies
        100 soc >= 100 soc_min under rounding); NaN (or +inf with -inf) answers False."""
        total = sum(soc) + sum(v_V) + sum(temp_degC)
        return (
            self.soc_min <= min(soc)
            and max(soc) <= self.soc_max
            and self.v_min_V <= min(v_V)
            and max(v_V) <= self.v_max_V
            and max(temp_degC) <= self.temp_max_degC
            and total == total
        )

    def check_state(
        self, soc: np.ndarray, v_V: np.ndarray, temp_degC: np.ndarray, t_s: float
    ) -> GuardEvent | None:
        """The first limit the cells' state is beyond, or None."""
        pct = 100.0 * soc
        checks = (
            ("soc_low", pct, 100.0 * self.soc_min, -1.0, "%"),
            ("soc_high", pct, 100.0 * self.soc_max, 1.0, "%"),
            ("voltage_low", v_V, self.v_min_V, -1.0, "V"),
            ("voltage_high", v_V, self.v_max_V, 1.0, "V"),
            ("temperature", temp_degC, self.temp_max_degC, 1.0, "degC"),
        )
        for kind, values, limit, sense, unit in checks:
            beyond = sense * (values - limit)
            k = int(np.argmax(beyond))
            if not beyond[k] <= 0.0:  # also catches NaN
                return GuardEvent(kind, float(values[k]), limit, unit, t_s, k)
        return None

    def first_event(
        self, soc: np.ndarray, v_V: np.ndarray, temp_degC: np.ndarray, t_s: np.ndarray
    ) -> tuple[int, GuardEvent] | None:
        """The first row (and its event) of row-by-cell arrays that is beyond a limit."""
        bad = (
            (soc < self.soc_min)
            | (soc > self.soc_max)
            | (v_V < self.v_min_V)
            | (v_V > self.v_max_V)
            | (temp_degC > self.temp_max_degC)
            | ~np.isfinite(v_V)
        ).any(axis=1)
        if not bad.any():
            return None
        row = int(np.argmax(bad))
        event = self.check_state(soc[row], v_V[row], temp_degC[row], float(t_s[row]))
        assert event is not None
        return row, event
