"""A non-editable install finds the firmware, board files, cell presets and the virtual board's ROM.

Builds and installs the project into a folder (pip install --target, no
editable finder), then runs the CLI from that copy, outside the checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

QUICK_SCENARIO = """
name = "installed"
description = "a short closed-loop run from an installed copy"
sample_period_s = 2.0
steps = ["Discharge at 1C for 4 minutes", "Expect no faults"]
[initial]
soc = 0.8
"""


@pytest.mark.slow
def test_installed_copy_runs_without_the_checkout(tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(REPO)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
        timeout=300,
    )  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(target))

    def cli(*args: str) -> dict:
        proc = subprocess.run(
            [sys.executable, "-c", "import sys; from host.cli.main import main; "
             "sys.exit(main(sys.argv[1:]))", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    where = subprocess.run(
        [sys.executable, "-c", "import host, cellmodel; print(host.__file__, cellmodel.__file__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(REPO) not in where and str(target) in where

    design = cli("design", "--json")
    assert {c["status"] for c in design["claims"].values()} == {"satisfied"}
    boards = cli("boards", "--json")["boards"]
    assert {b["name"] for b in boards} >= {"pico", "pico_w", "esp32_devkitc", "virtual"}
    # Provisions the bundled firmware onto a virtual board (bundled ROM) and runs it.
    scenario = tmp_path / "installed.toml"
    scenario.write_text(QUICK_SCENARIO)
    summary = cli("emulate", "--scenario", str(scenario), "--out", str(tmp_path / "out"), "--json")
    assert summary["passed"] and summary["steps"] > 100
    assert all(Path(p).is_file() for p in summary["outputs"].values())
