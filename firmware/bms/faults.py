"""Fault, warning and flag bit numbers (docs/protocol.md), and what each fault blocks.

The host reads this file as the one source of these names (host/protocol/faults.py); it is
not flashed (host.image.HOST_ONLY): the firmware folds the bits in as consts, and
tests/firmware/test_fault_consts.py checks each copy against this table.
"""

try:
    from micropython import const  # pyright: ignore[reportAssignmentType]
except ImportError:

    def const(x):
        return x


OV = const(1 << 0)
UV = const(1 << 1)
OC_CHG = const(1 << 2)
OC_DSG = const(1 << 3)
SC = const(1 << 4)
OT_CHG = const(1 << 5)
UT_CHG = const(1 << 6)
OT_DSG = const(1 << 7)
UT_DSG = const(1 << 8)
OV_ABUSE = const(1 << 9)
UV_ABUSE = const(1 << 10)
WIN_TOP = const(1 << 11)
WIN_BOTTOM = const(1 << 12)
SENSOR_RANGE = const(1 << 13)
SENSOR_FROZEN = const(1 << 14)
LINK_LOST = const(1 << 15)
CONFIG = const(1 << 16)
CCL_EXCEEDED = const(1 << 17)
DCL_EXCEEDED = const(1 << 18)

N_FAULTS = const(19)

NAMES = (
    "OV",
    "UV",
    "OC_CHG",
    "OC_DSG",
    "SC",
    "OT_CHG",
    "UT_CHG",
    "OT_DSG",
    "UT_DSG",
    "OV_ABUSE",
    "UV_ABUSE",
    "WIN_TOP",
    "WIN_BOTTOM",
    "SENSOR_RANGE",
    "SENSOR_FROZEN",
    "LINK_LOST",
    "CONFIG",
    "CCL_EXCEEDED",
    "DCL_EXCEEDED",
)

_BOTH = const(SC | OV_ABUSE | UV_ABUSE | SENSOR_RANGE | SENSOR_FROZEN | LINK_LOST | CONFIG)
BLOCKS_CHG = const(OV | OC_CHG | OT_CHG | UT_CHG | WIN_TOP | CCL_EXCEEDED | _BOTH)
BLOCKS_DSG = const(UV | OC_DSG | OT_DSG | UT_DSG | WIN_BOTTOM | DCL_EXCEEDED | _BOTH)
# Abuse-level faults stay set until cleared by CLEAR_LATCHED with a reason, whatever the
# readings do, across resets and power cuts (they are persisted in the state file).
LATCHING = const(SC | OV_ABUSE | UV_ABUSE)

# Warning bits (STATE.warnings)
W_SOC_UNCERTAIN = const(1 << 0)
W_BRANCH_UNKNOWN = const(1 << 1)
W_STATE_DEFAULTS = const(1 << 2)
W_BALANCING = const(1 << 3)
W_NEAR_WINDOW_TOP = const(1 << 4)

WARNING_NAMES = (
    "SOC_UNCERTAIN",
    "BRANCH_UNKNOWN",
    "STATE_DEFAULTS",
    "BALANCING",
    "NEAR_WINDOW_TOP",
)

# STATE.flags bits
F_CHG_ON = const(1 << 0)
F_DSG_ON = const(1 << 1)
F_RESTING = const(1 << 2)
F_BRANCH_KNOWN = const(1 << 3)
F_BRANCH_DSG = const(1 << 4)
F_SOC_RESTORED = const(1 << 5)
F_SOC_FROM_VOLTAGE = const(1 << 6)
F_FULL_CAL = const(1 << 7)
F_EMPTY_CAL = const(1 << 8)
F_VOLTAGE_CORRECTION = const(1 << 9)
# Not in protocol v1's table yet: the last sample interval exceeded max_dt_ms and was clamped.
F_TIME_GAP = const(1 << 10)

# HELLO_REPLY boot flags
BOOT_STATE_RESTORED = const(1 << 0)
BOOT_STATE_MISSING = const(1 << 1)
BOOT_STATE_CORRUPT = const(1 << 2)
BOOT_CONFIG_DEFAULTS = const(1 << 3)
BOOT_CONFIG_REJECTED = const(1 << 4)


def names(bits):
    """Names of the fault bits set in `bits` (for logs and tests, not the sample path)."""
    return [NAMES[i] for i in range(N_FAULTS) if bits & (1 << i)]
