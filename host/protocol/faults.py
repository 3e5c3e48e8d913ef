"""Fault, warning and STATE-flag bit names of the firmware (docs/protocol.md).

Mirrors firmware/bms/faults.py; tests/host/test_protocol_faults.py checks that
the two agree bit for bit.
"""

from __future__ import annotations

FAULT_BITS: dict[str, int] = {
    "OV": 0,
    "UV": 1,
    "OC_CHG": 2,
    "OC_DSG": 3,
    "SC": 4,
    "OT_CHG": 5,
    "UT_CHG": 6,
    "OT_DSG": 7,
    "UT_DSG": 8,
    "OV_ABUSE": 9,
    "UV_ABUSE": 10,
    "WIN_TOP": 11,
    "WIN_BOTTOM": 12,
    "SENSOR_RANGE": 13,
    "SENSOR_FROZEN": 14,
    "LINK_LOST": 15,
    "CONFIG": 16,
}

WARNING_BITS: dict[str, int] = {
    "SOC_UNCERTAIN": 0,
    "BRANCH_UNKNOWN": 1,
    "STATE_DEFAULTS": 2,
    "BALANCING": 3,
    "NEAR_WINDOW_TOP": 4,
}

# STATE `flags` bits.
FLAG_BITS: dict[str, int] = {
    "CHG_ON": 0,
    "DSG_ON": 1,
    "RESTING": 2,
    "BRANCH_KNOWN": 3,
    "BRANCH_DISCHARGE": 4,
    "SOC_RESTORED": 5,
    "SOC_FROM_VOLTAGE": 6,
    "FULL_CAL": 7,
    "EMPTY_CAL": 8,
    "V_CORRECTION": 9,
    "TIME_GAP": 10,  # the interval since the last sample exceeded max_dt_ms and was clamped
}

# HELLO_REPLY / BOOT boot-flag bits.
BOOT_FLAG_BITS: dict[str, int] = {
    "STATE_RESTORED": 0,
    "STATE_MISSING": 1,
    "STATE_CORRUPT": 2,
    "CONFIG_DEFAULTS": 3,
    "CONFIG_REJECTED": 4,
}


def names(bits: int, table: dict[str, int]) -> tuple[str, ...]:
    """Names of the set bits in `bits`, lowest bit first; unknown bits as "BIT<n>"."""
    known = {bit: name for name, bit in table.items()}
    return tuple(known.get(b, f"BIT{b}") for b in range(bits.bit_length()) if bits >> b & 1)


def bits_of(names_: tuple[str, ...] | list[str], table: dict[str, int]) -> int:
    """The inverse of `names`; raises KeyError on an unknown name."""
    value = 0
    for name in names_:
        value |= 1 << table[name]
    return value
