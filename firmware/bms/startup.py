"""The estimator's start: check a persisted state against the first plausible voltages, or
estimate each cell from them. Imported for the first plausible sample after boot (or after a
new cell count or capacity) and dropped from the heap afterwards (bms.forget).

Boot with a persisted state (check_restored): each cell's first voltage is read on the
restored branch (between both when it is unknown). A cell near rest further than
boot_check_cpct from its restored SOC makes the whole file stale (the cells were charged,
discharged or swapped while the BMS was off), and the boot proceeds as without one.
Otherwise the count is kept (the margin is wide because a cell just powered up may not be
relaxed yet: after a charge it reads high, after a discharge low), and each cell's credible
interval reaches across its reading's whole interval (the extensions of soc.py): a pack
charged or discharged while the BMS was off by less than that leaves no trace at boot, so a
restored count is kept as the estimate but claimed no closer than the reading allows. On
a table at its stated offset (ocv_unc_mV), states 4-13 % stale read within their readings'
intervals, and the restored 0.5 % held the truth in 66-94 % of the samples (9 of 236 probe
runs); the extensions stay until a full or empty calibration (soc.py keeps them through
rested readings). Under load nothing is checked.

The restored branch is doubted (branch_doubtful) when a cell reads on it where no fresh
state can: on the charge branch emptier than its count, on the discharge branch fuller, by more
than the table, the count's half-width and the hysteresis residual allow (relaxation moves
the other way). A cell moved towards the other branch while the BMS was off reads so, and
on silicon one that was charged, then discharged by a few percent while off reads on the
old branch within the margin above: a 1,500 mAh/g window cell at 80 % on its discharge
branch, restored at 62 % on the charge branch, read 54 % there and was kept, and its
charge passed the window top by 10 % (to 1,655 mAh/g). The file is stale then, and the
boot proceeds as without one, but each cell's SOC is its reading on the branch the file
names (the likelier: a crossing takes a charge and a discharge while the BMS was off), its
interval reaching the other branch's reading. (Keeping the count, stale states 6-10 %
low on their own branch stayed 6-10 % off through the first rest, which clamps between
the branches rather than reading on one.)

Boot without a persisted state, or with a stale one (init_from_voltage): the branch is
unknown, so each cell lies between its charge-branch reading (the lower SOC) and its
discharge-branch reading (the higher); that interval is its credible interval
(soc.SocEstimator.from_interval). Its SOC is the reading of the one branch a completed move
can have left it on when the other is ruled out (on the charge branch a cell was charged
by at least branch_switch_cpct, so its reading there must be at least that; on the
discharge branch it was discharged as much, so its reading there must be at most 100 %
less that), else the middle. The window protections use the side of the interval that is
safe for each direction (limits.py): the top's bound reaches the fuller reading; the bottom
trips only when even the fuller reading is at the bottom, which keeps a cell with usable
charge from being cut. Current is positive on discharge.
"""

from bms.intmath import clamp, of_1e4
from bms.ocv import CHARGE
from bms.soc import soc_of

_F_SOC_FROM_VOLTAGE = 1 << 6  # STATE flag bit, as in faults.py


def init_from_voltage(est, current_mA, cells, n, side=-1):
    """Each cell from its branch interval (its SOC the reading of side, when given); the
    branch stays unknown, pointed to when every cell points the same way."""
    cfg = est.cfg
    hint = -2
    for k in range(n):
        est.interval(cells[k] + est.ir_mV(k, current_mA, cells[k]), cfg.ocv_unc_mV)
        b = est.from_interval(k, side)
        hint = b if hint == -2 or hint == b else -1
    est.calibrated(n)
    est.confirm(hint)  # the branch and its counts as after a switch, but not known
    est.known = False
    est.need_init = False
    est.need_check = False
    est.flags |= _F_SOC_FROM_VOLTAGE
    est.learner.invalidate()


def check_restored(est, current_mA, cells, n):
    """A restored state against the first plausible sample (see the module docstring)."""
    est.need_check = False
    cfg = est.cfg
    if current_mA > cfg.rest_current_mA or current_mA < -cfg.rest_current_mA:
        return
    cap = est.learner.cap
    margin = cfg.boot_check_cpct
    for k in range(n):
        mV = cells[k] + est.ir_mV(k, current_mA, cells[k])
        if est.known:
            u = est.read(est.branch, mV, cfg.ocv_unc_mV) + cfg.ocv_unc_cpct
            lo = est.reading_cpct
            hi = lo
        else:
            est.interval(mV, cfg.ocv_unc_mV)
            lo = est.r_lo - est.u_lo
            hi = est.r_hi + est.u_hi
            u = 0
        count = soc_of(est.q[k], cap[k])
        off = lo - count if count < lo else (count - hi if count > hi else 0)
        if off > margin:
            init_from_voltage(est, current_mA, cells, n)
            return
        # kept: its interval reaches the reading's whole interval, beyond its own half-width
        b = est.base[k]
        e = of_1e4(cap[k], clamp(hi + u - count, 10000)) - b
        if e > est.ext_up[k]:
            est.ext_up[k] = e
        e = of_1e4(cap[k], clamp(count - lo + u, 10000)) - b
        if e > est.ext_dn[k]:
            est.ext_dn[k] = e
    if est.known and branch_doubtful(est, current_mA, cells, n):
        # stale, and maybe across: each cell from both branches' readings, at the one the
        # file names (the likelier: a crossing took a charge and a discharge while off)
        init_from_voltage(est, current_mA, cells, n, est.branch)
        return
    est.sum_unc(n)


def branch_doubtful(est, current_mA, cells, n):
    """Some cell reads on the restored branch where no fresh state can (module docstring):
    off its branch by at most the residual (hysteresis_mV, towards the other branch), within
    ocv_unc_mV of the table, and within the count's half-width, a fresh cell on the charge
    branch reads there at least as full as its count, on the discharge branch at most."""
    cfg = est.cfg
    est.sum_unc(n)  # the counts' half-widths and SOCs as restored (hysteresis_mV reads one)
    chg = est.branch == CHARGE
    h = est.hysteresis_mV()
    h = h if chg else -h
    for k in range(n):
        mV = cells[k] + est.ir_mV(k, current_mA, cells[k]) + h
        u = est.read(est.branch, mV, cfg.ocv_unc_mV) + cfg.ocv_unc_cpct + est.unc_cpct[k]
        d = soc_of(est.q[k], est.learner.cap[k]) - est.reading_cpct
        if (d if chg else -d) > u:
            return True
    return False
