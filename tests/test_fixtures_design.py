"""Issue 23: the demo's sample designs follow the declarations (sizes, countries, cities) and the
real designs (foreign-born shares, strata, PSUs, weights)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT
from hypothesis import given
from hypothesis import strategies as st

from harmonise import api, connect
from harmonise.fixtures.design import (
    DEMO_COUNTRIES,
    DESIGNS,
    FOREIGN_BORN,
    LOCALMULTIDEM_GROUPS,
    POPULATION,
    TARGET_GROUPS,
    TIES_GROUPS,
    Group,
    Unit,
    scaled,
)
from harmonise.fixtures.generate import plan
from harmonise.spec.descriptor import load_descriptor
from harmonise.spec.project import Project, load_project
from harmonise.spec.resolve import resolve_wave


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project(ROOT)


def _waves(project: Project) -> list[tuple[str, str]]:
    return sorted((cw.survey, w.wave) for cw in project.crosswalks.values() for w in cw.waves
                  if (cw.survey, w.wave) in project.codebooks)


def _cities(project: Project, survey: str, wave: str) -> list[str]:
    assert project.tables.cities is not None
    return [str(r["code"]) for r in project.tables.cities.rows
            for s in r.get("sampled_by") or [] if (s.get("survey"), str(s.get("wave"))) == (survey, wave)]


def test_units_have_the_declared_sizes(project: Project) -> None:
    for survey, wave in _waves(project):
        declared = load_descriptor(ROOT / "surveys" / survey / "survey.yaml").wave(wave)
        units = plan(project, survey, wave)
        cities = _cities(project, survey, wave)
        if cities:  # a city survey: every sampled city, each with its share of the declared respondents
            assert [u.city for u in units] == cities, survey
            assert {u.n for u in units} == {round(declared.sample_size.respondents / len(cities))}, survey
        else:  # a few of the wave's countries, each at the wave's mean respondents per country
            assert [u.city for u in units] == [None] * len(units) and 0 < len(units) < len(declared.countries)
            assert {u.country for u in units} <= set(declared.countries), (survey, wave)
            assert {u.n for u in units} == {round(declared.sample_size.respondents / len(declared.countries))}


def test_demo_countries_are_declared_for_their_waves(project: Project) -> None:
    assert set(DEMO_COUNTRIES) <= set(_waves(project))
    for (survey, wave), countries in DEMO_COUNTRIES.items():
        declared = load_descriptor(ROOT / "surveys" / survey / "survey.yaml").wave(wave).countries
        assert set(countries) <= set(declared), (survey, wave)
        assert set(countries) <= set(FOREIGN_BORN) | set(TARGET_GROUPS.get((survey, wave), {})), (survey, wave)


def test_sampled_groups_are_groups_the_crosswalks_give(project: Project) -> None:
    """Every sample group the design draws is a code the wave's sample_group rule can give (so the
    inverter finds source codes for it)."""
    assert project.schema is not None
    for survey, wave in _waves(project):
        cw = project.crosswalks[survey]
        tp = resolve_wave(cw, cw.wave(wave), project.schema, project.tables,
                          project.declared_meta(survey, wave).variables).targets["sample_group"]
        drawn = {g.code for u in plan(project, survey, wave) for g in u.groups}
        if tp.kind == "constant":
            assert drawn == {tp.constant}, (survey, wave)
        elif tp.kind == "map":
            assert drawn <= set(tp.values.values()), (survey, wave)
        else:  # an expression: its quoted results
            assert tp.expr is not None and all(f"'{g}'" in tp.expr for g in drawn), (survey, wave)
    assert set(LOCALMULTIDEM_GROUPS) == set(_cities(project, "localmultidem", "2006"))
    assert set(TIES_GROUPS) == {u.country for u in plan(project, "ties", "2007")}


@given(st.lists(st.integers(1, 5_000), min_size=1, max_size=12), st.integers(1, 20_000))
def test_scaled_units_share_the_rows_in_proportion(sizes: list[int], rows: int) -> None:
    units = [Unit(f"C{i}", n, (Group("general_population"),)) for i, n in enumerate(sizes)]
    got = scaled(units, rows)
    assert sum(u.n for u in got) == rows
    total = sum(sizes)
    shares = {u.country: u.n for u in got}
    for u in units:
        assert abs(shares.get(u.country, 0) - rows * u.n / total) < 1
    assert all(u.n > 0 for u in got)


def _rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_demo_files_hold_the_planned_units(demo_db: Path, project: Project) -> None:
    got = {(str(s), str(w), str(c), str(city) if city else None): int(n) for s, w, c, city, n in _rows(
        demo_db, "SELECT survey, wave, country, city, count(*) FROM respondents GROUP BY ALL")}
    planned = [((survey, wave, u.country, u.city), u.n) for survey, wave in _waves(project)
               for u in plan(project, survey, wave)]
    for key, n in planned:
        if key[3] is None:  # a national sample: respondents in region proxies of cities have a city
            assert sum(m for k, m in got.items() if k[:3] == key[:3]) == n, key
        else:
            assert got.get(key) == n, key
    assert sum(got.values()) == sum(n for _, n in planned)


def test_designs_with_psus_and_strata_are_in_the_files_that_carry_them(demo_db: Path, project: Project) -> None:
    rows = _rows(demo_db, "SELECT survey, wave, country, count(*), count(DISTINCT psu), count(DISTINCT stratum), "
                          "count(psu) FROM respondents GROUP BY ALL")
    checked = 0
    for survey, wave, country, n, psus, strata, with_psu in rows:
        declared = load_descriptor(ROOT / "surveys" / str(survey) / "survey.yaml").wave(str(wave)).design
        if declared.psu is None:
            assert with_psu == 0, (survey, wave, country)
            continue
        d = DESIGNS[str(country)]
        if d.psus:
            assert (psus, strata) == (d.psus, min(d.strata, d.psus)), (survey, wave, country)
        else:  # respondents are their own PSUs
            assert psus == n and strata == (-(-n // d.stratum_size) if d.stratum_size else d.strata), (survey, wave)
        checked += 1
    assert checked > 0


def test_foreign_born_shares_and_weights_follow_the_design(demo_db: Path) -> None:
    shares = _rows(demo_db, "SELECT country, avg((NOT born_in_country)::INT), count(born_in_country) FROM respondents "
                            "WHERE sample_group = 'general_population' GROUP BY country")
    assert len(shares) > 0
    for country, share, n in shares:
        expected = FOREIGN_BORN[str(country)]
        assert abs(float(share) - expected) < 4 * (expected * (1 - expected) / int(n)) ** 0.5 + 0.01, country
    design = _rows(demo_db, "SELECT survey, wave, country, avg(weight_design) FROM respondents "
                            "WHERE weight_design IS NOT NULL GROUP BY ALL")
    assert len(design) > 0 and all(abs(float(mean) - 1) < 1e-6 for *_, mean in design)


def test_ess_weights_are_consistent(project: Project, demo_db: Path) -> None:
    """pweight = population 15+ / (n x 10,000), constant in a country; anweight = pspwght x pweight;
    equal-probability designs have dweight 1."""
    import pyreadstat

    folder = api.demo_data(ROOT)  # generated by the demo build (demo_db): read from the cache, not generated again
    cb = project.codebooks[("ess", "9")]
    df, _ = pyreadstat.read_sav(str(folder / "ess" / cb.file), usecols=["cntry", "dweight", "pspwght", "pweight",
                                                                        "anweight"])
    for country, g in df.groupby("cntry"):
        assert g["pweight"].tolist() == [round(POPULATION[str(country)] * 100 / len(g), 6)] * len(g)
        assert (g["anweight"] - g["pspwght"] * g["pweight"]).abs().max() < 1e-5
        assert (g["dweight"] == 1).all() == (DESIGNS[str(country)].dweight_sd == 0), country


def test_declared_sizes_are_byte_identical_per_seed(tmp_path: Path) -> None:
    from harmonise.fixtures import generate

    first = generate(ROOT, tmp_path / "a", survey="localmultidem")
    second = generate(ROOT, tmp_path / "b", survey="localmultidem")
    other = generate(ROOT, tmp_path / "c", survey="localmultidem", seed=2)
    assert [p.relative_to(tmp_path / "a") for p in first] == [p.relative_to(tmp_path / "b") for p in second]
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    assert first[0].read_bytes() != other[0].read_bytes()
