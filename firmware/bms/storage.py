"""Persisted estimator state (bms_state.json): atomic write, tolerant read.

The file holds, per cell, the count, its uncertainty and the branch interval's reach
(soc.py), the learned capacity and its uncertainty, the capacity-learning anchor and the
resistance factor; the cycle and learning counters, the hysteresis branch and how far off
it the cells may be and are (the residual: a reset used to put them back on it), the cells
a bleed moved, the sample clock, the fault log, the latched faults (they hold across resets
and power cuts until CLEAR_LATCHED, restored even from a file whose rest does not fit the
configuration: keep_latched), the learned current-sensor offset and the number of
resistance steps.
Charge counts are in mAs of charge held by the cell (current is positive on discharge).

Only the keys of the first format are required: a file without "cells" (written by older
firmware, or by the host's emulator for a scenario's start) gives every cell its scalar
q_mAs, unc_mAs and cap_mAs, and leaves the rest at their defaults. A missing, unreadable,
truncated or out-of-range file gives None and a flag; it never raises. Bms imports this
module only while it boots and for each save, and drops it after (see bms.forget); the
state file is written by Bms.save() with config.write_json_atomic, which keeps it loadable
through a power cut at any point.

A file is only as fresh as its last write. shutdown() (before a reset or the REPL, both
switches open) writes it with "clean": 1, and nothing can move after. A periodic save is
followed by up to a save threshold of counting before the next one (stale_mAs: the SOC
step persist_dsoc_cpct plus one sample at the overcurrent limit, or persist_min_ms at it,
whichever is more), which a power cut loses. So restore() widens each cell's uncertainty
and its learning anchor's by that much when the file is not clean (and no longer takes
the hysteresis branch as known once the uncertainty reaches a branch switch's charge: a
switch may be among what went uncounted), and asks for a save at the first sample: the
file then says "not clean" again, so each further power cut before the next save widens
it once more. Without that, a power cut every 4.6 % of SOC through a charge (under the
5 % save step) brought the count back to the same file at each boot; the truth ran 37 %
ahead of a belief that claimed 4.3 %, and the anode passed the 1,500 mAh/g window's top.
"""

import json
import os

from bms.intmath import of_1e4, ratio_1e4

VERSION = 1
_F_SOC_RESTORED = 1 << 5  # STATE flag bit, as in faults.py
_LATCHING = (1 << 4) | (1 << 9) | (1 << 10)  # SC, OV_ABUSE, UV_ABUSE: faults.LATCHING

STATE_MISSING = 2
STATE_CORRUPT = 4

_Q = (-(1 << 29), 1 << 29)
_MAS = (0, 1 << 29)

# key: (lo, hi) for the int fields
FIELDS = {
    "q_mAs": _Q,
    "unc_mAs": _MAS,
    "cap_mAs": (1, 1 << 29),
    "cycle_count": (0, 65535),
    "thr_mAs": _MAS,
    "learn_count": (0, 65535),
    "branch": (-1, 1),
    "known": (0, 1),
    "clock_s": (0, 1 << 30),
}

# Optional int fields.
OPTIONAL = {
    "latched": (0, (1 << 24) - 1),
    "off_dmA": (-50000, 50000),
    "off_known": (0, 1),
    "r_steps": (0, 65535),
    "clean": (0, 1),
    # how far off its branch the cell may be and is (soc.py _track_branch, 1e-5 of the
    # gap) and the charge towards their next step; the cells a bleed moved (a bit each)
    "hyst_hi": (0, 100000),
    "hyst_mid": (0, 100000),
    "hyst_acc": _Q,
    "bled": (0, 0xFFFF),
}

# A cell's list, in order (Bms.state_dict).
CELL = (
    _Q,  # q
    _MAS,  # unc
    _MAS,  # ext_dn
    _MAS,  # ext_up
    (1, 1 << 29),  # cap
    (-1, 10000),  # dcap (-1: nothing learned, the prior stays; the host's start writes it)
    (0, 1),  # anc_ok
    (-10000, 20000),  # anc_cpct
    (0, 10000),  # anc_unc
    _Q,  # net
    (1, 40000),  # r_fac (resistance.py's _FAC_MAX: the array holds unsigned shorts)
)


def _in(v, bounds):
    if not isinstance(v, int) or isinstance(v, bool):
        return False
    return bounds[0] <= v <= bounds[1]


def _check(d):
    if not isinstance(d, dict) or d.get("v") != VERSION:
        return False
    for k in FIELDS:
        if not _in(d.get(k), FIELDS[k]):
            return False
    for k in OPTIONAL:
        if k in d and not _in(d[k], OPTIONAL[k]):
            return False
    cells = d.get("cells", [])
    if not isinstance(cells, list) or len(cells) > 16:
        return False
    for c in cells:
        if not isinstance(c, list) or len(c) != len(CELL):
            return False
        for i in range(len(CELL)):
            if not _in(c[i], CELL[i]):
                return False
    return isinstance(d.get("fault_log", []), list)


# The largest configuration or state file taken (each is 1-5 KB; the state of 16 cells
# with a 64-entry fault log under 4 KB): one far larger, or nested deeper than the
# heap allows, is damaged and must be refused, not read until a MemoryError at boot.
MAX_FILE_BYTES = 16384


def read_text(path):
    """The text of `path`, or of path + ".tmp" when `path` is missing (a save cut between
    remove and rename, see config.write_json_atomic); None when neither can be opened. ValueError
    when the file is there but is no text a loader can take: not UTF-8, larger than
    MAX_FILE_BYTES, unreadable, or more than the heap can hold."""
    for p in (path, path + ".tmp"):
        try:
            size = os.stat(p)[6]
        except OSError:
            continue
        # the size from the directory, not read(MAX_FILE_BYTES + 1): that allocates its
        # whole buffer first, 16 KB an RP2040's heap at boot may not have in one piece
        if size > MAX_FILE_BYTES:
            raise ValueError("larger than " + str(MAX_FILE_BYTES) + " bytes")
        try:
            with open(p) as f:
                return f.read()
        except (OSError, UnicodeError, MemoryError) as e:
            raise ValueError("unreadable: " + type(e).__name__) from None
    return None


def _parse(path):
    """(the file's JSON, 0), or (None, STATE_MISSING / STATE_CORRUPT)."""
    try:
        text = read_text(path)
        if text is None:
            return None, STATE_MISSING
        return json.loads(text), 0
    except (ValueError, TypeError, MemoryError, RuntimeError):
        # (not UTF-8, too large, or nested too deep for the heap or the stack)
        return None, STATE_CORRUPT


def load_state(path):
    """Return (dict or None, flags): flags STATE_MISSING or STATE_CORRUPT when None.

    Falls back to path + ".tmp" when `path` is missing (read_text).
    """
    d, flags = _parse(path)
    if d is not None and not _check(d):
        return None, STATE_CORRUPT
    return d, flags


def keep_latched(bms, path):
    """After a state file was not restored: its latched faults still hold (they opened a
    switch, and only CLEAR_LATCHED closes it), whatever else in it is out of range or made
    for another configuration (a cell count or capacity changed, a config file damaged so
    the board booted on defaults). None can be read from a file that is not JSON."""
    d = _parse(path)[0]
    v = d.get("latched") if isinstance(d, dict) else None
    if _in(v, OPTIONAL["latched"]):
        _latch(bms, v)


def _latch(bms, latched):
    latched &= _LATCHING  # they hold until CLEAR_LATCHED
    bms.prot.latched = latched
    bms.prot.faults |= latched


def state_dict(bms):
    """What survives a reset or a power cut; per cell [q, unc, ext_dn, ext_up, cap, dcap,
    anc_ok, anc_cpct, anc_unc, net, r_fac] (mAs, cpct; CELL). The scalar q_mAs, unc_mAs and
    cap_mAs are cell 1's (a file without "cells", as the host writes one, gives every cell
    those)."""
    est = bms.est
    lrn = bms.learner
    res = bms.res
    cells = []
    for k in range(bms.cfg.n_cells):
        cells.append(
            [
                est.q[k],
                est.unc[k],
                est.ext_dn[k],
                est.ext_up[k],
                lrn.cap[k],
                lrn.dcap[k],
                lrn.anc_ok[k],
                lrn.anc_cpct[k],
                lrn.anc_unc[k],
                lrn.net[k],
                res.fac[k],
            ]  # fmt: skip
        )
    return {
        "v": VERSION,
        "q_mAs": est.q[0],
        "unc_mAs": est.unc[0],
        "cap_mAs": lrn.cap[0],
        "cycle_count": lrn.cycle_count,
        "thr_mAs": lrn.thr_mAs,
        "learn_count": lrn.learn_count,
        "branch": est.branch,
        "known": 1 if est.known else 0,
        "clock_s": bms.clock_s,
        "fault_log": bms.log.entries(),
        "cells": cells,
        "latched": bms.prot.latched,
        "off_dmA": bms.offset.off_dmA,
        "off_known": 1 if bms.offset.known else 0,
        "r_steps": res.n_ev,
        "hyst_hi": est.hyst_hi,
        "hyst_mid": est.hyst_mid,
        "hyst_acc": est.hyst_acc,
        "bled": est.bled,
        "clean": 1 if bms.shut else 0,  # shutdown(): both switches open, nothing moves after
    }


def restore(bms, d):
    """Put a checked state dict into a freshly built Bms; False if it does not fit its config
    (another cell, other limits, another cell count): then none of it is used."""
    n = bms.cfg.n_cells
    lo, hi = bms.learner.bounds(bms.cfg)
    if not lo <= d["cap_mAs"] <= hi:
        return False  # made for another cell or limits: do not trust any of it
    cells = d.get("cells")
    if cells is None:
        one = [d["q_mAs"], d["unc_mAs"], 0, 0, d["cap_mAs"], -1, 0, 0, 0, 0, 10000]
        cells = [one] * n
    if len(cells) != n:
        return False
    lrn = bms.learner
    for c in cells:
        cap = c[4]
        if cap < lo or cap > hi or c[0] < -cap or c[0] > 2 * cap:
            return False  # made for another cell or limits: do not trust any of it
    est = bms.est
    for k in range(n):
        c = cells[k]
        est.q[k] = c[0]
        est.base[k] = min(c[1], c[4])
        est.qc[k] = c[0]
        est.ext_dn[k] = c[2]
        est.ext_up[k] = c[3]
        lrn.cap[k] = c[4]
        if c[5] >= 0:  # a file without learning data keeps the prior
            lrn.dcap[k] = c[5]
        lrn.anc_ok[k] = c[6]
        lrn.anc_cpct[k] = c[7]
        lrn.anc_unc[k] = c[8]
        lrn.net[k] = c[9]
        bms.res.fac[k] = c[10]
    lrn.cycle_count = d["cycle_count"]
    lrn.thr_mAs = d["thr_mAs"] % lrn.cap[0]
    lrn.learn_count = d["learn_count"]
    est.branch = d["branch"]
    est.known = bool(d["known"]) and est.branch >= 0
    est.need_init = False
    est.need_check = True
    est.flags |= _F_SOC_RESTORED
    bms.clock_s = d["clock_s"]
    bms.log.load(d.get("fault_log", []))
    _latch(bms, d.get("latched", 0))
    bms.offset.off_dmA = d.get("off_dmA", 0)
    bms.offset.known = bool(d.get("off_known", 0))
    bms.res.n_ev = d.get("r_steps", 0)
    # a file without them (older firmware, the host's start) leaves the state after a
    # switch: the residual's bound and middle as soc.py starts them, no cell bled
    est.hyst_hi = d.get("hyst_hi", est.hyst_hi)
    est.hyst_mid = d.get("hyst_mid", est.hyst_mid)
    est.hyst_acc = d.get("hyst_acc", 0)
    est.bled = d.get("bled", 0) & ((1 << n) - 1)
    if not d.get("clean", 0):
        for k in range(n):
            cap = lrn.cap[k]
            w = stale_mAs(bms.cfg, cap)
            est.base[k] = min(est.base[k] + w, cap)
            lrn.anc_unc[k] = min(lrn.anc_unc[k] + ratio_1e4(w, cap), 10000)
            if est.base[k] >= of_1e4(cap, bms.cfg.branch_switch_cpct):
                est.known = False  # as much may have moved uncounted: a switch among it
    bms.save_due = True  # the file now on the flash must not read as clean after this boot
    return True


def stale_mAs(cfg, cap_mAs):
    """The most a periodic save can leave uncounted before the next (Bms._schedule_save):
    the SOC step plus one sample at the overcurrent limit, or persist_min_ms at it."""
    i_max = cfg.oc_chg_mA if cfg.oc_chg_mA > cfg.oc_dsg_mA else cfg.oc_dsg_mA
    step = of_1e4(cap_mAs, cfg.persist_dsoc_cpct) + i_max * cfg.max_dt_ms // 1000
    t_s = cfg.persist_min_ms // 1000
    early = cap_mAs if t_s >= cap_mAs // i_max else i_max * t_s
    w = step if step > early else early
    return w if w < cap_mAs else cap_mAs
