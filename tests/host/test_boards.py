"""Board files: the shipped ones load and convert; bad ones fail naming file and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cellmodel.errors import InputError
from host.boards import board_json, list_boards, load_board
from host.cli.main import main
from host.resources import boards_dir

# docs/internals.md fixes these keys.
BOARD_JSON_KEYS = {
    "name", "mcu", "mode", "pins", "adc_vref_mV", "adc_bits", "cell_divider_ppm",
    "shunt_uohm", "amp_gain", "current_sensor", "ina226_addr", "wdt_timeout_ms", "sample_period_ms",
}  # fmt: skip
PIN_KEYS = {
    "chg",
    "dsg",
    "led",
    "adc_cells",
    "adc_current",
    "adc_temps",
    "i2c_id",
    "i2c_sda",
    "i2c_scl",
    "bleed",
}


def test_shipped_boards_load_and_convert() -> None:
    boards = {b.name: b for b in list_boards()}
    assert set(boards) == {"pico", "pico_w", "esp32_devkitc", "qemu_cortex_m0", "virtual"}
    assert boards["pico"].mpy_arch == "armv6m" and boards["pico_w"].mpy_arch == "armv6m"
    assert boards["esp32_devkitc"].mpy_arch == "xtensawin"
    assert boards["virtual"].mpy_arch == "x64" and boards["virtual"].is_virtual
    for board in boards.values():
        data = board_json(board)
        assert set(data) == BOARD_JSON_KEYS
        assert set(data["pins"]) == PIN_KEYS
        assert json.loads(json.dumps(data)) == data
    assert board_json(boards["virtual"])["pins"]["chg"] is None
    assert board_json(boards["pico_w"])["pins"]["led"] == "LED"
    assert board_json(boards["pico"])["pins"]["bleed"] == [6, 7]


def _variant(tmp_path: Path, old: str, new: str, name: str = "pico") -> Path:
    text = (boards_dir() / "pico.toml").read_text()
    assert old in text
    path = tmp_path / f"{name}.toml"
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "field", "reason"),
    [
        ('mpy_arch = "armv6m"', 'mpy_arch = "arm64"', "mpy_arch", "not one of"),
        ('mcu = "rp2040"', 'mcu = "stm32"', "mcu", "not one of"),
        ("bits = 16 ", "bits = 24 ", "adc.bits", "outside 8..16"),
        ("chg = 14 ", "chg = 26 ", "pins.adc_cells", "already used by chg"),
        ("chg = 14 ", "chgg = 14 ", "pins.chgg", "unknown key"),
        ('sensor = "ina226"', 'sensor = "hall"', "current.sensor", "not one of"),
        ("i2c_sda = 4\n", "", "pins.i2c_sda", "needs i2c_id"),
        ("wdt_timeout_ms = 0 ", "wdt_timeout_ms = 9000 ", "timing.wdt_timeout_ms", "0..8388"),
        ("vref_mV = 3300", 'vref_mV = "3.3 V"', "adc.vref_mV", "must be an integer"),
        ('micropython_min = "1.23.0"', 'micropython_min = "latest"', "micropython_min", "version"),
        ("shunt_uohm = 2000 ", "shunt_uohm = 0 ", "current.shunt_uohm", "shunt value"),
        ("dsg = 15 ", "", "pins.dsg", "switch pins"),
        # the firmware counts at most 10 s per sample (max_dt_ms): a slower board is all gaps
        (
            "sample_period_ms = 1000",
            "sample_period_ms = 20000",
            "timing.sample_period_ms",
            "10..10000",
        ),
        ("bleed_mohm = 33000", "bleed_mohm = 10", "balancing.bleed_mohm", "1000..1000000"),
        ("bleed = [6, 7]", "bleed = [6]", "pins.bleed", "one bleed pin per cell: 1 for the 2"),
        ("bleed = [6, 7]", "bleed = [6, 7, 8]", "pins.bleed", "3 for the 2 cell(s)"),
    ],
)
def test_bad_board_file_names_file_and_field(
    tmp_path: Path, old: str, new: str, field: str, reason: str
) -> None:
    path = _variant(tmp_path, old, new)
    with pytest.raises(InputError) as info:
        load_board(path)
    assert info.value.source == str(path)
    assert info.value.field == field
    assert reason in info.value.reason


def test_name_must_match_file_and_toml_must_parse(tmp_path: Path) -> None:
    path = _variant(tmp_path, 'name = "pico"', 'name = "pico"', name="other")
    with pytest.raises(InputError, match="differs from the file name"):
        load_board(path)
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    with pytest.raises(InputError) as info:
        load_board(broken)
    assert info.value.field == "toml"


def test_unknown_board_name_lists_the_known_ones() -> None:
    with pytest.raises(
        InputError, match="known: esp32_devkitc, pico, pico_w, qemu_cortex_m0, virtual"
    ):
        load_board("arduino")


def test_cli_boards_json_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["boards", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["boards"]
    assert [b["name"] for b in listed] == [
        "esp32_devkitc",
        "pico",
        "pico_w",
        "qemu_cortex_m0",
        "virtual",
    ]
    assert listed[1]["board_json"]["pins"]["chg"] == 14
    assert main(["boards"]) == 0
    assert "xtensawin" in capsys.readouterr().out


def test_cli_flash_unknown_board_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flash", "--board", "nope", "--port", "/dev/null", "--json"]) == 2
    assert "unknown board" in json.loads(capsys.readouterr().out)["error"]
