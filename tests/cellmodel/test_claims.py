"""Claims 1-13: the default design satisfies all; modified designs break the right ones."""

from __future__ import annotations

from dataclasses import replace

from cellmodel import CellDesign
from cellmodel.claims import NOT_APPLICABLE, SATISFIED, VIOLATED, check_claims


def _statuses(design: CellDesign) -> dict[int, str]:
    return {n: r.status for n, r in check_claims(design).items()}


def test_default_cell_satisfies_all_thirteen(default_design: CellDesign) -> None:
    results = check_claims(default_design)
    assert sorted(results) == list(range(1, 14))
    assert all(r.status == SATISFIED for r in results.values())
    assert "4.1 <= 8" in results[5].detail
    assert "1,667 mAh/g" in results[1].detail


def test_ratio_nine_violates_claim_5_and_its_dependents_not_applicable(
    default_design: CellDesign,
) -> None:
    a = default_design.anode
    cp = a.capacity_mAh_g * a.density_g_cm3 / 9.0 / default_design.cathode.density_g_cm3
    design = replace(default_design, cathode=replace(default_design.cathode, capacity_mAh_g=cp))
    st = _statuses(design)
    assert st[5] == VIOLATED
    assert "9 <= 8: NO" in check_claims(design)[5].detail
    for n in range(6, 14):
        assert st[n] == NOT_APPLICABLE
        assert "depends on claim" in check_claims(design)[n].detail
    assert all(st[n] == SATISFIED for n in (1, 2, 3, 4))


def test_missing_pva_violates_4_and_13(default_design: CellDesign) -> None:
    design = replace(default_design, anode=replace(default_design.anode, binder=("SBR", "CMC")))
    st = _statuses(design)
    assert st[4] == VIOLATED and st[13] == VIOLATED
    assert [n for n, s in st.items() if s != SATISFIED] == [4, 13]


def test_pure_silicon_breaks_claims_1_and_7_but_not_5(default_design: CellDesign) -> None:
    design = replace(default_design, anode=replace(default_design.anode, composition={"Si": 1.0}))
    st = _statuses(design)
    assert st[1] == VIOLATED
    assert st[2] == st[3] == st[4] == NOT_APPLICABLE
    assert st[5] == SATISFIED
    assert st[7] == VIOLATED
    assert st[13] == SATISFIED


def test_tin_rich_alloy_is_not_silicon_major(default_design: CellDesign) -> None:
    design = replace(
        default_design, anode=replace(default_design.anode, composition={"Si": 0.3, "Sn": 0.7})
    )
    st = _statuses(design)
    assert st[1] == SATISFIED
    assert st[5] == VIOLATED


def test_thickness_and_collector_claims(default_design: CellDesign) -> None:
    design = replace(
        default_design,
        anode=replace(default_design.anode, thickness_um=60.0, collector_thickness_um=5.0),
        cathode=replace(default_design.cathode, thickness_um=200.0),
    )
    st = _statuses(design)
    assert st[2] == VIOLATED and st[8] == VIOLATED
    assert st[9] == VIOLATED and st[10] == VIOLATED
    assert st[11] == SATISFIED


def test_no_conductive_additive_breaks_3_and_12(default_design: CellDesign) -> None:
    design = replace(default_design, anode=replace(default_design.anode, conductive_additive=()))
    st = _statuses(design)
    assert st[3] == VIOLATED and st[12] == VIOLATED
    assert st[4] == NOT_APPLICABLE and st[13] == NOT_APPLICABLE


def test_out_of_range_particle_and_capacity(default_design: CellDesign) -> None:
    design = replace(
        default_design,
        anode=replace(default_design.anode, particle_diameter_um=3.0, capacity_mAh_g=2400.0),
    )
    st = _statuses(design)
    assert st[1] == VIOLATED
    assert st[5] == VIOLATED
    detail = check_claims(design)[1].detail
    assert "particle diameter 3 um in 0.05-2 um: NO" in detail
    assert "C_N 2,400 mAh/g" in detail


def test_a_value_just_past_its_bound_does_not_print_as_the_bound(
    default_design: CellDesign,
) -> None:
    """A verdict of NO must not sit next to a number that reads as the bound itself."""
    a = replace(default_design.anode, capacity_mAh_g=2200.4, density_g_cm3=1.1)
    k = replace(default_design.cathode, capacity_mAh_g=100.0, density_g_cm3=3.025)
    results = check_claims(replace(default_design, anode=a, cathode=k))
    assert "C_N 2,200.4 mAh/g in 1,000-2,200 mAh/g: NO" in results[1].detail
    assert "8.001 <= 8: NO" in results[5].detail  # 2,420.44 / 302.5
    # Inside its bounds the usual digits stand.
    assert "4.1 <= 8: yes" in check_claims(default_design)[5].detail


def test_pva_is_found_by_its_full_name_or_its_abbreviation(default_design: CellDesign) -> None:
    for binder in ("Polyvinyl alcohol (PVA)", "poly(vinyl alcohol)", "PVOH", "polyvinyl-alcohol"):
        design = replace(default_design, anode=replace(default_design.anode, binder=(binder,)))
        assert _statuses(design)[4] == SATISFIED, binder
    for binder in ("Polyvinylidene fluoride (PVDF)", "PVA-free acrylic", "PVAc"):
        design = replace(default_design, anode=replace(default_design.anode, binder=(binder,)))
        assert _statuses(design)[4] == VIOLATED, binder
