"""The standalone board adapters (RP2040, ESP32, INA226) under real MicroPython.

The chips are not here, so `machine` is the simulated module in
mpylib/machine_sim: the tests set analog inputs and I2C registers as a real
front end would present them and check what the firmware measures (units,
signs: current positive on discharge) and which pins it drives.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from host.boards import board_json, load_board
from tests.firmware.bms_harness import MPYLIB, run_rig

SIM = MPYLIB / "machine_sim"


def _board(tmp_path: Path, name: str, **changes: object) -> None:
    board = board_json(load_board(name))
    board.update(changes)
    (tmp_path / "board.json").write_text(json.dumps(board))


def _run(script: str, tmp_path: Path) -> str:
    return run_rig(f"import sys\nsys.path.insert(0, {str(SIM)!r})\n" + script, tmp_path)


# Pico (2 cells): cell taps on ADC 26 and 27 behind dividers of 0.3; TMP36 on 28;
# INA226 at 0x40 over a 2 mOhm shunt (2.5 uV per bit of its shunt register).
_PICO_READINGS = """
import json, machine
from array import array
board = json.load(open("board.json"))
div = board["cell_divider_ppm"]
machine.ADC_UV[26] = 3700000 * div // 1000000            # tap 1: 3.700 V
machine.ADC_UV[27] = (3700000 + 3600000) * div // 1000000  # tap 2: 7.300 V
machine.ADC_UV[28] = 750000                               # 25.0 degC
def ina(current_mA):
    raw = current_mA * board["shunt_uohm"] // 2500          # register counts
    raw &= 0xFFFF
    machine.I2C_REGS[(board["ina226_addr"], 1)] = bytes([raw >> 8, raw & 255])
cells = array("H", [0, 0])
temps = array("h", [0])
"""


def test_rp2040_measures_cells_temperature_and_signed_current(tmp_path: Path) -> None:
    _board(tmp_path, "pico", mode="standalone")
    out = _run(
        _PICO_READINGS
        + """
from adapters.rp2040 import Rp2040Board
io = Rp2040Board(board)
ina(1500)
i_dsg = io.measure(cells, 2, temps, 1)
c1, c2, t1 = cells[0], cells[1], temps[0]
ina(-2000)
i_chg = io.measure(cells, 2, temps, 1)
print(c1, c2, t1, i_dsg, i_chg)
""",
        tmp_path,
    )
    c1, c2, t1, i_dsg, i_chg = (int(v) for v in out.split())
    # 16-bit ADC over 3.3 V behind a 0.3 divider: a count is 0.17 mV of tap voltage
    assert abs(c1 - 3700) <= 2 and abs(c2 - 3600) <= 2
    assert abs(t1 - 250) <= 1
    assert i_dsg == 1500 and i_chg == -2000


def test_esp32_reads_calibrated_microvolts(tmp_path: Path) -> None:
    _board(tmp_path, "esp32_devkitc", mode="standalone")
    out = _run(
        """
import json, machine
from array import array
board = json.load(open("board.json"))
div = board["cell_divider_ppm"]
machine.ADC_UV[34] = 4100000 * div // 1000000
machine.ADC_UV[35] = 8150000 * div // 1000000
machine.ADC_UV[39] = 500000
machine.I2C_REGS[(board["ina226_addr"], 1)] = bytes([0, 0])
from adapters.esp32 import Esp32Board
io = Esp32Board(board)
cells = array("H", [0, 0]); temps = array("h", [0])
io.measure(cells, 2, temps, 1)
print(cells[0], cells[1], temps[0], io.cell_adc[0].atten == machine.ADC.ATTN_11DB)
""",
        tmp_path,
    )
    c1, c2, t1, atten = out.split()
    assert abs(int(c1) - 4100) <= 4 and abs(int(c2) - 4050) <= 4
    assert int(t1) == 0 and atten == "True"


def test_switches_bleed_pins_and_watchdog(tmp_path: Path) -> None:
    _board(tmp_path, "pico", mode="standalone", wdt_timeout_ms=4000)
    out = _run(
        _PICO_READINGS
        + """
from adapters.rp2040 import Rp2040Board
io = Rp2040Board(board)
p = board["pins"]
closed_at_start = [machine.PIN_LEVELS[p["chg"]], machine.PIN_LEVELS[p["dsg"]]]
io.apply(True, False, 0b10)
after = [machine.PIN_LEVELS[k] for k in [p["chg"], p["dsg"], p["led"]] + p["bleed"]]
io.feed_wdt(); io.feed_wdt()
io.open_all()
opened = [machine.PIN_LEVELS[k] for k in [p["chg"], p["dsg"]] + p["bleed"]]
print(closed_at_start, after, opened, machine.WDT_STATE["timeout"], machine.WDT_STATE["feeds"])
""",
        tmp_path,
    )
    assert out.split("] ")[0] + "]" == "[0, 0]"  # never closed before the BMS decides
    assert "[1, 0, 1, 0, 1]" in out  # CHG on, DSG off, LED on, bleed cell 2 only
    assert "[0, 0, 0, 0]" in out
    assert out.split()[-2:] == ["4000", "2"]


@pytest.mark.parametrize(("cell_uV", "fault"), [(4230000, "OV"), (2700000, "UV")])
def test_standalone_protection_opens_the_switch_pin(
    tmp_path: Path, cell_uV: int, fault: str
) -> None:
    """The main loop's standalone path: measure, step the BMS, drive the pins."""
    _board(tmp_path, "pico", mode="standalone", sample_period_ms=500)
    (tmp_path / "bms_config.json").write_text(json.dumps({"n_cells": 2, "n_temps": 1}))
    out = _run(
        _PICO_READINGS
        + f"""
machine.ADC_UV[26] = {cell_uV} * div // 1000000
machine.ADC_UV[27] = ({cell_uV} + 3700000) * div // 1000000
ina(0)
import main
app, io, b = main.setup()
p = board["pins"]
now = 0
for k in range(12):  # 6 s of samples every 500 ms
    now += 500
    current = io.measure(app.cell_mV, 2, app.temp_ddegC, 1)
    app.local_sample(500, current, 2, 1, now)
from bms import faults
names = [n for n, bit in faults.FAULT_BITS.items() if app.bms.faults & (1 << bit)] \\
    if hasattr(faults, "FAULT_BITS") else []
print(machine.PIN_LEVELS[p["chg"]], machine.PIN_LEVELS[p["dsg"]], app.bms.faults, " ".join(names))
""",
        tmp_path,
    )
    chg, dsg, bits = (int(v) for v in out.split()[:3])
    fault_bit = {"OV": 0, "UV": 1}[fault]  # docs/protocol.md fault bits
    assert bits & (1 << fault_bit), out
    if fault == "OV":
        assert chg == 0 and dsg == 1
    else:
        assert chg == 1 and dsg == 0


@pytest.mark.parametrize("current_mA", [3000, -1500, 0])
def test_adc_current_through_the_shunt_amplifier(tmp_path: Path, current_mA: int) -> None:
    _board(tmp_path, "esp32_devkitc", mode="standalone", current_sensor="adc")
    out = _run(
        f"""
import json, machine
from array import array
board = json.load(open("board.json"))
# amplifier output: mid-rail + I x R_shunt x gain (discharge positive)
shunt_uV = {current_mA} * board["shunt_uohm"] // 1000
machine.ADC_UV[36] = board["adc_vref_mV"] * 500 + shunt_uV * board["amp_gain"]
from adapters.esp32 import Esp32Board
io = Esp32Board(board)
print(io.measure(array("H", [0, 0]), 2, array("h", [0]), 1))
""",
        tmp_path,
    )
    assert abs(int(out) - current_mA) <= 1
