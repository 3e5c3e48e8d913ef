"""Persisted estimator state (bms_state.json): atomic write, tolerant read.

The file holds the counted charge, its uncertainty, the learned capacity,
cycle and learning counters, the hysteresis branch, the sample clock, the
fault log and the capacity-learning anchor (optional: files without it, e.g.
written by older firmware or the host's emulator, load with no anchor). Charge
counts are in mAs of charge held by the cell (current is positive on discharge).
A missing, unreadable, truncated or out-of-range file gives None and a flag; it
never raises. Bms imports this module only while it boots and then drops it (see
bms.forget); the state file is written by Bms.save() with config.write_json_atomic, which
keeps it loadable through a power cut at any point.
"""

import json

from bms.config import read_text

VERSION = 1
_F_SOC_RESTORED = 1 << 5  # STATE flag bit, as in faults.py

STATE_MISSING = 2
STATE_CORRUPT = 4

# key: (lo, hi) for the int fields
FIELDS = {
    "q_mAs": (-(1 << 29), 1 << 29),
    "unc_mAs": (0, 1 << 29),
    "cap_mAs": (1, 1 << 29),
    "cycle_count": (0, 65535),
    "thr_mAs": (0, 1 << 29),
    "learn_count": (0, 65535),
    "branch": (-1, 1),
    "known": (0, 1),
    "clock_s": (0, 1 << 30),
}

# Optional int fields: the last calibration point (SOC, uncertainty) and the charge
# counted since it; anc_ok 0 means none.
OPTIONAL = {
    "anc_ok": (0, 1),
    "anc_cpct": (-10000, 20000),
    "anc_unc_cpct": (0, 10000),
    "anc_net_mAs": (-(1 << 29), 1 << 29),
}


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
    return isinstance(d.get("fault_log", []), list)


def load_state(path):
    """Return (dict or None, flags): flags STATE_MISSING or STATE_CORRUPT when None.

    Falls back to path + ".tmp" when `path` is missing (config.read_text).
    """
    text = read_text(path)
    if text is None:
        return None, STATE_MISSING
    try:
        d = json.loads(text)
    except (ValueError, TypeError):
        return None, STATE_CORRUPT
    if not _check(d):
        return None, STATE_CORRUPT
    return d, 0


def restore(bms, d):
    """Put a checked state dict into a freshly built Bms; False if it does not fit its config."""
    lrn = bms.learner
    lo, hi = lrn.bounds(bms.cfg)
    cap = d["cap_mAs"]
    if cap < lo or cap > hi:
        return False  # made for another cell or limits: do not trust any of it
    q = d["q_mAs"]
    if q < -cap or q > 2 * cap:
        return False
    lrn.cap_mAs = cap
    lrn.cycle_count = d["cycle_count"]
    lrn.thr_mAs = d["thr_mAs"] % cap
    lrn.learn_count = d["learn_count"]
    lrn.anchor_ok = bool(d.get("anc_ok", 0))
    lrn.anchor_cpct = d.get("anc_cpct", 0)
    lrn.anchor_unc_cpct = d.get("anc_unc_cpct", 0)
    lrn.net_mAs = d.get("anc_net_mAs", 0)
    bms.counter.set_mAs(q)
    est = bms.est
    est.unc_mAs = min(d["unc_mAs"], cap)
    est.branch = d["branch"]
    est.known = bool(d["known"]) and est.branch >= 0
    est.rev_dir = est.branch
    est.need_init = False
    est.need_check = True
    est.flags |= _F_SOC_RESTORED
    bms.clock_s = d["clock_s"]
    bms.log.load(d.get("fault_log", []))
    return True
