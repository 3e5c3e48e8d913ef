"""host.firmware_config: the generated bms_config.json is what the real firmware accepts."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from cellmodel import load_cell
from cellmodel.errors import InputError
from host.firmware_config import build_config, firmware_rules
from tests.firmware.bms_harness import firmware_module
from tests.firmware.mpy import run_mpy

_LOAD = """
from bms import config
c, f = config.load("bms_config.json")
print(f, c.error)
"""


def _firmware_verdict(tmp_path: Path, cfg: dict[str, object]) -> str:
    (tmp_path / "bms_config.json").write_text(json.dumps(cfg))
    return run_mpy(_LOAD, cwd=tmp_path).strip()


@pytest.mark.parametrize("cell", ["sisn-lco-2ah", "sisn-lco-2ah-4s"])
def test_firmware_accepts_the_generated_config(tmp_path: Path, cell: str) -> None:
    design = load_cell(cell)
    cfg = build_config(design)
    assert cfg["n_cells"] == design.n_series
    assert cfg["window_top_dmAhg"] == round(design.limits.window_top_mAh_g * 10)
    assert cfg["capacity_mAh"] == round(design.capacity_Ah * 1000)
    assert len(cfg["ocv_chg_mV"]) == len(design.ocv.soc)
    assert _firmware_verdict(tmp_path, cfg) == "0 None"


def test_generated_config_covers_every_firmware_key() -> None:
    defaults = firmware_module("bms.config").DEFAULTS
    assert set(build_config(load_cell("sisn-lco-2ah"))) == set(defaults)


def test_host_uses_the_limits_the_firmware_runs_with(tmp_path: Path) -> None:
    # The host loads the firmware's own rules file; check it against what MicroPython
    # reports from the firmware itself.
    out = run_mpy(
        "from bms import config_rules as r\nimport json\n"
        "print(json.dumps({'limits': r.LIMITS, 'defaults': r.DEFAULTS}))",
        cwd=tmp_path,
    )
    on_chip = json.loads(out)
    rules = firmware_rules()
    assert {k: list(v) for k, v in rules.LIMITS.items()} == on_chip["limits"]
    assert on_chip["defaults"] == rules.DEFAULTS


def test_window_top_above_2200_is_refused_by_host_and_firmware(tmp_path: Path) -> None:
    design = load_cell("sisn-lco-2ah")
    bad = dataclasses.replace(
        design, limits=dataclasses.replace(design.limits, window_top_mAh_g=2300.0)
    )
    with pytest.raises(InputError) as err:
        build_config(bad)
    assert err.value.field == "limits.window_top_mAh_g"
    cfg = build_config(design)
    cfg["window_top_dmAhg"] = 23000
    verdict = _firmware_verdict(tmp_path, cfg)
    assert verdict.startswith("16 window_top_dmAhg:"), verdict


def test_board_sets_timing_and_sensor_count() -> None:
    from host.boards import load_board

    board = load_board("virtual")
    cfg = build_config(load_cell("sisn-lco-2ah-4s"), board)
    assert cfg["max_dt_ms"] == max(100, min(10000, 5 * board.sample_period_ms))
    assert cfg["n_temps"] == 4


def test_the_largest_configuration_fits_the_firmware_frame_buffer() -> None:
    """CONFIG replies and CONFIG_WRITE requests carry the whole configuration as JSON.

    Worst case: every key at the limit with the most characters and 32-point OCV tables
    of the widest values, in MicroPython's json.dumps layout (", " and ": ", as CPython's).
    A new configuration key must keep this within the firmware's buffer (docs/protocol.md).
    """
    rules = firmware_rules()
    worst: dict[str, object] = {
        k: lo if len(str(lo)) > len(str(hi)) else hi for k, (lo, hi) in rules.LIMITS.items()
    }
    worst.update(ocv_soc_cpct=[10000] * 32, ocv_chg_mV=[5000] * 32, ocv_dsg_mV=[5000] * 32)
    size = len(json.dumps(worst))
    max_payload = firmware_module("bms.codec").MAX_PAYLOAD
    print(f"largest CONFIG payload {size} B of {max_payload} B")
    assert size <= max_payload
