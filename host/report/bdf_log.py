"""Write a closed-loop run's log as a Battery Data Format file (`.bdf.csv`, `.bdf.parquet`).

The test object is the pack (one cell for single-cell runs): Voltage / V is the
pack voltage, Current / A the series current, Surface Temperature T1 / degC the
hottest cell. The BDF columns come first (cellmodel.bdf); then the true cell
quantities from the model and the `BMS ...` columns from the firmware's STATE
replies, all as "Name / unit".

Sign: BDF's current is positive on CHARGE. Every current column in the file
(Current, Demanded Current, Measured Current, BMS Current) is therefore the
negative of the emulator's (positive on discharge, as everywhere in sisnbms).
BMS CCL and BMS DCL are the firmware's limits as it reported them in the row's
reply: magnitudes, the largest charge and discharge current it allows. The
charger and load keep to them from the next sample on (a charger held to the CCL
draws the row before's BMS CCL).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cellmodel import bdf
from host.report.log import RunLog

# For the run summary: its currents keep sisnbms's sign; the log file has BDF's.
SIGN_NOTE = "current positive on discharge (in the .bdf log: positive on charge, as BDF)"

_TRUE = [
    "True SOC / %",
    "True Min Cell SOC / %",
    "True Anode Utilization / mAh/g",  # the highest cell's
    "True Anode Potential / V",  # the lowest cell's
    "True Hysteresis State / 1",  # the cells' mean
]
_BMS = [
    "Measured Current / mA",
    "BMS SOC / %",
    "BMS SOC Uncertainty / %",
    "BMS Capacity / mAh",
    "BMS Anode Utilization / mAh/g",
    "BMS Current / mA",
    "SOC Error / %",
    "CHG On / 1",
    "DSG On / 1",
    "Faults / 1",
    "Latched Faults / 1",
    "Warnings / 1",
    "Balancing / 1",
    "Link OK / 1",
    "BMS CCL / mA",
    "BMS DCL / mA",
    "BMS Anode Potential / mV",
]


def bdf_columns(n_cells: int, *, unix_time: bool = False, ambient: bool = False) -> list[str]:
    """The file's column names, in order."""
    cols = [bdf.TIME]
    cols += [bdf.UNIX_TIME] if unix_time else []
    cols += [bdf.CYCLE, bdf.STEP, bdf.VOLTAGE, bdf.CURRENT]
    cols += [bdf.AMBIENT] if ambient else []
    cols += [bdf.SURFACE_T1, "Demanded Current / A"]
    cols += [f"Cell {i + 1} Voltage / V" for i in range(n_cells)]
    return cols + _TRUE + _BMS


def write_bdf_log(log: RunLog, path: Path) -> Path:
    """Write one row per sample; returns the path.

    Unix Time comes from RunLog.start_unix_s (the wall-clock time of t = 0) when known,
    Ambient Temperature from the log's ambient column when every sample has one.
    """
    start_unix = log.start_unix_s
    ambient = log.column("ambient_degC")
    has_ambient = bool(len(log)) and bool(np.all(np.isfinite(ambient)))
    t = log.column("t_s")
    true_soc = log.column("soc_true") * 100.0
    fw_soc = log.column("fw_soc_pct")
    cols: dict[str, Any] = {bdf.TIME: t}
    if start_unix is not None:
        cols[bdf.UNIX_TIME] = float(start_unix) + t
    cols[bdf.CYCLE] = log.column("cycle")
    cols[bdf.STEP] = log.column("step") + 1.0
    cols[bdf.VOLTAGE] = log.column("pack_v_V")
    cols[bdf.CURRENT] = bdf.to_bdf_current(log.column("current_A"))
    if has_ambient:
        cols[bdf.AMBIENT] = ambient
    cols[bdf.SURFACE_T1] = log.column("temp_max_degC")
    cols["Demanded Current / A"] = bdf.to_bdf_current(log.column("demand_A"))
    cells = log.cell_voltages()
    for i in range(log.n_cells):
        cols[f"Cell {i + 1} Voltage / V"] = cells[:, i]
    true = [true_soc, log.column("soc_min_true") * 100.0]
    true += [log.column(n) for n in ("anode_util_max_mAh_g", "anode_potential_min_V", "h_mean")]
    cols.update(zip(_TRUE, true, strict=True))
    bms = [
        bdf.to_bdf_current(log.column("meas_current_mA")),
        fw_soc,
        log.column("fw_soc_unc_pct"),
        log.column("fw_capacity_mAh"),
        log.column("fw_anode_util_mAh_g"),
        bdf.to_bdf_current(log.column("fw_current_mA")),
        fw_soc - true_soc,
    ]
    flags = ("chg_on", "dsg_on", "faults", "latched", "warnings", "balance", "link_ok")
    bms += [log.column(n) for n in flags]
    bms += [log.column(n) for n in ("fw_ccl_mA", "fw_dcl_mA", "fw_anode_potential_mV")]
    cols.update(zip(_BMS, bms, strict=True))
    assert list(cols) == bdf_columns(
        log.n_cells, unix_time=start_unix is not None, ambient=has_ambient
    )
    return bdf.write_bdf(path, cols)
