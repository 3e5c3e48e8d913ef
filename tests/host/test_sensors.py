"""The sensor model: resolution, calibration errors, noise, seeding and faults (no I/O)."""

from __future__ import annotations

import numpy as np
import pytest

from cellmodel.errors import InputError
from host.sensors import Sensors, SensorSpec


def test_ideal_sensors_only_quantize() -> None:
    s = Sensors(SensorSpec.ideal(), n_cells=3, n_temps=1, seed=1)
    r = s.read([3.7004, 3.6996, 4.2], 1.2345, [25.04, 26.0, 24.0])
    assert r.cell_mV == [3700, 3700, 4200]
    assert r.current_mA == 1234 or r.current_mA == 1235
    assert r.temp_ddegC == [260]  # one sensor sees the hottest cell


def test_same_seed_same_readings_other_seed_differs() -> None:
    args = ([3.7, 3.8], -1.0, [25.0, 25.0])
    a = [Sensors(SensorSpec(), 2, 2, seed=5).read(*args) for _ in range(2)]
    b = Sensors(SensorSpec(), 2, 2, seed=6).read(*args)
    assert a[0] == a[1]
    assert a[0] != b


def test_noise_statistics_match_spec() -> None:
    spec = SensorSpec(cell_gain_ppm=0, cell_offset_mV=0, cell_noise_mV=5.0, cell_lsb_mV=1.0)
    s = Sensors(spec, 1, 0, seed=3)
    readings = np.array([s.read([3.7], 0.0, [25.0]).cell_mV[0] for _ in range(4000)])
    assert abs(readings.mean() - 3700) < 0.5
    assert 4.5 < readings.std() < 5.5


def test_current_offset_fault_and_sign() -> None:
    s = Sensors(SensorSpec.ideal(), 1, 1, seed=1)
    assert s.read([3.7], -2.0, [25.0]).current_mA == -2000  # charge is negative
    s.inject_current_offset(20)
    assert s.read([3.7], -2.0, [25.0]).current_mA == -1980
    assert s.current_offset_mA == 20


def test_frozen_cell_repeats_last_reading() -> None:
    s = Sensors(SensorSpec.ideal(), 2, 1, seed=1)
    s.read([3.7, 3.7], 0.0, [25.0])
    s.freeze_cell(1)
    r = s.read([3.5, 3.5], 0.0, [25.0])
    assert r.cell_mV == [3500, 3700]
    s.unfreeze_all()
    assert s.read([3.5, 3.5], 0.0, [25.0]).cell_mV == [3500, 3500]
    with pytest.raises(ValueError):
        s.freeze_cell(2)


def test_set_noise_changes_spread() -> None:
    s = Sensors(SensorSpec.ideal(), 1, 0, seed=2)
    assert {s.read([3.7], 0, [25]).cell_mV[0] for _ in range(50)} == {3700}
    s.set_cell_noise(5.0)
    assert len({s.read([3.7], 0, [25]).cell_mV[0] for _ in range(50)}) > 5


def test_spec_from_mapping_validates() -> None:
    spec = SensorSpec.from_mapping({"current_offset_mA": 20}, "x.toml")
    assert spec.current_offset_mA == 20.0
    assert SensorSpec.from_mapping({"ideal": True}, "x.toml").cell_noise_mV == 0.0
    with pytest.raises(InputError, match="sensors.bogus"):
        SensorSpec.from_mapping({"bogus": 1}, "x.toml")
    with pytest.raises(InputError, match="sensors.cell_noise_mV"):
        SensorSpec.from_mapping({"cell_noise_mV": -1}, "x.toml")
    with pytest.raises(InputError, match="sensors.cell_lsb_mV: 0 outside"):
        SensorSpec.from_mapping({"cell_lsb_mV": 0}, "x.toml")
    # Every quantity has a plausible range: 100,000 mV of noise is a typo, not a test.
    with pytest.raises(InputError, match="sensors.cell_noise_mV: 100000 outside"):
        SensorSpec.from_mapping({"cell_noise_mV": 100000}, "x.toml")
    with pytest.raises(InputError, match="sensors.current_offset_mA"):
        SensorSpec.from_mapping({"current_offset_mA": float("nan")}, "x.toml")
