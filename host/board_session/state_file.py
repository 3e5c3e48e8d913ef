"""The firmware's persisted state at the start of a run (the scenario's [initial] table).

`state_file = false` starts the board without bms_state.json (the firmware
estimates SOC from voltage at boot, branch unknown); `state_file = true` writes
one holding the true SOC, or `firmware_soc` when the scenario wants it wrong, or the
true SOC plus `firmware_soc_error` (a state gone stale by a little).

A pack's cells start at SOCs spread about the scenario's (the cell file's
soc_spread), and a BMS that had been running would have persisted each cell's own
count: the true start then holds each cell's SOC (bms.storage's per-cell lists,
with nothing learned yet); so does a file stale by firmware_soc_error, each cell's
SOC moved alike (the pack was charged or discharged while the BMS was off). A file with
firmware_soc holds one SOC for every cell, as one wrong belief does.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cellmodel.design import CellDesign
from host.scenarios import InitialState
from host.vboard.provision import write_flash_file

STATE_FILE = "bms_state.json"


# Branch codes of firmware/bms/ocv.py.
_CHARGE, _DISCHARGE = 0, 1
# A freshly persisted estimate is good to about half a percent of capacity.
_UNCERTAINTY = 0.005
# bms.storage.CELL's per-cell values for a cell nothing has been learned of: the capacity's
# prior uncertainty kept (-1), no calibration anchor, the design's resistance (factor 1.0).
_NO_DCAP = -1
_DESIGN_R_FACTOR = 10000


def initial_state_dict(
    init: InitialState, capacity_mAh: int, cell_soc: Sequence[float] = ()
) -> dict[str, Any]:
    """The state the firmware would have persisted at the scenario's start (bms.storage keys).

    q_mAs is the charge held by the cell against the learned capacity cap_mAs (the
    configured capacity: nothing learned yet); the branch is the file's (firmware_branch, else
    the cells' own), known. cell_soc: each simulated cell's true SOC at the start; with more
    than one, a start without firmware_soc holds each cell's own count (plus
    firmware_soc_error).
    """
    err = init.firmware_soc_error
    soc = init.firmware_soc if init.firmware_soc is not None else init.soc + err
    branch = init.firmware_branch or init.branch
    cap_mAs = int(capacity_mAh) * 3600
    unc_mAs = int(round(_UNCERTAINTY * cap_mAs))

    def q_mAs(s: float) -> int:
        return int(round(float(np.clip(s, 0.0, 1.0)) * cap_mAs))

    state: dict[str, Any] = {
        "v": 1,
        "q_mAs": q_mAs(soc),
        "unc_mAs": unc_mAs,
        "cap_mAs": cap_mAs,
        "cycle_count": 0,
        "thr_mAs": 0,
        "learn_count": 0,
        "branch": _DISCHARGE if branch == "discharge" else _CHARGE,
        "known": 1,
        "clock_s": 0,
        "fault_log": [],
        # written as a shutdown writes it (bms.storage): the state as the BMS left it, not a
        # periodic save that may have been followed by uncounted charge
        "clean": 1,
    }
    if init.firmware_soc is None and len(cell_soc) > 1:
        # [q, unc, ext_dn, ext_up, cap, dcap, anc_ok, anc_cpct, anc_unc, net, r_fac]
        state["cells"] = [
            [q_mAs(s + err), unc_mAs, 0, 0, cap_mAs, _NO_DCAP, 0, 0, 0, 0, _DESIGN_R_FACTOR]
            for s in cell_soc
        ]
        state["q_mAs"] = state["cells"][0][0]  # the scalar is cell 1's, as the firmware's
    return state


def write_initial_state(
    flash_dir: Path, init: InitialState, design: CellDesign, cell_soc: Sequence[float] = ()
) -> Path | None:
    """Write (or remove) bms_state.json in a virtual board's flash folder."""
    path = Path(flash_dir) / STATE_FILE
    if not init.state_file:
        path.unlink(missing_ok=True)
        return None
    config = json.loads((Path(flash_dir) / "bms_config.json").read_text(encoding="utf-8"))
    capacity_mAh = int(config.get("capacity_mAh") or round(design.capacity_Ah * 1000.0))
    state = json.dumps(initial_state_dict(init, capacity_mAh, cell_soc)).encode()
    write_flash_file(Path(flash_dir), STATE_FILE, state)  # whole, through no planted link
    return path
