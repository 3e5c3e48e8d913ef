# pyright: reportMissingImports=false
"""MicroPython-side test rig: a Bms on a config with changes, fed samples by sample time.

Imported by the scripts that tests/firmware/test_*.py run under the unix port
(run_mpy(..., extra_path=[MPYLIB])). Current is positive on discharge.
"""

from array import array

from bms.config import Config
from bms.core import Bms

# Persistence off unless a test asks for it: writes would show up in allocation counts.
QUIET = {"persist_min_ms": 86400000, "persist_interval_ms": 86400000, "persist_dsoc_cpct": 10000}


def make_cfg(changes=None, quiet=True):
    cfg = Config()
    d = dict(QUIET) if quiet else {}
    if changes:
        for k in changes:
            d[k] = changes[k]
    if d:
        err = cfg.update(d)
        assert err is None, err
    return cfg


class Rig:
    def __init__(self, changes=None, state_path="bms_state.json", mV=3700, temp=250, quiet=True):
        self.cfg = make_cfg(changes, quiet)
        self.bms = Bms(self.cfg, state_path)
        self.n = self.cfg.n_cells
        self.nt = self.cfg.n_temps
        self.cells = array("H", [mV] * 16)
        self.temps = array("h", [temp] * 8)
        self.t_ms = 0

    def set(self, mV=None, temp=None):
        if mV is not None:
            for k in range(16):
                self.cells[k] = mV
        if temp is not None:
            for k in range(8):
                self.temps[k] = temp

    def step(self, dt_ms, current_mA, mV=None, temp=None):
        self.set(mV, temp)
        self.t_ms += dt_ms
        self.bms.step(dt_ms, self.cells, self.n, current_mA, self.temps, self.nt)
        return self.bms

    def run(self, seconds, current_mA, mV=None, dt_ms=1000):
        """Hold a current (and optionally a voltage) for `seconds` of sample time."""
        b = self.bms
        for _ in range(seconds * 1000 // dt_ms):
            self.step(dt_ms, current_mA, mV)
        return b

    def until(self, fault_bit, current_mA, mV=None, dt_ms=1000, limit_ms=3600000):
        """Step until `fault_bit` is set; return the sample time it took (ms) or -1."""
        t0 = self.t_ms
        while self.t_ms - t0 < limit_ms:
            self.step(dt_ms, current_mA, mV)
            if self.bms.faults & fault_bit:
                return self.t_ms - t0
        return -1


def put(b, soc_cpct, unc_cpct=50, branch=1):
    """Every cell at soc_cpct +- unc_cpct (a calibration), on `branch` (0 charge, 1
    discharge), known, after a long run along it: no hysteresis left to allow for."""
    e = b.est
    c = b.learner.cap[0]
    for k in range(b.cfg.n_cells):
        e.set(k, c // 10000 * soc_cpct, c // 10000 * unc_cpct)
    e.calibrated(b.cfg.n_cells)
    e.branch = branch
    e.known = True
    e.net_mAs = 0
    e.peak_mAs = 0
    e.hyst_hi = 0
    e.hyst_mid = 0
