"""Designs shared by the cellmodel tests."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cellmodel import CellDesign, load_cell


@pytest.fixture(scope="session")
def default_design() -> CellDesign:
    return load_cell()


@pytest.fixture(scope="session")
def linear_design(default_design: CellDesign) -> CellDesign:
    """The default cell with SOC- and temperature-independent R, CE = 1, no entropy."""
    c = replace(
        default_design.circuit,
        soc_curvature=0.0,
        low_soc_rise=0.0,
        coulombic_efficiency=1.0,
        dUdT_V_K=0.0,
    )
    return replace(default_design, circuit=c)
