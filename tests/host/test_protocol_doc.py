"""The worked examples in docs/protocol.md are real frames of the shared test vectors."""

from __future__ import annotations

import json
import re
from pathlib import Path

from host.protocol.codec import Decoder, Frame

REPO = Path(__file__).resolve().parents[2]


def test_worked_examples_are_vector_frames() -> None:
    doc = (REPO / "docs" / "protocol.md").read_text()
    examples = doc.split("## Worked examples", 1)[1]
    blocks = re.findall(r"```\n([0-9a-f \n]+)```", examples)
    assert len(blocks) >= 5
    vectors = json.loads((REPO / "tests" / "vectors" / "protocol_vectors.json").read_text())
    known = {f["hex"] for f in vectors["frames"]}
    for block in blocks:
        raw = bytes.fromhex(block.replace("\n", " "))
        (frame,) = Decoder().feed(raw)
        assert isinstance(frame, Frame)
        assert raw.hex() in known
