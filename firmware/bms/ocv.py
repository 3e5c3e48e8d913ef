"""Integer OCV branch tables (mV over SOC in 0.01 %) and interpolation both ways.

Silicon keeps a charge/discharge OCV gap at rest, so there are two tables; the
caller says which branch applies. Products stay below 5000 mV x 10000 cpct.

The tables hold the OCV at 25 degC; shift_mV is how far the cells' OCV lies off them now
(the entropic coefficient ocv_dudt_uV_K times the temperature's distance from 25 degC,
set each sample by core.py): both directions of lookup apply it. Uncompensated, a table
read at 2 degC on the default cell (-0.3 mV/K) was 7 mV off, a third of ocv_unc_mV.
"""

from array import array

CHARGE = 0
DISCHARGE = 1
_EXT_CPCT = 1000


class OcvTables:
    def __init__(self, soc_cpct, chg_mV, dsg_mV):
        self.n = len(soc_cpct)
        self.soc = array("h", soc_cpct)
        self.mv = (array("h", chg_mV), array("h", dsg_mV))
        self.shift_mV = 0  # the OCV off the tables now (their temperature shift)

    def mV_at(self, branch, soc_cpct):
        """OCV of `branch` at soc_cpct (clamped to the table's ends), shifted."""
        s = self.soc
        v = self.mv[branch]
        n = self.n
        if soc_cpct <= s[0]:
            return v[0] + self.shift_mV
        if soc_cpct >= s[n - 1]:
            return v[n - 1] + self.shift_mV
        i = 1
        while s[i] < soc_cpct:
            i += 1
        s0 = s[i - 1]
        v0 = v[i - 1]
        return v0 + (v[i] - v0) * (soc_cpct - s0) // (s[i] - s0) + self.shift_mV

    def _soc_at(self, branch, mV):
        """SOC in cpct where `branch`'s table reads mV (clamped to 0..10000 at the ends)."""
        s = self.soc
        v = self.mv[branch]
        n = self.n
        if mV <= v[0]:
            return s[0]
        if mV >= v[n - 1]:
            return s[n - 1]
        i = 1
        while v[i] < mV:
            i += 1
        v0 = v[i - 1]
        s0 = s[i - 1]
        return s0 + (s[i] - s0) * (mV - v0) // (v[i] - v0)

    def soc_ext(self, branch, mV):
        """SOC in cpct where `branch` reads an OCV of mV (shifted back to the tables),
        extended beyond the table's ends by the end segments' slopes, at most _EXT_CPCT past
        an end (a reading there is a guess)."""
        mV -= self.shift_mV
        s = self.soc
        v = self.mv[branch]
        n = self.n
        if mV < v[0]:
            d = v[0] - mV
            d = d if d < 5000 else 5000  # keeps the product <= 5e7
            x = s[0] - (s[1] - s[0]) * d // (v[1] - v[0])
            return x if x > s[0] - _EXT_CPCT else s[0] - _EXT_CPCT
        if mV > v[n - 1]:
            k = n - 1
            d = mV - v[k]
            d = d if d < 5000 else 5000
            x = s[k] + (s[k] - s[k - 1]) * d // (v[k] - v[k - 1])
            return x if x < s[k] + _EXT_CPCT else s[k] + _EXT_CPCT
        return self._soc_at(branch, mV)
