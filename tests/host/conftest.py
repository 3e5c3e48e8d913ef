"""Fixtures shared by the host tests: the smoke campaign, run once on 2 local workers."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from host.cli.main import main

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "examples" / "campaign-smoke.toml"


@pytest.fixture(scope="session")
def smoke_local(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """examples/campaign-smoke.toml on 2 local workers through the CLI (--json): its output
    folder and its aggregate."""
    out = tmp_path_factory.mktemp("smoke") / "out"
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["campaign", str(SMOKE), "--workers", "2", "--out", str(out), "--json"])
    agg = json.loads(buf.getvalue())
    assert code == agg["exit_code"]
    return out, agg
