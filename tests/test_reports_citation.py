"""Citations of survey-waves: declared facts or the loaded file's own edition, never placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harmonise.reports.citation import FileEdition, cite
from harmonise.spec.descriptor import load_descriptor
from tests.conftest import ROOT, edit, run

PLACEHOLDERS = re.compile(r"<(release year|e\.N|x\.y\.z)>")


def descriptor(survey: str):  # type: ignore[no-untyped-def]
    return load_descriptor(ROOT / "surveys" / survey / "survey.yaml")


def placeholders_in(folder: Path) -> list[str]:
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        found += [f"{path}: {m.group()}" for m in PLACEHOLDERS.finditer(path.read_text(encoding="utf-8"))]
    return found


def test_no_placeholders_in_any_generated_codebook(demo_codebook: Path, fr_codebook: Path) -> None:
    """13 of 18 survey-wave pages and DDI files printed <release year>, <e.N> or <x.y.z>."""
    assert placeholders_in(ROOT / "codebooks") == []
    assert placeholders_in(demo_codebook) == []
    assert placeholders_in(fr_codebook) == []


def test_a_placeholder_in_a_descriptor_is_refused(project: Path, tmp_path: Path) -> None:
    path = project / "surveys" / "ess" / "survey.yaml"
    edit(path, "    European Social Survey European Research Infrastructure (ESS ERIC). European\n",
         "    European Social Survey European Research Infrastructure (ESS ERIC) (<release year>). European\n")
    code, out, err = run("codebook", "--out", str(tmp_path / "cb"), project=project)
    assert (code, out) == (2, "")
    assert err == ("error: surveys/ess/survey.yaml: citation: Value error, citation.text holds the placeholder "
                   "'<release year>'; write what is known and leave unknown facts out (the codebooks say what is not "
                   "known); fix the descriptor (see harmonise/spec/descriptor.py)\n")


def test_declared_citation_and_what_is_not_known() -> None:
    ess = descriptor("ess")
    c = cite(ess, ess.wave("8"), "ESS 8 (2016)")
    assert c.text == ("European Social Survey European Research Infrastructure (ESS ERIC) (2018). ESS8 - integrated "
                      "file, edition 2.1 [Data set]. Sikt - Norwegian Agency for Shared Services in Education and "
                      "Research. https://doi.org/10.21338/NSD-ESS8-2016")
    assert (c.missing_text, c.basis) == ("", "Edition as declared in surveys/ess/survey.yaml.")
    c = cite(ess, ess.wave("11"), "ESS 11 (2023)")
    assert c.text == ("European Social Survey European Research Infrastructure (ESS ERIC). ESS11 - integrated file "
                      "[Data set]. Sikt - Norwegian Agency for Shared Services in Education and Research.")
    assert c.missing_text == "Not known for this citation: the edition, its release year and a DOI."
    ics = descriptor("ics")
    assert cite(ics, ics.wave("2012"), "ICS 2012 (2012)").missing_text == (
        "Not known for this citation: the author, the edition, its release year and a DOI.")
    assert cite(None, None, "NEW 1 (2020)").text == "NEW 1 (2020) [Data set]."


def test_a_loaded_file_cites_its_own_edition() -> None:
    """A database built from the edition-1.2 file of round 9 cites edition 1.2 of 2020, whatever is declared."""
    ess = descriptor("ess")
    early = FileEdition("ESS9PL.sav", "ESS9e01_2", "1.2", "30.01.2020")
    c = cite(ess, ess.wave("9"), "ESS 9 (2018)", [early])
    assert c.text == ("European Social Survey European Research Infrastructure (ESS ERIC) (2020). ESS9 - integrated "
                      "file, edition 1.2 [Data set]. Sikt - Norwegian Agency for Shared Services in Education and "
                      "Research. https://doi.org/10.21338/NSD-ESS9-2018")
    assert c.basis == ("Edition as recorded in the loaded file(s): ESS9PL.sav (name ESS9e01_2, edition 1.2, "
                       "produced 30.01.2020).")
    assert early.iso_date == "2020-01-30"
    mixed = cite(ess, ess.wave("9"), "ESS 9 (2018)", [early, FileEdition("ESS9FI.sav", "ESS9e02", "2", "15.06.2020")])
    assert (mixed.edition, mixed.year) == ("1.2 and 2", 2020)
    blank = cite(ess, ess.wave("8"), "ESS 8 (2016)", [FileEdition("ESS8e02_1.sav")])
    assert blank.edition == "2.1"
    assert blank.basis == ("The loaded file(s) record no edition (ESS8e02_1.sav); edition as declared in "
                           "surveys/ess/survey.yaml.")


def test_the_edition_of_the_real_file_is_stored_and_cited(fr_db: Path, fr_codebook: Path) -> None:
    from harmonise import connect

    con = connect(fr_db)
    try:
        assert con.execute("SELECT * FROM source_editions").fetchall() == [
            ("ess", "8", "ESS8FR.sav", "ESS8e02_1", "2.1", "01.12.2018")]
    finally:
        con.close()
    page = (fr_codebook / "html" / "surveys" / "ess-8.html").read_text()
    assert ("Edition as recorded in the loaded file(s): ESS8FR.sav (name ESS8e02_1, edition 2.1, produced "
            "01.12.2018).") in page


@pytest.mark.parametrize("survey", ["ess", "evs", "eumidis", "ics", "localmultidem", "ties"])
def test_every_wave_declares_a_citation_title(survey: str) -> None:
    d = descriptor(survey)
    assert all(w.citation is not None and w.citation.title for w in d.waves)


def test_harmonise_ships_its_licence_citation_and_the_domain_definitions_it_cites() -> None:
    import tomllib

    import yaml

    from harmonise import __version__

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert (cff["cff-version"], cff["type"], cff["version"], cff["license"]) == (
        "1.2.0", "software", __version__, project["license"]["text"])
    assert all("name" in a or "family-names" in a for a in cff["authors"])
    assert (ROOT / "LICENSE").read_text().startswith(f"{project['license']['text']} License\n")
    domain = (ROOT / "docs" / "domain.md").read_text()
    for heading in ("## Migrant groups", "## Generations", "## Indicators", "## Reliability and disclosure",
                    "## Weights"):
        assert heading in domain
    assert "`child_arrival_age`" in domain


def test_a_national_release_is_cited_by_its_own_name() -> None:
    """ESS10 UA as its national team released it (data set ESS10UAe1) was cited as the integrated file, with the
    integrated file's DOI (an audit of the researcher's workflow)."""
    ess = descriptor("ess")
    c = cite(ess, ess.wave("10"), "ESS 10 (2020)", [FileEdition("ESS10UAe2_0.sav", "ESS10UAe1", "1.0", "24.07.2024")])
    assert c.text == ("European Social Survey European Research Infrastructure (ESS ERIC) (2024). ESS10UAe1 (not the "
                      "declared ESS10 - integrated file), edition 1.0 [Data set]. Sikt - Norwegian Agency for Shared "
                      "Services in Education and Research.")
    assert c.doi is None and "a DOI" in c.missing_text
    same = cite(ess, ess.wave("9"), "ESS 9 (2018)", [FileEdition("ESS9FI.sav", "ESS9e02", "2", "15.06.2020")])
    assert same.text.endswith("ESS9 - integrated file, edition 2 [Data set]. Sikt - Norwegian Agency for Shared "
                              "Services in Education and Research. https://doi.org/10.21338/NSD-ESS9-2018")
