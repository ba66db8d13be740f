"""Files under --data that are not SPSS or Stata files: a file named on the command line is an input error
saying what it is; an archive in a folder whose data files are not extracted beside it is one warning."""

from __future__ import annotations

import bz2
import gzip
import io
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT, run

from harmonise.checks.archives import held, not_data, unextracted

READS = "harmonise reads SPSS (.sav, .zsav, .por) and Stata (.dta) files"


@pytest.fixture
def ties(fixtures_dir: Path) -> Path:
    """The TIES fixture file (300 rows)."""
    return fixtures_dir / "ties" / "TIES_2007.sav"


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _validate(*data: Path) -> tuple[int, str, str]:
    return run("validate", str(ROOT / "mappings" / "ties.yaml"), *[a for d in data for a in ("--data", str(d))])


def test_a_zip_named_on_the_command_line_says_what_it_holds_and_to_extract_it(tmp_path: Path, ties: Path) -> None:
    archive = _zip(tmp_path / "TIES.zip", {"data/TIES_2007.sav": ties.read_bytes(), "data/readme.pdf": b"%PDF"})
    code, out, err = _validate(archive)
    assert (code, out) == (2, "")
    assert err == (f"error: {archive}: is a ZIP archive holding TIES_2007.sav; {READS}: extract it and give --data "
                   "the extracted file or its folder\n")


@pytest.mark.parametrize("name, what", [("TIES_2007.csv", "a CSV file"), ("TIES_2007.xlsx", "an Excel workbook"),
                                        ("TIES_2007.rds", "an R data file"), ("TIES_2007.sas7bdat", "a SAS data set")])
def test_an_export_named_on_the_command_line_is_an_input_error(tmp_path: Path, name: str, what: str) -> None:
    (tmp_path / name).write_bytes(b"resp_id,sex\n1,1\n")
    code, _, err = _validate(tmp_path / name)
    assert (code, err) == (2, (f"error: {tmp_path / name}: is {what}; {READS}, whose value labels and missing-value "
                              "declarations the crosswalks rely on: download or export the survey's SPSS or Stata "
                              "edition\n"))


def test_every_unreadable_file_named_is_reported_at_once(tmp_path: Path, ties: Path) -> None:
    (tmp_path / "a.bak").write_bytes(ties.read_bytes())
    (tmp_path / "b.csv").write_text("x\n")
    code, _, err = _validate(ties, tmp_path / "a.bak", tmp_path / "b.csv")
    assert code == 2
    assert err.splitlines() == [f"error: {tmp_path / 'a.bak'}: unsupported file extension '.bak'; {READS}",
                                (f"{tmp_path / 'b.csv'}: is a CSV file; {READS}, whose value labels and missing-value "
                                "declarations the crosswalks rely on: download or export the survey's SPSS or Stata "
                                "edition")]


def test_archives_in_a_folder_whose_files_are_not_extracted_give_one_warning(tmp_path: Path, ties: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(ties, data / ties.name)
    _zip(data / "TIES.zip", {"TIES_2007.sav": b"x"})  # extracted beside it: not reported
    _zip(data / "more.zip", {"x/TIES_2008.sav": b"x", "x/TIES_2008.dta": b"x", "notes.txt": b"x"})
    (data / "ESS9.sav.gz").write_bytes(gzip.compress(b"x"))
    (data / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    code, out, err = _validate(data)
    assert code == 0, err
    warnings = [line for line in out.splitlines() if "archive" in line]
    assert warnings == [
        (f"warning: 3 archive(s) under --data not read: {data / 'ESS9.sav.gz'} (ESS9.sav); {data / 'broken.zip'} "
        f"(content not listed); {data / 'more.zip'} (TIES_2008.dta, TIES_2008.sav); {READS}, not archives — extract "
        "them beside the archive (e.g. unzip FILE -d FOLDER) and build again; an archive whose files are extracted "
        "beside it is not reported")]
    assert out.endswith("ok: 0 error(s), 1 warning(s), 1 file(s), 300 rows\n")


def test_a_folder_holding_only_an_archive_says_so_in_its_error(tmp_path: Path, ties: Path) -> None:
    _zip(tmp_path / "TIES.zip", {"TIES_2007.sav": ties.read_bytes()})
    code, _, err = _validate(tmp_path)
    assert code == 2
    assert err == (f"error: no data file in {tmp_path} can be harmonised; 1 archive(s) under --data not read: "
                   f"{tmp_path / 'TIES.zip'} (TIES_2007.sav); {READS}, not archives; extract them beside the archive "
                   "(e.g. unzip FILE -d FOLDER) and build again; an archive whose files are extracted beside it is "
                   "not reported\n")


def test_a_folder_holding_only_exports_names_them_in_its_error(tmp_path: Path) -> None:
    """A folder of the portal's CSV download (and its documentation) said only "no data file … can be harmonised"."""
    (tmp_path / "ESS1-9e01_1.csv").write_text("essround,cntry\n9,FI\n")
    (tmp_path / "ESS9.xlsx").write_bytes(b"x")
    (tmp_path / "README.txt").write_text("documentation")
    code, _, err = _validate(tmp_path)
    assert code == 2
    assert err == (f"error: no data file in {tmp_path} can be harmonised; it holds 2 file(s) of formats harmonise does "
                   "not read: ESS1-9e01_1.csv (a CSV file), ESS9.xlsx (an Excel workbook) — "
                   f"{READS}, whose value labels and missing-value declarations the crosswalks rely on: download or "
                   "export the survey's SPSS or Stata edition\n")


def test_what_an_archive_holds(tmp_path: Path) -> None:
    tar = tmp_path / "ESS.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        t.addfile(tarfile.TarInfo("ESS9.sav"), io.BytesIO(b""))
    (tmp_path / "ESS9.dta.bz2").write_bytes(bz2.compress(b"x"))
    (tmp_path / "notes.txt.gz").write_bytes(gzip.compress(b"x"))
    assert held(tar) is None  # listing it would mean decompressing it whole
    assert held(tmp_path / "ESS9.dta.bz2") == ["ESS9.dta"]
    assert held(tmp_path / "notes.txt.gz") == []
    zipped = tmp_path / "zipped"
    zipped.mkdir()
    assert held(_zip(zipped / "a.zip", {"B.SAV": b"", "dir/": b"", "a.por": b"", "c.csv": b""})) == ["B.SAV", "a.por"]
    assert not_data(tmp_path / "x.SAV") is None and not_data(tmp_path / "x.zsav") is None
    assert not_data(tar) == f"{tar}: is a tar archive; {READS}: extract it and give --data the " \
                            "extracted file or its folder"
    assert unextracted([zipped / "a.zip"], [tmp_path / "b.sav", tmp_path / "A.POR"]) == []  # names compared case-blind
    assert [i.message.split(";")[0] for i in unextracted([zipped / "a.zip"], [tmp_path / "b.sav"])] == [
        f"1 archive(s) under --data not read: {zipped / 'a.zip'} (a.por)"]
