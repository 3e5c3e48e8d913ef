"""Firmware configuration: load flags, hard limits, all-or-nothing updates, atomic save."""

from __future__ import annotations

import json
from pathlib import Path

from tests.firmware.bms_harness import run_rig


def _load(tmp_path: Path, content: str | None) -> str:
    if content is not None:
        (tmp_path / "bms_config.json").write_text(content)
    return run_rig(
        """
from bms import config
from bms.core import Bms
c, f = config.load("bms_config.json")
b = Bms(c)
print(f, c.error, c.n_cells, b.boot_flags & 24, b.faults)
""",
        tmp_path,
    ).strip()


def test_load_flags(tmp_path: Path) -> None:
    assert _load(tmp_path, None).startswith("8 None 1 8")
    assert _load(tmp_path, json.dumps({"n_cells": 4})).startswith("0 None 4 0")
    out = _load(tmp_path, "{not json")
    assert out.startswith("16 config: unreadable JSON")
    out = _load(tmp_path, json.dumps({"window_top_dmAhg": 23000}))
    assert out.startswith("16 window_top_dmAhg: 23000 outside the hard limits"), out
    out = _load(tmp_path, json.dumps({"v_maxx_mV": 4200}))
    assert out.startswith("16 v_maxx_mV: unknown key"), out


def test_a_damaged_unreadable_or_absurdly_large_file_runs_on_defaults(tmp_path: Path) -> None:
    """Not UTF-8, far past any configuration's size, or nested deeper than the heap allows:
    refused with the config flag (it raised at boot, every boot)."""
    good = json.dumps({"n_cells": 4}).encode()
    for content in (good[:3] + b"\xff" + good[4:], good[:-1] + b" " * 400000 + b"}", b"[" * 5000):
        (tmp_path / "bms_config.json").write_bytes(content)
        out = _load(tmp_path, None)
        assert out.startswith("16 config: unreadable JSON"), (content[:20], out)
        assert out.split()[-3:-1] == ["1", "16"], out  # the defaults' one cell, flag bit 4


def test_rejected_config_runs_on_defaults_with_the_config_fault(tmp_path: Path) -> None:
    (tmp_path / "bms_config.json").write_text(json.dumps({"n_cells": 4, "ov_mV": 9999}))
    run_rig(
        """
from array import array
from bms import config, faults as F
from bms.core import Bms
c, f = config.load("bms_config.json")
assert f == 16 and c.n_cells == 1 and c.error.startswith("ov_mV")
b = Bms(c)
cells = array("H", [3700] * 16)
temps = array("h", [250] * 8)
b.step(0, cells, 1, 0, temps, 1)
assert b.faults & F.CONFIG and not b.chg_on and not b.dsg_on
assert c.update({"n_cells": 2}) is None
b.step(1000, cells, 1, 0, temps, 1)
assert not b.faults & F.CONFIG and b.chg_on
""",
        tmp_path,
    )


def test_update_is_all_or_nothing_and_checks_relations(tmp_path: Path) -> None:
    run_rig(
        """
from bms.config import Config, load
c = Config()
assert c.update({"ov_mV": 4230, "uv_mV": 99}).startswith("uv_mV: 99 outside")
assert c.ov_mV == 4220 and c.version == 0
assert c.update({"ov_mV": 4300}).startswith("ov_mV: must not exceed v_abuse_max_mV")
assert c.update({"ov_mV": 4.2}) == "ov_mV: not an integer"
assert c.update({"ov_mV": True}) == "ov_mV: not an integer"
assert c.update({"ocv_chg_mV": [1, 2]}).startswith("ocv_chg_mV: length")
# a capacity without its anode mass: 20 Ah on the default 1.2 g anode is 16,666 mAh/g
assert c.update({"capacity_mAh": 20000}) == (
    "capacity_mAh: 16666 mAh/g at full over anode_mass_mg 1200 mg, above silicon's 3,579 mAh/g"
), c.update({"capacity_mAh": 20000})
assert c.update({"capacity_mAh": 20000, "anode_mass_mg": 12000}) is None
# an R0 far below any real cell's of its capacity (resistance.py's step arithmetic)
assert c.update({"capacity_mAh": 2000, "anode_mass_mg": 1200, "r0_uohm": 150}) == (
    "r0_uohm: 150 uohm at capacity_mAh 2000 mAh, below 400000 mAh x uohm"
)
assert c.update({"capacity_mAh": 2000, "anode_mass_mg": 1200}) is None
dsg = list(c.ocv_dsg_mV)
dsg[3] = dsg[2]
assert c.update({"ocv_dsg_mV": dsg}) == "ocv_dsg_mV: must increase strictly"
assert c.update({"ocv_dsg_mV": c.ocv_chg_mV[:-1] + [4300]}) == "ocv_dsg_mV: above ocv_chg_mV"
lith = list(c.anode_lith_mV)
lith[0] = c.anode_delith_mV[0] + 1
assert c.update({"anode_lith_mV": lith}) == "anode_lith_mV: above anode_delith_mV"
assert c.update({"ccl_temp_ddegC": [0, 0, 100, 200]}) == "ccl_temp_ddegC: must increase strictly"
assert c.update({"ccl_temp_ddegC": [0, 100]}).startswith("ccl_temp_mA: length differs")
assert c.update({"anode_lith_mV": c.anode_delith_mV}) is None  # equal curves: no hysteresis
assert c.update({"anode_lith_mV": [600, 500, 500, 100, 90, 80, 70]}) == (
    "anode_lith_mV: must decrease strictly"
)
assert c.update({"r_temp_pct": [100] * 7 + [5]}).startswith("r_temp_pct: length differs")
assert c.update({"i_offset_learned_mA": 31}).startswith("i_offset_learned_mA: must not exceed")
assert c.update({"window_top_dmAhg": 22000, "ov_mV": 4230}) is None
assert c.window_top_dmAhg == 22000 and c.version == 4
c.save("cfg.json")
c2, f = load("cfg.json")
assert f == 0 and c2.as_dict() == c.as_dict()
""",
        tmp_path,
    )
    assert not (tmp_path / "cfg.json.tmp").exists()


def test_a_config_left_only_as_tmp_is_loaded_and_put_back_by_the_next_save(
    tmp_path: Path,
) -> None:
    # A FAT rename is remove-then-rename: a cut in between leaves only the .tmp.
    (tmp_path / "bms_config.json.tmp").write_text(json.dumps({"n_cells": 3, "ov_mV": 4210}))
    assert _load(tmp_path, None).startswith("0 None 3 0")
    run_rig(
        """
from bms import config
c, f = config.load("bms_config.json")
assert f == 0 and c.ov_mV == 4210
assert c.update({"ov_mV": 4205}) is None
c.save("bms_config.json")
""",
        tmp_path,
    )
    assert json.loads((tmp_path / "bms_config.json").read_text())["ov_mV"] == 4205
    assert not (tmp_path / "bms_config.json.tmp").exists()
