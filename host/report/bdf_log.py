"""Write a run's log as a Battery Data Format style CSV (`.bdf.csv`).

Headers follow BDF's "Quantity / unit" style. True quantities come from the
cell model, `BMS ...` columns from the firmware's STATE replies. Current is
positive on discharge (stated in the first comment-free header too).
"""

from __future__ import annotations

import csv
from pathlib import Path

from cellmodel import bdf
from host.report.log import RunLog

SIGN_NOTE = "current positive on discharge"


def bdf_columns(n_cells: int) -> list[str]:
    # The quantities the cell model's own output has keep its column names (cellmodel.bdf),
    # so one reader handles both files; the current's sign is in its name.
    cols = [
        bdf.TIME,
        bdf.STEP,
        "Demanded Current (discharge positive) / A",
        bdf.CURRENT,
        bdf.VOLTAGE,
    ]
    cols += [f"Cell {i + 1} Voltage / V" for i in range(n_cells)]
    cols += [
        "True SOC / %",
        "True Min Cell SOC / %",
        bdf.TEMPERATURE,
        "True Anode Utilization / mAh/g",
        "True Anode Potential / V",
        "True Hysteresis State",
        "Measured Current / mA",
        "BMS SOC / %",
        "BMS SOC Uncertainty / %",
        "BMS Capacity / mAh",
        "BMS Anode Utilization / mAh/g",
        "BMS Current / mA",
        "SOC Error / %",
        "CHG On",
        "DSG On",
        "Faults",
        "Latched Faults",
        "Warnings",
        "Balancing",
        "Link OK",
    ]
    return cols


def write_bdf_log(log: RunLog, path: Path) -> Path:
    """Write one row per sample; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(bdf_columns(log.n_cells))
        for r in log.rows:
            writer.writerow(
                [
                    f"{r.t_s:.3f}",
                    r.step,
                    f"{r.demand_A:.6g}",
                    f"{r.current_A:.6g}",
                    f"{r.pack_v_V:.6f}",
                    *(f"{v:.6f}" for v in r.cell_v_V),
                    f"{r.soc_true * 100:.4f}",
                    f"{r.soc_min_true * 100:.4f}",
                    f"{r.temp_max_degC:.3f}",
                    f"{r.anode_util_max_mAh_g:.2f}",
                    f"{r.anode_potential_min_V:.5f}",
                    f"{r.h_mean:.4f}",
                    r.meas_current_mA,
                    f"{r.fw_soc_pct:.2f}",
                    f"{r.fw_soc_unc_pct:.2f}",
                    r.fw_capacity_mAh,
                    f"{r.fw_anode_util_mAh_g:.1f}",
                    r.fw_current_mA,
                    f"{r.fw_soc_pct - r.soc_true * 100:.4f}",
                    int(r.chg_on),
                    int(r.dsg_on),
                    r.faults,
                    r.latched,
                    r.warnings,
                    r.balance,
                    int(r.link_ok),
                ]
            )
    return path
