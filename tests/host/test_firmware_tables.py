"""Tables the host keeps of the firmware's, checked against the firmware under MicroPython.

host/board_session/state_file.py writes the bms_state.json a board would have
persisted: its layout (keys, version, value ranges) and its branch codes must be
the ones firmware/bms/storage.py, core.py and ocv.py read and write. The
flasher's config-rejected bit comes from host.protocol.faults, which loads
firmware/bms/faults.py (tests/host/test_protocol_faults.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cellmodel import load_cell
from host.board_session.state_file import STATE_FILE, initial_state_dict, write_initial_state
from host.protocol.faults import BOOT_FLAG_BITS
from host.scenarios.scenario import InitialState
from host.vboard.provision import provision_flash
from tests.firmware.mpy import run_mpy

FIRMWARE_TABLES = """
import json
from bms import ocv, storage
from bms import config
from bms.core import Bms
cfg, _ = config.load("bms_config.json")
bms = Bms(cfg, "no_such_state.json")
print(json.dumps({
    "CHARGE": ocv.CHARGE,
    "DISCHARGE": ocv.DISCHARGE,
    "VERSION": storage.VERSION,
    "FIELDS": sorted(storage.FIELDS),
    "OPTIONAL": sorted(storage.OPTIONAL),
    "state_dict": sorted(storage.state_dict(bms)),
}))
"""

RESTORE = """
import json
from bms import config, storage
from bms.core import Bms
d, flags = storage.load_state("bms_state.json")
cfg, _ = config.load("bms_config.json")
bms = Bms(cfg)
est = bms.est
print(json.dumps({
    "load_flags": flags,
    "boot_flags": bms.boot_flags,
    "q_mAs": [est.q[k] for k in range(cfg.n_cells)],
    "cap_mAs": [bms.learner.cap[k] for k in range(cfg.n_cells)],
    "branch": est.branch,
    "known": est.known,
    "base_mAs": [est.base[k] for k in range(cfg.n_cells)],
}))
"""


def scenario(branch: str, soc: float) -> InitialState:
    return InitialState(soc=soc, branch=branch)


@pytest.fixture(scope="module")
def flash(tmp_path_factory: pytest.TempPathFactory) -> Path:
    flash = tmp_path_factory.mktemp("tables") / "flash"
    provision_flash(flash, load_cell(), board="virtual")
    return flash


@pytest.fixture(scope="module")
def firmware(flash: Path) -> dict:
    return json.loads(run_mpy(FIRMWARE_TABLES, cwd=flash).splitlines()[-1])


def test_state_file_layout_is_the_firmware_one(firmware: dict) -> None:
    host = initial_state_dict(scenario("charge", 0.5), 2000)
    required = set(firmware["FIELDS"]) | {"v", "fault_log"}
    # the calibration anchor is optional: absent, none is known; "clean" says the file is
    # the state as the BMS left it (a shutdown's), not a periodic save a power cut followed
    assert set(host) == required | {"clean"} and host["clean"] == 1
    assert "clean" in firmware["OPTIONAL"]
    assert host["v"] == firmware["VERSION"]
    # and what the firmware itself writes is what it reads back: the optional ints and the
    # optional per-cell lists (storage.CELL), which the host leaves out
    assert set(firmware["state_dict"]) == required | set(firmware["OPTIONAL"]) | {"cells"}
    assert "cells" not in host


@pytest.mark.parametrize(("branch", "code"), [("charge", "CHARGE"), ("discharge", "DISCHARGE")])
def test_branch_codes_are_the_firmware_ones(firmware: dict, branch: str, code: str) -> None:
    assert initial_state_dict(scenario(branch, 0.5), 2000)["branch"] == firmware[code]


@pytest.mark.parametrize(("branch", "soc"), [("charge", 0.3), ("discharge", 0.8)])
def test_the_firmware_restores_the_host_state_file(flash: Path, branch: str, soc: float) -> None:
    design = load_cell()
    path = write_initial_state(flash, scenario(branch, soc), design)
    assert path is not None and path == flash / STATE_FILE
    written = json.loads(path.read_text())
    got = json.loads(run_mpy(RESTORE, cwd=flash).splitlines()[-1])
    assert got["load_flags"] == 0 and got["boot_flags"] & 1 << BOOT_FLAG_BITS["STATE_RESTORED"]
    # a file without the per-cell part gives every cell its scalar count and capacity
    assert set(got["q_mAs"]) == {written["q_mAs"]} and set(got["cap_mAs"]) == {written["cap_mAs"]}
    assert written["q_mAs"] == pytest.approx(soc * written["cap_mAs"], rel=1e-6)
    assert got["branch"] == written["branch"] and got["known"]
    # restored as written: a start is no power cut after a save
    assert set(got["base_mAs"]) == {written["unc_mAs"]}


def test_a_true_pack_start_holds_each_cells_soc_and_a_stale_one_does_not(tmp_path: Path) -> None:
    """A pack's cells start spread about the scenario's SOC. The true start is what a BMS
    that had been running would have persisted: each cell's own count (storage's per-cell
    lists, nothing learned: the capacity's prior kept). A stale one is one belief for
    every cell; one stale by a little moves each cell's count alike. All restored by the
    firmware under MicroPython."""
    design = load_cell("sisn-lco-2ah-4s")
    flash = tmp_path / "flash"
    provision_flash(flash, design, board="virtual")
    cell_soc = (0.47, 0.5, 0.515, 0.53)
    path = write_initial_state(flash, scenario("discharge", 0.5), design, cell_soc)
    assert path is not None
    written = json.loads(path.read_text())
    got = json.loads(run_mpy(RESTORE_PACK, cwd=flash).splitlines()[-1])
    assert got["load_flags"] == 0 and got["boot_flags"] & 1 << BOOT_FLAG_BITS["STATE_RESTORED"]
    cap_mAs = written["cap_mAs"]
    assert got["q_mAs"] == [round(s * cap_mAs) for s in cell_soc]
    assert got["cap_mAs"] == [cap_mAs] * 4
    # nothing learned: every cell as a fresh firmware has it (the capacity's prior, no
    # anchor, the design's resistance)
    assert got["dcap"] == got["fresh"]["dcap"] and got["r_fac"] == got["fresh"]["r_fac"]
    assert got["anc_ok"] == [0] * 4

    stale = InitialState(soc=0.5, branch="discharge", firmware_soc=0.9, firmware_branch="charge")
    write_initial_state(flash, stale, design, cell_soc)
    got = json.loads(run_mpy(RESTORE_PACK, cwd=flash).splitlines()[-1])
    assert got["q_mAs"] == [round(0.9 * cap_mAs)] * 4
    # stale by a little (charged by 6 % while the BMS was off): each cell's own count, 6 % low
    near = InitialState(soc=0.5, branch="discharge", firmware_soc_error=-0.06)
    write_initial_state(flash, near, design, cell_soc)
    got = json.loads(run_mpy(RESTORE_PACK, cwd=flash).splitlines()[-1])
    assert got["q_mAs"] == [round((s - 0.06) * cap_mAs) for s in cell_soc]


RESTORE_PACK = """
import json
from bms import config, storage
from bms.core import Bms
d, flags = storage.load_state("bms_state.json")
cfg, _ = config.load("bms_config.json")
fresh = Bms(cfg, "no_such_state.json")
bms = Bms(cfg)
lrn = bms.learner
n = cfg.n_cells
print(json.dumps({
    "fresh": {"dcap": [fresh.learner.dcap[k] for k in range(n)],
              "r_fac": [fresh.res.fac[k] for k in range(n)]},
    "load_flags": flags,
    "boot_flags": bms.boot_flags,
    "q_mAs": [bms.est.q[k] for k in range(n)],
    "cap_mAs": [lrn.cap[k] for k in range(n)],
    "dcap": [lrn.dcap[k] for k in range(n)],
    "anc_ok": [lrn.anc_ok[k] for k in range(n)],
    "r_fac": [bms.res.fac[k] for k in range(n)],
}))
"""
