"""The firmware's persisted state at the start of a run (the scenario's [initial] table).

`state_file = false` starts the board without bms_state.json (the firmware
estimates SOC from voltage at boot, branch unknown); `state_file = true` writes
one holding the true SOC, or `firmware_soc` when the scenario wants it wrong.
"""

from __future__ import annotations

import json
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


def initial_state_dict(init: InitialState, capacity_mAh: int) -> dict[str, Any]:
    """The state the firmware would have persisted at the scenario's start (bms.storage keys).

    q_mAs is the charge held by the cell against the learned capacity cap_mAs (the
    configured capacity: nothing learned yet); the branch is the file's (firmware_branch, else
    the cells' own), known.
    """
    soc = init.firmware_soc if init.firmware_soc is not None else init.soc
    branch = init.firmware_branch or init.branch
    cap_mAs = int(capacity_mAh) * 3600
    return {
        "v": 1,
        "q_mAs": int(round(float(np.clip(soc, 0.0, 1.0)) * cap_mAs)),
        "unc_mAs": int(round(_UNCERTAINTY * cap_mAs)),
        "cap_mAs": cap_mAs,
        "cycle_count": 0,
        "thr_mAs": 0,
        "learn_count": 0,
        "branch": _DISCHARGE if branch == "discharge" else _CHARGE,
        "known": 1,
        "clock_s": 0,
        "fault_log": [],
    }


def write_initial_state(flash_dir: Path, init: InitialState, design: CellDesign) -> Path | None:
    """Write (or remove) bms_state.json in a virtual board's flash folder."""
    path = Path(flash_dir) / STATE_FILE
    if not init.state_file:
        path.unlink(missing_ok=True)
        return None
    config = json.loads((Path(flash_dir) / "bms_config.json").read_text(encoding="utf-8"))
    capacity_mAh = int(config.get("capacity_mAh") or round(design.capacity_Ah * 1000.0))
    state = json.dumps(initial_state_dict(init, capacity_mAh)).encode()
    write_flash_file(Path(flash_dir), STATE_FILE, state)  # whole, through no planted link
    return path
