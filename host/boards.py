"""Board files (boards/NAME.toml): loading, validation and the board.json they become.

A board file names the MCU, the mpy-cross architecture, the MicroPython it
expects, the pins (switches, LED, ADC channels, I2C for an INA226), the ADC,
the current sensor, the serial link and the timing. Every error names the
file and the field (cellmodel.errors.InputError). Unknown keys are errors
too: a typo must not silently fall back to a default.

Current sign convention of the firmware these boards run: positive on
discharge.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cellmodel.errors import InputError, unknown_key
from cellmodel.files import TOML_CAP, check_input_file, loaded_once, read_text
from host.firmware_config import SAMPLE_PERIOD_MAX_MS
from host.resources import boards_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # pyright: ignore[reportMissingImports]

# "unix" and "qemu" are virtual boards (a MicroPython process, an emulated chip): no pins.
MCUS = ("rp2040", "esp32", "unix", "qemu")
# What `sys.platform` says on MicroPython running on each MCU: how the flasher recognises the
# board at a port before it writes a pin map that would drive the wrong pins.
MCU_PLATFORMS: dict[str, tuple[str, ...]] = {
    "rp2040": ("rp2",),
    "esp32": ("esp32",),
    "unix": ("linux", "darwin", "freebsd"),
    "qemu": ("qemu",),
}
MODES = ("link", "standalone")
CURRENT_SENSORS = ("adc", "ina226", "none")
# The architectures mpy-cross accepts for -march.
MPY_ARCHS = (
    "x86",
    "x64",
    "armv6",
    "armv6m",
    "armv7m",
    "armv7em",
    "armv7emsp",
    "armv7emdp",
    "xtensa",
    "xtensawin",
    "rv32imc",
    "rv64imc",
)
_NAME_RE = re.compile(r"^[a-z0-9_]+$")
_VERSION_RE = re.compile(r"^\d+\.\d+(\.\d+)?$")
_TOP_KEYS = {
    "name",
    "description",
    "mcu",
    "mpy_arch",
    "micropython_min",
    "micropython_firmware",
    "mode",
    "pins",
    "adc",
    "current",
    "link",
    "timing",
    "balancing",
}
_PIN_KEYS = {
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
_MAX_GPIO = 48
_MAX_CELLS = 16
_MAX_TEMPS = 8


@dataclass(frozen=True)
class BoardPins:
    """GPIO numbers (or a port's pin name such as "LED"); None when the board has none."""

    chg: int | str | None = None
    dsg: int | str | None = None
    led: int | str | None = None
    adc_cells: tuple[int, ...] = ()
    adc_current: int | None = None
    adc_temps: tuple[int, ...] = ()
    i2c_id: int | None = None
    i2c_sda: int | None = None
    i2c_scl: int | None = None
    bleed: tuple[int, ...] = ()
    """Balancing bleed switches, one GPIO per cell (cell 1 first); empty: no bleed hardware."""


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    mcu: str
    mpy_arch: str
    micropython_min: str
    micropython_firmware: str
    mode: str
    pins: BoardPins
    adc_vref_mV: int
    adc_bits: int
    cell_divider_ppm: int
    current_sensor: str
    shunt_uohm: int
    amp_gain: int
    """Gain (V/V) of the shunt amplifier in front of the ADC when current.sensor = "adc"."""
    ina226_addr: int | None
    serial: str
    baudrate: int
    wdt_timeout_ms: int
    sample_period_ms: int
    bleed_mohm: int
    """Each cell's bleed resistor with its switch: in link mode the host's emulated one."""
    source: Path = field(compare=False)

    @property
    def is_virtual(self) -> bool:
        return self.mcu == "unix"


class _Reader:
    """Typed access to one table of a board file, naming the field on error."""

    def __init__(self, source: Path, table: dict[str, Any], prefix: str = "") -> None:
        self.source = source
        self.table = table
        self.prefix = prefix

    def error(self, key: str, reason: str) -> InputError:
        return InputError(str(self.source), self.prefix + key, reason)

    def check_keys(self, allowed: set[str]) -> None:
        for key in self.table:
            if key not in allowed:
                raise self.error(key, unknown_key(key, sorted(allowed)))

    def sub(self, key: str) -> _Reader:
        value = self.table.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, "must be a table")
        return _Reader(self.source, value, f"{self.prefix}{key}.")

    def string(
        self, key: str, choices: tuple[str, ...] | None = None, default: str | None = None
    ) -> str:
        value = self.table.get(key, default)
        if value is None:
            raise self.error(key, "missing")
        if not isinstance(value, str) or not value:
            raise self.error(key, f"must be a non-empty string, got {value!r}")
        if choices is not None and value not in choices:
            raise self.error(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def integer(self, key: str, lo: int, hi: int, default: int | None = None) -> int:
        value = self.table.get(key, default)
        if value is None:
            raise self.error(key, "missing")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, got {value!r}")
        if not lo <= value <= hi:
            raise self.error(key, f"{value} is outside {lo}..{hi}")
        return value

    def optional_int(self, key: str, lo: int, hi: int) -> int | None:
        return None if key not in self.table else self.integer(key, lo, hi)

    def pin(self, key: str) -> int | str | None:
        value = self.table.get(key)
        if value is None or (isinstance(value, str) and value):
            return value
        return self.integer(key, 0, _MAX_GPIO)

    def int_list(self, key: str, lo: int, hi: int, max_len: int) -> tuple[int, ...]:
        value = self.table.get(key, [])
        if not isinstance(value, list):
            raise self.error(key, "must be a list of integers")
        if len(value) > max_len:
            raise self.error(key, f"at most {max_len} entries, got {len(value)}")
        for item in value:
            if isinstance(item, bool) or not isinstance(item, int) or not lo <= item <= hi:
                raise self.error(key, f"entry {item!r} is not an integer in {lo}..{hi}")
        return tuple(value)


def board_path(name_or_path: str | Path) -> Path:
    """A board name (boards/NAME.toml) or a path to a board file."""
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(text)
        if path.exists():  # a folder, a FIFO, a device: there, but refused unread
            return check_input_file(path, "--board", text, TOML_CAP)
        raise InputError("--board", text, "no such board file")
    path = boards_dir() / f"{text}.toml"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(boards_dir().glob("*.toml")))
        raise InputError("--board", text, f"unknown board (known: {known})")
    return path


@loaded_once
def load_board(name_or_path: str | Path) -> Board:
    """Load and validate a board file; raises InputError(path, field, reason)."""
    path = board_path(name_or_path)
    text = read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(path), "toml", f"not valid TOML: {exc}") from exc
    return parse_board(data, path)


def parse_board(data: dict[str, Any], path: Path) -> Board:
    top = _Reader(path, data)
    top.check_keys(_TOP_KEYS)
    name = top.string("name")
    if not _NAME_RE.match(name):
        raise top.error("name", "lower-case letters, digits and _ only")
    if name != path.stem:
        raise top.error("name", f"{name!r} differs from the file name {path.stem!r}")
    version = top.string("micropython_min")
    if not _VERSION_RE.match(version):
        raise top.error("micropython_min", f"{version!r} is not a version like 1.23.0")
    mcu = top.string("mcu", MCUS)
    mode = top.string("mode", MODES, default="link")

    pins_r = top.sub("pins")
    pins_r.check_keys(_PIN_KEYS)
    pins = BoardPins(
        chg=pins_r.pin("chg"),
        dsg=pins_r.pin("dsg"),
        led=pins_r.pin("led"),
        adc_cells=pins_r.int_list("adc_cells", 0, _MAX_GPIO, _MAX_CELLS),
        adc_current=pins_r.optional_int("adc_current", 0, _MAX_GPIO),
        adc_temps=pins_r.int_list("adc_temps", 0, _MAX_GPIO, _MAX_TEMPS),
        i2c_id=pins_r.optional_int("i2c_id", 0, 1),
        i2c_sda=pins_r.optional_int("i2c_sda", 0, _MAX_GPIO),
        i2c_scl=pins_r.optional_int("i2c_scl", 0, _MAX_GPIO),
        bleed=pins_r.int_list("bleed", 0, _MAX_GPIO, _MAX_CELLS),
    )
    _check_pin_clashes(pins_r, pins)

    adc = top.sub("adc")
    adc.check_keys({"vref_mV", "bits", "cell_divider_ppm"})
    current = top.sub("current")
    current.check_keys({"sensor", "shunt_uohm", "ina226_addr", "amp_gain"})
    sensor = current.string("sensor", CURRENT_SENSORS)
    link = top.sub("link")
    link.check_keys({"serial", "baudrate"})
    timing = top.sub("timing")
    timing.check_keys({"wdt_timeout_ms", "sample_period_ms"})
    balancing = top.sub("balancing")
    balancing.check_keys({"bleed_mohm"})

    board = Board(
        name=name,
        description=top.string("description"),
        mcu=mcu,
        mpy_arch=top.string("mpy_arch", MPY_ARCHS),
        micropython_min=version,
        micropython_firmware=top.string("micropython_firmware"),
        mode=mode,
        pins=pins,
        adc_vref_mV=adc.integer("vref_mV", 1000, 5000),
        adc_bits=adc.integer("bits", 8, 16),
        cell_divider_ppm=adc.integer("cell_divider_ppm", 1, 1_000_000),
        current_sensor=sensor,
        shunt_uohm=current.integer("shunt_uohm", 0, 1_000_000, default=0),
        amp_gain=current.integer("amp_gain", 1, 1000, default=1),
        ina226_addr=current.optional_int("ina226_addr", 0x40, 0x4F),
        serial=link.string("serial"),
        baudrate=link.integer("baudrate", 300, 4_000_000, default=115200),
        # The RP2040 watchdog tops out at 8388 ms; the ESP32's is longer, but
        # one limit keeps the board files interchangeable.
        wdt_timeout_ms=timing.integer("wdt_timeout_ms", 0, 8388, default=0),
        sample_period_ms=timing.integer("sample_period_ms", 10, SAMPLE_PERIOD_MAX_MS, default=1000),
        # 33 ohm: the reference boards' bleed resistors, and the emulator's default
        bleed_mohm=balancing.integer("bleed_mohm", 1000, 1_000_000, default=33_000),
        source=path,
    )
    _check_consistency(top, board)
    return board


def _check_pin_clashes(reader: _Reader, pins: BoardPins) -> None:
    used: dict[int | str, str] = {}
    named: list[tuple[str, int | str | None]] = [
        ("chg", pins.chg),
        ("dsg", pins.dsg),
        ("led", pins.led),
        ("adc_current", pins.adc_current),
        ("i2c_sda", pins.i2c_sda),
        ("i2c_scl", pins.i2c_scl),
    ]
    named += [("adc_cells", p) for p in pins.adc_cells]
    named += [("adc_temps", p) for p in pins.adc_temps]
    named += [("bleed", p) for p in pins.bleed]
    for key, pin in named:
        if pin is None:
            continue
        if pin in used:
            raise reader.error(key, f"pin {pin} is already used by {used[pin]}")
        used[pin] = key


def _check_consistency(top: _Reader, board: Board) -> None:
    pins = board.pins
    # One bleed switch per cell, cell 1 first (docs/boards.md): with the cells' ADC pins
    # listed too, another count leaves cells without a bleed or a switch without a cell.
    if pins.bleed and pins.adc_cells and len(pins.bleed) != len(pins.adc_cells):
        raise top.error(
            "pins.bleed",
            f"one bleed pin per cell: {len(pins.bleed)} for the "
            f"{len(pins.adc_cells)} cell(s) of pins.adc_cells",
        )
    if board.mcu in ("unix", "qemu"):
        if board.mode != "link":
            raise top.error("mode", "a virtual board has no sensors: only 'link' works")
        return
    for key in ("chg", "dsg"):
        if getattr(pins, key) is None:
            raise top.error(f"pins.{key}", "a real board needs its switch pins")
    if board.current_sensor == "ina226":
        if None in (pins.i2c_id, pins.i2c_sda, pins.i2c_scl):
            raise top.error(
                "pins.i2c_sda", "current.sensor = 'ina226' needs i2c_id, i2c_sda, i2c_scl"
            )
        if board.ina226_addr is None:
            raise top.error("current.ina226_addr", "missing (0x40..0x4F)")
    if board.current_sensor == "adc" and pins.adc_current is None:
        raise top.error("pins.adc_current", "current.sensor = 'adc' needs an ADC pin")
    if board.current_sensor != "none" and board.shunt_uohm <= 0:
        raise top.error("current.shunt_uohm", "a current sensor needs the shunt value")
    if board.mode == "standalone" and not pins.adc_cells:
        raise top.error("pins.adc_cells", "standalone mode measures the cells: list their ADC pins")


def list_boards() -> list[Board]:
    """Every board file shipped with sisnbms, validated, sorted by name."""
    return [load_board(path) for path in sorted(boards_dir().glob("*.toml"))]


def board_json(board: Board) -> dict[str, Any]:
    """The board.json the firmware reads (keys fixed in docs/internals.md)."""
    pins = board.pins
    return {
        "name": board.name,
        "mcu": board.mcu,
        "mode": board.mode,
        "pins": {
            "chg": pins.chg,
            "dsg": pins.dsg,
            "led": pins.led,
            "adc_cells": list(pins.adc_cells),
            "adc_current": pins.adc_current,
            "adc_temps": list(pins.adc_temps),
            "i2c_id": pins.i2c_id,
            "i2c_sda": pins.i2c_sda,
            "i2c_scl": pins.i2c_scl,
            "bleed": list(pins.bleed),
        },
        "adc_vref_mV": board.adc_vref_mV,
        "adc_bits": board.adc_bits,
        "cell_divider_ppm": board.cell_divider_ppm,
        "shunt_uohm": board.shunt_uohm,
        "amp_gain": board.amp_gain,
        "current_sensor": board.current_sensor,
        "ina226_addr": board.ina226_addr,
        "wdt_timeout_ms": board.wdt_timeout_ms,
        "sample_period_ms": board.sample_period_ms,
    }


def board_summary(board: Board) -> dict[str, Any]:
    """What `sisnbms boards --json` shows for one board."""
    return {
        "name": board.name,
        "description": board.description,
        "mcu": board.mcu,
        "mpy_arch": board.mpy_arch,
        "micropython_min": board.micropython_min,
        "micropython_firmware": board.micropython_firmware,
        "mode": board.mode,
        "current_sensor": board.current_sensor,
        "serial": board.serial,
        "source": str(board.source),
        "board_json": board_json(board),
    }
