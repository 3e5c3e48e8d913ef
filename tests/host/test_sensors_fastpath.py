"""Sensors' fast path (Python floats, noise drawn in blocks) against the vectorized read.

Both read the same truth over a long run with noise and every sensor fault; the readings
(integers in protocol units) must be equal, read for read. The fast path draws its
standard normals in blocks: each channel must still get exactly the values the per-read
draws give.
"""

from __future__ import annotations

import numpy as np
import pytest

from host.sensors import NOISE_BLOCK_READS, Sensors, SensorSpec

_SPECS = {
    "default": SensorSpec(),
    "odd-lsb": SensorSpec(
        cell_lsb_mV=0.5,
        current_lsb_mA=2.5,
        temp_lsb_degC=0.25,
        current_bias_mA=-3.0,
        current_gain_bias_ppm=-2000.0,
    ),
    "fine-lsb": SensorSpec(cell_lsb_mV=0.001, current_lsb_mA=0.001, temp_lsb_degC=0.001),
    "ideal": SensorSpec.ideal(),
}


def _faults(s: Sensors, k: int, n_cells: int, n_temps: int) -> None:
    """A run's faults, on and off again (the same on both chains)."""
    if k == 200:
        s.set_cell_noise(4.0)
    elif k == 350:
        s.freeze_cell(n_cells - 1)
    elif k == 500:
        s.open_cell_tap(0, 0)
    elif k == 600:
        s.stick_current()
    elif k == 700 and n_temps:
        s.break_thermistor(n_temps - 1, -40.0)
    elif k == 800:
        s.step_current_gain(20000)
    elif k == 900:
        s.inject_current_offset(25.0)
    elif k == 1000:
        s.repair_all()
    elif k == 1100:
        s.unfreeze_all()
        s.set_cell_noise(0.0)
    elif k == 1200:
        s.stick_current(1234)
        s.open_cell_tap(n_cells - 1, 65535)
    elif k == 1300:
        s.repair_all()
        s.set_cell_noise(1.5)


@pytest.mark.parametrize("spec_name", sorted(_SPECS))
@pytest.mark.parametrize("n_cells, n_temps", [(1, 1), (1, 0), (4, 2), (16, 3), (3, 5), (16, 16)])
def test_fast_read_is_the_vectorized_read(spec_name: str, n_cells: int, n_temps: int) -> None:
    spec = _SPECS[spec_name]
    fast = Sensors(spec, n_cells, n_temps, seed=11)
    ref = Sensors(spec, n_cells, n_temps, seed=11, fast_path=False)
    assert fast._fast and not ref._fast
    rng = np.random.default_rng(n_cells * 10 + n_temps)
    reads = 1500  # several noise blocks
    assert reads > 3 * NOISE_BLOCK_READS
    for k in range(reads):
        _faults(fast, k, n_cells, n_temps)
        _faults(ref, k, n_cells, n_temps)
        v = rng.uniform(2.5, 4.3, n_cells)
        v[rng.random(n_cells) < 0.01] = rng.choice([-0.1, 0.0, 70.0, np.inf])  # off the scale
        t = rng.uniform(-25.0, 75.0, n_cells)
        i = float(rng.uniform(-5.0, 5.0)) if k % 50 else 0.0
        assert fast.read(v, i, t) == ref.read(v, i, t), k
        if k % 97 == 0:  # lists are read like arrays
            assert fast.read(v.tolist(), i, t.tolist()) == ref.read(v.tolist(), i, t.tolist())


def test_nan_voltage_fails_alike() -> None:
    for fast_path in (True, False):
        s = Sensors(SensorSpec(), 2, 1, seed=1, fast_path=fast_path)
        with pytest.raises(ValueError, match="NaN"):
            s.read([3.7, float("nan")], 0.0, [25.0, 25.0])


@pytest.mark.parametrize("n_cells, n_temps", [(1, 1), (4, 0), (16, 3)])
def test_block_draws_are_the_per_read_draws(n_cells: int, n_temps: int) -> None:
    """Every channel's standard normals in order, as three Generator.normal calls per read
    (cells, current, temperatures) would give them."""
    s = Sensors(SensorSpec(), n_cells, n_temps, seed=8)
    per_read = np.random.default_rng([8, 2])
    for _ in range(3 * NOISE_BLOCK_READS + 5):
        expected = [
            *per_read.normal(0.0, 1.0, n_cells).tolist(),
            float(per_read.normal(0.0, 1.0)),
            *per_read.normal(0.0, 1.0, n_temps).tolist(),
        ]
        assert s._noise_row() == expected


def test_large_packs_take_the_vectorized_read() -> None:
    from cellmodel.smallpack import FAST_PATH_MAX_CELLS

    assert not Sensors(SensorSpec(), FAST_PATH_MAX_CELLS + 1, 2, seed=1)._fast
    assert Sensors(SensorSpec(), FAST_PATH_MAX_CELLS, 2, seed=1)._fast


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_snapshot_restores_the_readings(fast_path: bool) -> None:
    """A snapshot taken just before a block of draws runs out, restored after the block was
    refilled and a channel froze, reads the same again (what the lockstep pipeline keeps of
    the sensors to step again)."""
    s = Sensors(SensorSpec(), 4, 2, seed=9, fast_path=fast_path)
    v, t = np.array([3.6, 3.7, 3.8, 3.9]), np.full(4, 30.0)
    for _ in range(NOISE_BLOCK_READS - 3):
        s.read(v, 1.0, t)
    snap = s.snapshot()
    first = [s.read(v, 1.0, t) for _ in range(10)]
    s.read(v + 0.1, 1.0, t)
    s.restore(snap)
    assert [s.read(v, 1.0, t) for _ in range(10)] == first
    s.restore(snap)  # a snapshot restores as often as asked
    assert [s.read(v, 1.0, t) for _ in range(10)] == first


def test_a_snapshot_restores_a_frozen_channel_before_its_first_reading() -> None:
    """A channel frozen before any reading holds the first one it takes: restored to before
    that reading, it takes the next one instead, as it would have."""
    s = Sensors(SensorSpec(), 2, 1, seed=3)
    t = np.full(2, 25.0)
    s.freeze_cell(0)  # no reading yet: it holds the next one
    snap = s.snapshot()
    s.read(np.array([3.0, 3.0]), 0.0, t)
    s.restore(snap)
    held = s.read(np.array([4.0, 4.0]), 0.0, t).cell_mV[0]
    assert 3990 <= held <= 4010
    assert s.read(np.array([3.5, 3.5]), 0.0, t).cell_mV[0] == held
