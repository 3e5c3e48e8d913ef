"""The example HIL suite in examples/hil_suite runs as a user would run it: pytest + the plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_example_hil_suite_passes_against_a_virtual_board(tmp_path: Path) -> None:
    # Run from a folder outside the repository, as in a user's project: only the
    # installed plugin (pytest11 entry point) supplies the fixtures.
    suite = tmp_path / "hil_suite"
    suite.mkdir()
    for src in (REPO / "examples" / "hil_suite").glob("*.py"):
        (suite / src.name).write_text(src.read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=strict",
            str(suite),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "5 passed, 1 skipped" in out, out
