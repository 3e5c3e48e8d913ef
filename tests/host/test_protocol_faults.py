"""The bit tables: the host reads firmware/bms/faults.py itself; docs/protocol.md must agree.

host/protocol/faults.py has no copy to drift (it loads the firmware's module),
so what is checked here is the other copy: the document's fault table (bit,
name, what it blocks, whether it latches), its warning, STATE-flag and
boot-flag bits, against the firmware's constants.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from host.protocol.faults import (
    BOOT_FLAG_BITS,
    FAULT_BITS,
    FLAG_BITS,
    WARNING_BITS,
    firmware_faults,
    names,
)

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text(encoding="utf-8")


def doc_fault_rows() -> list[tuple[int, str, str, str]]:
    """(bit, name, blocks, latches) of the document's fault table."""
    section = DOC.split("## Fault bits", 1)[1].split("\n\n", 2)[0]
    rows = re.findall(r"^\| (\d+) \| `(\w+)`[^|]*\| (\w+) \| (\w+) \|$", section, re.M)
    return [(int(bit), name, blocks, latches) for bit, name, blocks, latches in rows]


def doc_bit_descriptions(lead: str) -> dict[int, str]:
    """{bit: description} of a "bitN description, bitM ..." list after `lead`."""
    match = re.search(re.escape(lead) + r"(.*?)(?:\n\n|\|\n)", DOC, re.S)
    assert match, lead
    parts = re.split(r"\bbit(\d+) ", match.group(1).replace("\n", " "))
    return {int(parts[i]): parts[i + 1].strip(" ,.") for i in range(1, len(parts) - 1, 2)}


def test_the_host_tables_are_the_firmware_constants() -> None:
    fw = firmware_faults()
    assert tuple(FAULT_BITS) == fw.NAMES and tuple(WARNING_BITS) == fw.WARNING_NAMES
    for name, bit in FAULT_BITS.items():
        assert getattr(fw, name) == 1 << bit
    assert FLAG_BITS["CHG_ON"] == 0 and FLAG_BITS["BRANCH_DISCHARGE"] == 4
    assert 1 << FLAG_BITS["BRANCH_DISCHARGE"] == fw.F_BRANCH_DSG
    assert BOOT_FLAG_BITS["CONFIG_REJECTED"] == 4


def test_fault_table_of_the_document() -> None:
    fw = firmware_faults()
    rows = doc_fault_rows()
    assert [(name, bit) for bit, name, _, _ in rows] == list(FAULT_BITS.items())
    for bit, name, blocks, latches in rows:
        mask = 1 << bit
        chg, dsg = bool(fw.BLOCKS_CHG & mask), bool(fw.BLOCKS_DSG & mask)
        expected = {"CHG": (True, False), "DSG": (False, True), "both": (True, True)}[blocks]
        assert (chg, dsg) == expected, name
        assert bool(fw.LATCHING & mask) == (latches == "yes"), name


def test_warning_bits_of_the_document() -> None:
    match = re.search(r"Warning bits: (.*?)\n\n", DOC, re.S)
    assert match
    doc = {name: int(bit) for bit, name in re.findall(r"(\d+) `(\w+)`", match.group(1))}
    assert doc == WARNING_BITS


@pytest.mark.parametrize(
    ("lead", "table"),
    [("`flags`: ", FLAG_BITS), ("| 3 | 1 | u8 `boot_flags`: ", BOOT_FLAG_BITS)],
    ids=["STATE flags", "boot flags"],
)
def test_flag_bits_of_the_document(lead: str, table: dict[str, int]) -> None:
    described = doc_bit_descriptions(lead)
    assert sorted(described) == sorted(table.values())
    for name, bit in table.items():
        words = {w for w in name.lower().split("_") if len(w) > 1}
        # each description names its flag: every word of the name is in it
        assert all(w in described[bit].lower() for w in words), (name, described[bit])


def test_names() -> None:
    assert names((1 << 4) | (1 << 15), FAULT_BITS) == ("SC", "LINK_LOST")
    assert names(1 << 20, FAULT_BITS) == ("BIT20",)
