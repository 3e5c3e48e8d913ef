"""One PNG per run: voltage, current, true vs estimated SOC, anode utilization, temperature,
switch and fault states on a shared time axis (matplotlib, Agg backend, no display needed).

Drawn on a bare `Figure`, not through pyplot: no global figure registry to close, safe in
threads, and pyplot's import (a third of matplotlib's) stays out of every run's start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from host.report.log import RunLog


def _time_axis(t_s: np.ndarray) -> tuple[np.ndarray, str]:
    span = float(t_s[-1] - t_s[0]) if t_s.size else 0.0
    if span > 3 * 3600:
        return t_s / 3600.0, "time / h"
    if span > 300:
        return t_s / 60.0, "time / min"
    return t_s, "time / s"


def new_canvas() -> tuple[Figure, Any]:
    """The figure and its six panels, before any data (a quarter of the drawing's time)."""
    # Fixed margins: a layout engine measuring every tick label costs more than the drawing.
    fig = Figure(figsize=(11, 13))
    axes = fig.subplots(6, 1, sharex=True)
    fig.subplots_adjust(left=0.11, right=0.92, bottom=0.04, top=0.94, hspace=0.12)
    return fig, axes


def write_plot(
    log: RunLog,
    path: Path,
    *,
    title: str,
    limits: Any,
    fault_names: dict[int, str],
    subtitle: str = "",
    canvas: tuple[Figure, Any] | None = None,
) -> Path:
    """Draw the run; `limits` is the cell's Limits (v_max_V, v_min_V, window_top_mAh_g, ...).

    `canvas`: a new_canvas() made beforehand (the plot worker's, while the run goes on), used
    once; else one is made here.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    t, t_label = _time_axis(log.column("t_s"))
    fig, axes = canvas or new_canvas()
    fig.suptitle(title + (f"\n{subtitle}" if subtitle else ""), fontsize=11)
    _voltages(axes[0], t, log, limits)
    _current(axes[1], t, log)
    _soc(axes[2], t, log)
    _anode(axes[3], t, log, limits)
    _temperature(axes[4], t, log, limits)
    _states(axes[5], t, log, fault_names)
    axes[5].set_xlabel(t_label)
    for a in axes:
        a.grid(True, alpha=0.3)
    fig.savefig(path, dpi=80)  # a bare Figure renders PNG with Agg
    return path


def _voltages(ax: Any, t: np.ndarray, log: RunLog, limits: Any) -> None:
    volts = log.cell_voltages()
    for i in range(volts.shape[1] if volts.size else 0):
        ax.plot(t, volts[:, i], lw=1, label=f"cell {i + 1}" if volts.shape[1] > 1 else "cell")
    ax.axhline(limits.v_max_V, color="r", ls="--", lw=0.8, label=f"{limits.v_max_V} V limit")
    ax.axhline(limits.v_min_V, color="r", ls=":", lw=0.8, label=f"{limits.v_min_V} V limit")
    ax.set_ylabel("cell voltage / V")
    ax.legend(loc="lower left", fontsize=7, ncol=4)


def _current(ax: Any, t: np.ndarray, log: RunLog) -> None:
    ax.plot(t, log.column("demand_A"), color="0.6", ls="--", lw=1, label="demanded")
    ax.plot(t, log.column("current_A"), color="C0", lw=1, label="through switches")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_ylabel("current / A\n(+ discharge)")
    ax.legend(loc="lower left", fontsize=7)


def _soc(ax: Any, t: np.ndarray, log: RunLog) -> None:
    soc_true = log.column("soc_true") * 100
    soc_fw = log.column("fw_soc_pct")
    unc = log.column("fw_soc_unc_pct")
    ax.fill_between(t, soc_fw - unc, soc_fw + unc, color="C1", alpha=0.2, lw=0, label="BMS +-unc.")
    ax.plot(t, soc_true, color="k", lw=1.2, label="true")
    ax.plot(t, soc_fw, color="C1", lw=1, label="BMS estimate")
    ax.set_ylabel("SOC / %")
    ax.set_ylim(-5, 105)
    err_ax = ax.twinx()
    err_ax.plot(t, soc_fw - soc_true, color="C3", lw=0.7, alpha=0.8)
    err_ax.set_ylabel("error / %", color="C3")
    err_ax.tick_params(axis="y", colors="C3")
    lim = max(2.0, float(np.nanmax(np.abs(soc_fw - soc_true))) * 1.1) if t.size else 2.0
    err_ax.set_ylim(-lim, lim)
    ax.legend(loc="lower left", fontsize=7)


def _anode(ax: Any, t: np.ndarray, log: RunLog, limits: Any) -> None:
    ax.plot(t, log.column("anode_util_max_mAh_g"), color="k", lw=1.2, label="true (max cell)")
    ax.plot(t, log.column("fw_anode_util_mAh_g"), color="C2", lw=1, label="BMS count")
    ax.axhline(limits.window_top_mAh_g, color="r", ls="--", lw=0.8, label="window top")
    ax.set_ylabel("anode util. / mAh/g")
    ax.legend(loc="lower left", fontsize=7)


def _temperature(ax: Any, t: np.ndarray, log: RunLog, limits: Any) -> None:
    ax.plot(t, log.column("temp_max_degC"), color="C3", lw=1, label="true (max cell)")
    ax.axhline(limits.charge_temp_min_degC, color="b", ls=":", lw=0.8, label="charge min")
    ax.axhline(limits.charge_temp_max_degC, color="r", ls=":", lw=0.8, label="charge max")
    ax.set_ylabel("temperature / degC")
    ax.legend(loc="lower left", fontsize=7, ncol=3)


def _states(ax: Any, t: np.ndarray, log: RunLog, fault_names: dict[int, str]) -> None:
    """Switches, link, each fault that occurred and each cell the firmware bled, one row each."""
    ax.step(t, log.column("chg_on") * 0.8 + 2, where="post", color="C0", lw=1.2)
    ax.step(t, log.column("dsg_on") * 0.8 + 1, where="post", color="C1", lw=1.2)
    ax.step(t, log.column("link_ok") * 0.8, where="post", color="0.4", lw=1.2)
    labels = ["link", "DSG", "CHG"]
    faults = log.bits("faults")
    seen = [b for b in sorted(fault_names) if t.size and np.any(faults & (1 << b))]
    for k, bit in enumerate(seen):
        on = (faults >> bit) & 1
        ax.fill_between(t, 3 + k, 3 + k + 0.8 * on, step="post", color="C3", alpha=0.7, lw=0)
        labels.append(fault_names[bit])
    # one row per cell the firmware bled, so balancing is visible at a glance too
    balance = log.bits("balance")
    bled = [c for c in range(log.n_cells) if t.size and np.any(balance & (1 << c))]
    for c in bled:
        row = len(labels)
        on = (balance >> c) & 1
        ax.fill_between(t, row, row + 0.8 * on, step="post", color="C2", alpha=0.7, lw=0)
        labels.append(f"bleed {c + 1}")
    ax.set_yticks(np.arange(len(labels)) + 0.4)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_ylim(-0.2, len(labels))
    ax.set_ylabel("on / active")
