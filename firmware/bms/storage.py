"""Persisted estimator state (bms_state.json): atomic write, tolerant read.

The file holds the counted charge, its uncertainty, the learned capacity,
cycle and learning counters, the hysteresis branch, the sample clock and the
fault log. Charge counts are in mAs of charge held by the cell (current is
positive on discharge). A missing, unreadable, truncated or out-of-range file
gives None and a flag; it never raises.
"""

import json

from bms.config import write_json_atomic

VERSION = 1

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


def _check(d):
    if not isinstance(d, dict) or d.get("v") != VERSION:
        return False
    for k in FIELDS:
        v = d.get(k)
        if not isinstance(v, int) or isinstance(v, bool):
            return False
        lo, hi = FIELDS[k]
        if v < lo or v > hi:
            return False
    return isinstance(d.get("fault_log", []), list)


def load_state(path):
    """Return (dict or None, flags): flags STATE_MISSING or STATE_CORRUPT when None."""
    text = None
    for p in (path, path + ".tmp"):
        # a crash between remove and rename leaves only the .tmp (see write_json_atomic)
        try:
            with open(p) as f:
                text = f.read()
            break
        except OSError:
            continue
    if text is None:
        return None, STATE_MISSING
    try:
        d = json.loads(text)
    except (ValueError, TypeError):
        return None, STATE_CORRUPT
    if not _check(d):
        return None, STATE_CORRUPT
    return d, 0


def save_state(path, d):
    """Write atomically; raises OSError when the filesystem refuses."""
    d["v"] = VERSION
    write_json_atomic(path, d)
