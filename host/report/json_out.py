"""JSON the way every command writes it (stdout under --json, summary files).

The convention (README, "Machine-readable output"): an object at the top level; wall
time in `wall_s`; a listing (`--list`, `boards`) as a list of objects each with a
`name` and a `description`; an error as {"error", "source", "field", "reason",
"exit_code"}. Numbers carry no binary-float noise: a float is written with at most
SIGNIFICANT_DIGITS significant digits (2000.4, never 2000.3999999999999; the quantities
we report are known to far fewer digits), and a value that is not finite (NaN, inf,
which JSON cannot hold) is null.
"""

from __future__ import annotations

import json
import math
from typing import Any

SIGNIFICANT_DIGITS = 12


def tidy(value: Any) -> Any:
    """`value` with every float rounded to SIGNIFICANT_DIGITS and non-finite floats None."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")
    if isinstance(value, dict):
        return {str(k): tidy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [tidy(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return tidy(value.item())
    return value


def dumps(value: dict[str, Any], *, indent: int | None = 2) -> str:
    """The JSON text of a top-level object, tidied."""
    if not isinstance(value, dict):
        raise TypeError(f"a command's JSON is an object at the top level, not {type(value)}")
    return json.dumps(tidy(value), indent=indent, allow_nan=False)
