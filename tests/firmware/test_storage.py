"""Persistence across restarts (a new Bms on the same folder) and with bad state files."""

from __future__ import annotations

import json
from pathlib import Path

from tests.firmware.bms_harness import run_rig

_HEAD = """
from bmsrig import Rig
from bms import faults as F
"""


def test_state_survives_a_restart(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig()
b = r.bms
assert b.boot_flags & F.BOOT_STATE_MISSING and b.warnings == 0
r.step(0, 0, mV=3700)
r.run(600, 2000, mV=3650)
r.step(1000, 0, mV=4300)  # a latched fault for the log
b.save()
q, cap, unc, br = b.counter.q_mAs, b.learner.cap_mAs, b.est.unc_mAs, b.est.branch
log = b.fault_log
b2 = Rig().bms
assert b2.boot_flags & F.BOOT_STATE_RESTORED and not b2.boot_flags & 6
assert b2.counter.q_mAs == q and b2.learner.cap_mAs == cap and b2.est.unc_mAs == unc
assert b2.est.branch == br and b2.est.known
assert b2.fault_log == log, (b2.fault_log, log)
assert b2.soc_cpct == b.soc_cpct
assert not b2.chg_on and not b2.dsg_on  # nothing on before the first sample
r2 = Rig()
r2.step(0, 0, mV=3650)
assert r2.bms.flags & F.F_SOC_RESTORED and not r2.bms.flags & F.F_SOC_FROM_VOLTAGE
assert r2.bms.soc_cpct == b.soc_cpct
print(r2.bms.soc_cpct)
""",
        tmp_path,
    )
    state = json.loads((tmp_path / "bms_state.json").read_text())
    assert state["v"] == 1 and state["fault_log"]
    assert not (tmp_path / "bms_state.json.tmp").exists()


def _boot(tmp_path: Path, content: str | None) -> str:
    if content is not None:
        (tmp_path / "bms_state.json").write_text(content)
    return run_rig(
        _HEAD
        + """
r = Rig()
b = r.bms
r.step(0, 0, mV=3700)
print(b.boot_flags, b.warnings & F.W_STATE_DEFAULTS, b.flags & F.F_SOC_FROM_VOLTAGE, b.soc_cpct)
""",
        tmp_path,
    )


def test_missing_corrupt_truncated_and_out_of_range_files_give_defaults(tmp_path: Path) -> None:
    out = _boot(tmp_path, None).split()
    assert out[:3] == ["2", "4", "64"]
    good = _good_state(tmp_path)
    bad = [
        "garbage{",
        good[: len(good) // 2],
        "",
        "[1, 2]",
        json.dumps({**json.loads(good), "q_mAs": "lots"}),
        json.dumps({**json.loads(good), "cap_mAs": 99}),
        json.dumps({**json.loads(good), "v": 7}),
    ]
    for content in bad:
        out = _boot(tmp_path, content).split()
        assert out[:3] == ["4", "4", "64"], (content, out)


def _good_state(tmp_path: Path) -> str:
    run_rig(_HEAD + "r = Rig()\nr.step(0, 0, mV=3700)\nr.bms.save()\n", tmp_path)
    text = (tmp_path / "bms_state.json").read_text()
    assert _boot(tmp_path, text).split()[:3] == ["1", "0", "0"]
    return text


def test_leftover_tmp_file_is_used_when_the_rename_did_not_happen(tmp_path: Path) -> None:
    text = _good_state(tmp_path)
    (tmp_path / "bms_state.json").unlink()
    (tmp_path / "bms_state.json.tmp").write_text(text)
    assert _boot(tmp_path, None).split()[0] == "1"


def test_writes_are_rate_limited_on_sample_time(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
import os
def exists():
    try:
        os.stat("bms_state.json")
        return True
    except OSError:
        return False
r = Rig({"persist_min_ms": 60000, "persist_dsoc_cpct": 500, "persist_interval_ms": 600000},
        quiet=False)
b = r.bms
r.step(0, 0, mV=3700)
r.run(59, 0, mV=3700)
assert not exists()  # the boot SOC differs by > 5 %, but not before persist_min_ms
r.run(2, 0, mV=3700)
assert exists()
os.remove("bms_state.json")
r.run(500, 0, mV=3700)
assert not exists()  # no SOC change: only after persist_interval_ms
r.run(110, 0, mV=3700)
assert exists()
os.remove("bms_state.json")
r.run(100, 3700, mV=3700)  # 370 As = 5.1 % of capacity
assert exists()
os.remove("bms_state.json")
b.shutdown()
assert exists() and not b.chg_on and not b.dsg_on
""",
        tmp_path,
    )


def test_learning_anchor_survives_a_restart_and_is_optional(tmp_path: Path) -> None:
    run_rig(
        _HEAD
        + """
r = Rig()
b = r.bms
r.step(0, 0, mV=3900)
r.run(15, -100, mV=4200)  # full reset: the anchor
r.run(100, 2000, mV=3800)
lrn = b.learner
assert lrn.anchor_ok and lrn.net_mAs < 0
b.save()
b2 = Rig().bms
l2 = b2.learner
assert l2.anchor_ok and l2.anchor_cpct == lrn.anchor_cpct
assert l2.anchor_unc_cpct == lrn.anchor_unc_cpct and l2.net_mAs == lrn.net_mAs
""",
        tmp_path,
    )
    state = json.loads((tmp_path / "bms_state.json").read_text())
    assert state["anc_ok"] == 1 and state["anc_net_mAs"] < 0
    # a state file without the anchor (older firmware, the host's emulator) loads without one
    for k in ("anc_ok", "anc_cpct", "anc_unc_cpct", "anc_net_mAs"):
        del state[k]
    out = _boot(tmp_path, json.dumps(state)).split()
    assert out[0] == "1", out
    bad = {**state, "anc_cpct": 30000}
    assert _boot(tmp_path, json.dumps(bad)).split()[0] == "4"
