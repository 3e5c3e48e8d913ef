"""OCV and anode-potential lookup with the one-state hysteresis model.

Both quantities mix two branches by the hysteresis state h in [-1, 1]:
value = mid(x) + h * half(x), mid = (discharge + charge)/2, half = (discharge -
charge)/2, which is (1+h)/2 * discharge + (1-h)/2 * charge. h = +1 is the
discharge branch (anode delithiating), h = -1 the charge branch.

Tables are extended linearly beyond their ends (by EXTEND of the span) with the
end slopes, so an over-charged or over-discharged cell keeps moving its voltage
instead of sitting flat at the table edge; beyond that the value is held. Below its
low end a table can instead end where the anode runs out of lithium (`Empty`): the
end slope carries on to a knee, then both branches move by the anode's last rise to
the empty point, and hold there. A cell's voltage so collapses before its anode is
empty, as a real one's does, and a load kept to its cut-off voltage tapers there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

EXTEND = 0.3


@dataclass(frozen=True)
class Empty:
    """Where a table's low end meets the anode's empty point: the end slope runs on to
    knee_x, then both branches move by rise (signed: up for the anode's potential, down
    for the cell's voltage) to empty_x, below which the value is held.
    empty_x < knee_x <= the table's first abscissa."""

    knee_x: float
    empty_x: float
    rise: float


@dataclass(frozen=True)
class UniformGrid:
    """The same piecewise-linear curves resampled where every breakpoint is a grid point.

    Interpolating on such a grid is exact and needs no search, which is several
    times faster than np.interp for large packs.
    """

    x0: float
    inv_step: float
    n_intervals: int
    mid: np.ndarray
    d_mid: np.ndarray
    half: np.ndarray
    d_half: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, mid: np.ndarray, half: np.ndarray) -> UniformGrid | None:
        smallest = float(np.min(np.diff(x)))
        span = float(x[-1] - x[0])
        for k in range(1, 65):
            step = smallest / k
            pos = (x - x[0]) / step
            if np.all(np.abs(pos - np.round(pos)) < 1e-7) and span / step <= 8192:
                n = round(span / step)
                grid = x[0] + step * np.arange(n + 1)
                grid[-1] = x[-1]
                m = np.interp(grid, x, mid)
                h = np.interp(grid, x, half)
                return cls(
                    x0=float(x[0]),
                    inv_step=1.0 / step,
                    n_intervals=n,
                    mid=m[:-1].copy(),
                    d_mid=np.diff(m),
                    half=h[:-1].copy(),
                    d_half=np.diff(h),
                )
        return None

    def value(self, x: np.ndarray, h: np.ndarray | float | None) -> np.ndarray:
        f = np.clip((x - self.x0) * self.inv_step, 0.0, float(self.n_intervals))
        i = np.minimum(f.astype(np.intp), self.n_intervals - 1)
        frac = f - i
        out = self.mid.take(i) + self.d_mid.take(i) * frac
        if h is not None:
            out += h * (self.half.take(i) + self.d_half.take(i) * frac)
        return out


@dataclass(frozen=True)
class BranchTable:
    """Piecewise-linear mid and half-gap curves on one abscissa."""

    x: np.ndarray
    mid: np.ndarray
    half: np.ndarray
    grid: UniformGrid | None = None

    def __post_init__(self) -> None:
        if self.grid is None:
            object.__setattr__(self, "grid", UniformGrid.fit(self.x, self.mid, self.half))

    def lookup(
        self, x: np.ndarray, h: np.ndarray | float | None, *, grid: bool = True
    ) -> np.ndarray:
        """mid(x) + h half(x) (h None: mid only), holding the end values beyond the table.

        Large arrays use the uniform grid (faster, equal to np.interp to rounding);
        grid=False keeps np.interp, so a long series of one cell's states is looked
        up exactly as that cell's state step by step.
        """
        if grid and self.grid is not None and isinstance(x, np.ndarray) and x.size > 64:
            return self.grid.value(x, h)
        out = np.interp(x, self.x, self.mid)
        if h is not None:
            out = out + h * np.interp(x, self.x, self.half)
        return np.asarray(out)

    @classmethod
    def from_branches(
        cls,
        x: np.ndarray,
        low: np.ndarray,
        high: np.ndarray,
        extend: bool = True,
        empty: Empty | None = None,
    ) -> BranchTable:
        """low is the h = -1 branch, high the h = +1 branch; empty (with extend) ends the
        low side at the anode's empty point instead of EXTEND of the span."""
        x = np.asarray(x, dtype=float)
        mid = 0.5 * (np.asarray(high, dtype=float) + np.asarray(low, dtype=float))
        half = 0.5 * (np.asarray(high, dtype=float) - np.asarray(low, dtype=float))
        if extend:
            span = x[-1] - x[0]
            x_hi = x[-1] + EXTEND * span
            if empty is None:
                lows = [x[0] - EXTEND * span]
            elif not empty.empty_x < empty.knee_x <= x[0]:
                raise ValueError(f"empty point {empty} not below the table's start {x[0]}")
            elif empty.knee_x < x[0]:
                lows = [empty.empty_x, empty.knee_x]
            else:
                lows = [empty.empty_x]

            def ext(y: np.ndarray, rise: float) -> np.ndarray:
                slope_lo = (y[1] - y[0]) / (x[1] - x[0])
                y_lo = [y[0] + slope_lo * (x_lo - x[0]) for x_lo in lows]
                if empty is not None:
                    y_lo[0] += rise  # the empty point's, not the knee's
                y_hi = y[-1] + (y[-1] - y[-2]) / (x[-1] - x[-2]) * (x_hi - x[-1])
                return np.concatenate((y_lo, y, [y_hi]))

            rise = 0.0 if empty is None else empty.rise
            # the rise is the same on both branches: it moves the mid, not the half-gap
            mid, half = ext(mid, rise), ext(half, 0.0)
            x = np.concatenate((lows, x, [x_hi]))
        return cls(x=x, mid=mid, half=half)

    def value(self, x: np.ndarray | float, h: np.ndarray | float) -> np.ndarray:
        return np.asarray(np.interp(x, self.x, self.mid) + h * np.interp(x, self.x, self.half))

    def half_at(self, x: np.ndarray | float) -> np.ndarray:
        """half(x) alone (np.interp, holding the end values beyond the table)."""
        return np.asarray(np.interp(x, self.x, self.half))

    def slope(self, x: np.ndarray, h: np.ndarray | float) -> np.ndarray:
        """d value / dx of the segment holding x (right-continuous at breakpoints)."""
        i = np.clip(np.searchsorted(self.x, x, side="right") - 1, 0, len(self.x) - 2)
        dx = self.x[i + 1] - self.x[i]
        inside = (x >= self.x[0]) & (x <= self.x[-1])
        s_mid = (self.mid[i + 1] - self.mid[i]) / dx
        s_half = (self.half[i + 1] - self.half[i]) / dx
        return np.where(inside, s_mid + h * s_half, 0.0)
