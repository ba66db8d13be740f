"""Reader paths beyond SPSS: Stata extended missing values, encodings."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyreadstat
import pytest
from conftest import ESS8_SAID, run
from test_cli_errors import USED

from harmonise import connect
from harmonise.errors import InputError
from harmonise.readers import open_source
from harmonise.readers.files import declared_cases, open_sampled


def _ess_dta(ess8: Path, dst: Path, letters: dict[str, list[str]]) -> Path:
    """The real file's used columns as a Stata file, ESS-style: missing codes as extended missing .a-.d."""
    df, meta = pyreadstat.read_sav(str(ess8), usecols=USED, user_missing=True)
    df = df.astype({c: object for c in df.columns if df[c].dtype.kind == "f"})
    for col, codes in letters.items():
        for i, letter in enumerate(codes):
            df.at[df.index[i], col] = letter
    labels = {k: {int(c): v for c, v in lab.items()} for k, lab in meta.variable_value_labels.items()
              if k in USED and all(isinstance(c, float) for c in lab)}
    for k in letters:
        labels.setdefault(k, {})
        labels[k].update({"a": "Not applicable", "b": "Refusal", "c": "Don't know", "d": "No answer"})
    pyreadstat.write_dta(df, str(dst), variable_value_labels=labels,
                         missing_user_values={k: sorted({"a", "b", "c", "d", *v}) for k, v in letters.items()})
    return dst


def test_stata_extended_missing_become_typed_reasons(ess8: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _ess_dta(ess8, data / "ESS8FR.dta", {"gndr": ["b", "c", "d"], "trstprl": ["a", "b"]})
    src = open_source(data / "ESS8FR.dta")
    assert src.format == "dta"
    assert src.meta.variables["gndr"].extended == {"a": "Not applicable", "b": "Refusal", "c": "Don't know",
                                                   "d": "No answer"}
    db = tmp_path / "s.duckdb"
    code, _, err = run("build", "--data", str(data), "--db", str(db))
    assert code == 0, err
    con = connect(db)
    got = con.execute("SELECT sex_missing, count(*) FROM respondents WHERE sex IS NULL GROUP BY 1 ORDER BY 1").fetchall()
    assert got == [("dont_know", 1), ("no_answer", 1), ("refused", 1)]
    got = con.execute("SELECT trust_parliament_missing, count(*) FROM respondents WHERE source_row <= 2 "
                      "GROUP BY 1 ORDER BY 1").fetchall()
    assert got == [("not_applicable", 1), ("refused", 1)]
    rep = con.execute("SELECT source_code, missing_reason, n FROM harmonisation_report WHERE target = 'sex' "
                      "AND source_code LIKE '.%' ORDER BY 1").fetchall()
    assert rep == [(".b", "refused", 1), (".c", "dont_know", 1), (".d", "no_answer", 1)]


def test_undeclared_extended_letter_is_reported(ess8: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _ess_dta(ess8, data / "ESS8FR.dta", {"gndr": ["e"]})
    code, _, err = run("validate", "--data", str(data))
    assert code == 1
    assert "source variable gndr code .e (no value label) has no mapping for target sex: 1 row(s)" in err


def test_a_compressed_file_cut_in_its_data_says_what_to_do(ess8: Path, tmp_path: Path) -> None:
    """The real file is bytecode-compressed: cut after its header, readstat's catch-all parse error comes back."""
    (tmp_path / "ESS8FR.sav").write_bytes(ess8.read_bytes()[:1_000_000])
    code, out, err = run("validate", "mappings/ess.yaml", "--data", str(tmp_path))
    assert (code, out) == (2, "")
    assert err == (f"error: {tmp_path / 'ESS8FR.sav'}: cannot read file (Invalid file, or file has unsupported "
                   "features): it is truncated or corrupt (compare its size with the download), or uses a feature "
                   "the reader does not support; download it again, or re-save it from SPSS or Stata\n")


def test_a_wrong_encoding_is_named_as_the_likely_cause_of_label_drift(ess8: Path) -> None:
    """The real file is Windows-1252-like text read as latin-1: characters drop out of its labels. The codes
    (and so the harmonised data) are unchanged, so it is one warning naming the cause, not an error."""
    code, out, err = run("validate", "mappings/ess.yaml", "--data", str(ess8.parent), "--encoding", "latin1")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == (
        "warning: surveys/ess/codebook_8.yaml: the labels of 3 variable(s) differ from surveys/ess/codebook_8.yaml: "
        "ess8_reg (label of code 'FRL0' changed from 'Provence-Alpes-Côte d’Azur' to 'Provence-Alpes-Côte "
        "d\\x92Azur' and 8 more (--format json lists all)), nuts1, nuts2 — the labels differ only in their non-ASCII "
        "characters: the file's text was probably decoded with the wrong encoding; drop --encoding to use the one the "
        "file declares, or pass the right one")
    assert out.splitlines()[1:] == [ESS8_SAID[0], "by category: contradictory-inputs 1, drift 1",
                                    "ok: 0 error(s), 1 warning(s), 1 note(s), 1 file(s), 2,070 rows"]
    code, out, _ = run("validate", "mappings/ess.yaml", "--data", str(ess8.parent), "--encoding", "latin1",
                       "--format", "json")
    (issue,) = [i for i in json.loads(out)["issues"] if i["code"] == "drift"]
    assert issue["extra"]["variables"] == ["ess8_reg", "nuts1", "nuts2"]
    changed = issue["extra"]["labels_changed"]["ess8_reg"]
    assert len(changed) == 9 and changed[0] == {"code": "FRL0", "declared": "Provence-Alpes-Côte d’Azur",
                                                "file": "Provence-Alpes-Côte d\x92Azur"}


def test_stata_system_missing_after_an_extended_missing_stays_missing(tmp_path: Path) -> None:
    """pyreadstat returns an arbitrary number for a byte column's `.` after a `.a` (user_missing=True)."""
    import numpy as np
    import pandas as pd

    path = tmp_path / "r.dta"
    pd.DataFrame({"b": np.array([1, 0] * 5, dtype="int8"), "d": np.arange(10.0)}).to_stata(path, version=118,
                                                                                          write_index=False)
    raw = bytearray(path.read_bytes())
    start = raw.index(b"<data>") + 6  # rows of 9 bytes: b (byte), d (double)
    raw[start], raw[start + 9] = 102, 101  # row 1: .a (Stata byte 102), row 2: . (101)
    path.write_bytes(bytes(raw))
    code, out, _ = run("inspect", str(path), "--match", "b")
    assert code == 0
    assert out.splitlines()[3:8] == ["    3 distinct value(s), valid min 0, max 1",
                                     "             0          4 [unlabelled]",
                                     "             1          4 [unlabelled]",
                                     "             .          1 [system missing]",
                                     "            .a          1 [extended missing]"]


def test_a_stata_number_holding_only_extended_missing_letters_is_read_as_those_letters(tmp_path: Path) -> None:
    """A numeric Stata variable whose every row is `.a` (a natives-only subset's year of arrival) comes from
    pyreadstat as a column of letters only, which pandas stores as text: harmonise stopped with "internal error:
    ValueError: could not convert string to float: 'a'". Its letters are read as any others."""
    import numpy as np

    path = tmp_path / "r.dta"
    df = pd.DataFrame({"x": pd.Series(["a"] * 4, dtype=object), "y": np.arange(4.0)})
    pyreadstat.write_dta(df, str(path), missing_user_values={"x": ["a"]})
    src = open_source(path)
    assert src.meta.get("x").type == "numeric"
    chunk = next(iter(src.chunks(["x", "y"])))
    assert chunk["x"].isna().all() and list(chunk["x#x"]) == ["a"] * 4 and list(chunk["y"]) == [0.0, 1.0, 2.0, 3.0]
    code, out, _ = run("inspect", str(path), "--match", "x")
    assert code == 0 and "            .a          4 [extended missing]" in out.splitlines()


REAL_FILES = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.mark.parametrize("name", ["ess8_fr/ESS8FR.sav", "ess_real/ess9_gb_dta/ESS9GB.dta",
                                  "ess_real/ess11_subset_sav/ESS11-subset.sav"])
@pytest.mark.parametrize("in_memory", [True, False])
def test_a_file_read_from_memory_or_a_buffer_reads_as_from_its_path(name: str, in_memory: bool,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Decision 40: pyreadstat is fed the bytes (or a buffered file), not the path; the frames and metadata
    are those it reads from the path, for a header, a chunk from an offset and Stata's system missing."""
    from harmonise.readers import files

    path = REAL_FILES / name
    fmt = files.detect_format(path)
    monkeypatch.setattr(files, "IN_MEMORY_MAX", 1 << 30 if in_memory else 0)
    reader = pyreadstat.read_dta if fmt == "dta" else pyreadstat.read_sav
    kw = {"user_missing": True, "disable_datetime_conversion": True, "encoding": "latin1" if fmt == "dta" else None}
    _, want = reader(str(path), metadataonly=True, **kw)
    _, got = files._read(fmt, str(path), metadataonly=True, **kw)
    assert vars(got) == vars(want)
    columns = want.column_names[:25]
    want_df, _ = reader(str(path), usecols=columns, row_offset=7, row_limit=300, **kw)
    got_df, _ = files._read(fmt, str(path), usecols=columns, row_offset=7, row_limit=300, **kw)
    assert len(got_df) == 300
    pd.testing.assert_frame_equal(got_df, want_df)


def test_an_spss_portable_file_is_read_and_its_missing_codes_coarsening_is_a_warning(ess8: Path,
                                                                                     tmp_path: Path) -> None:
    """pyreadstat's .por reader takes no ``user_missing``: passing it crashed every .por file. The file's
    values are read as the .sav's; a warning says its user-missing values come back system-missing."""
    df, meta = pyreadstat.read_sav(str(ess8), usecols=USED)
    data = tmp_path / "data"
    data.mkdir()
    pyreadstat.write_por(df, str(data / "ESS8FR.por"), column_labels=meta.column_labels)
    src = open_source(data / "ESS8FR.por")
    assert src.format == "por"
    back = pd.concat(list(src.chunks(["AGEA", "GNDR"], 1000)))  # the portable format's names are upper case
    pd.testing.assert_series_equal(back["AGEA"].reset_index(drop=True), df["agea"], check_names=False)
    pd.testing.assert_series_equal(back["GNDR"].reset_index(drop=True), df["gndr"], check_names=False)
    code, out, err = run("validate", "mappings/ess.yaml", "--data", str(data))
    assert "internal error" not in out + err
    assert code == 0  # read without user-missing values, as a .por holds them: no code is left unmapped
    assert (f"warning: ess wave 8: {data / 'ESS8FR.por'}: an SPSS portable file: pyreadstat reads the values it "
            "declares user-missing (refusal, don't know, …) as system-missing, so they are stored with the reason of "
            "a system-missing value, not their own — re-save the file as .sav (SPSS or PSPP) to keep the reasons of "
            "its missing codes") in out + err


def test_a_stata_12_file_written_in_utf8_reads_its_labels_and_texts_as_written(ess8: Path, tmp_path: Path) -> None:
    """Before format 118 a Stata file records no encoding; the reader's Windows-1252 read the UTF-8 that R and
    pyreadstat write as mojibake ('DuÅ¼e miasto') without a word, and a text of 'Łódź' failed with advice to
    pass --encoding latin1, which garbles it."""
    df, _ = pyreadstat.read_sav(str(ess8), usecols=["idno", "cntry", "domicil", "gndr", "agea"])
    df["region"] = ["Łódź", "Réunion"] * (len(df) // 2) + ["Łódź"] * (len(df) % 2)
    labels = {"domicil": {1: "Duże miasto", 2: "Przedmieścia", 3: "Małe miasto", 4: "Wieś", 5: "Gospodarstwo"},
              "gndr": {1: "Male", 2: "Female"}}
    path = tmp_path / "ESS8FR.dta"
    pyreadstat.write_dta(df, str(path), version=12, variable_value_labels=labels)
    assert path.read_bytes()[0] == 115  # format 115: Stata 12
    src = open_source(path)
    assert src.meta.variables["domicil"].labels == {1: "Duże miasto", 2: "Przedmieścia", 3: "Małe miasto", 4: "Wieś",
                                                    5: "Gospodarstwo"}
    assert src.meta.encoding == "UTF-8 where valid, else Windows-1252"
    texts = pd.concat(list(src.chunks(["region"], 1000)))["region"]
    assert texts.iloc[:2].tolist() == ["Łódź", "Réunion"]
    ascii_only = tmp_path / "ascii.dta"
    pyreadstat.write_dta(df.drop(columns=["region"]), str(ascii_only), version=12, variable_value_labels={
        "gndr": {1: "Male", 2: "Female"}})
    assert open_source(ascii_only).codec.guessed is False  # type: ignore[union-attr]  # nothing to note


def test_a_text_in_the_rows_that_the_header_encoding_cannot_decode_points_at_damage(tmp_path: Path) -> None:
    """Bytes flipped in a file's rows: the advice was "pass --encoding latin1", which reads damage as text."""
    df = pd.DataFrame({"idno": [1.0, 2.0], "name": ["abcdefgh", "ijklmnop"]})
    path = tmp_path / "f.sav"
    pyreadstat.write_sav(df, str(path))
    raw = bytearray(path.read_bytes())
    at = raw.rindex(b"ijklmnop")
    raw[at:at + 2] = bytes([0xC3, 0x28])  # an invalid UTF-8 sequence in the UTF-8 file's rows
    path.write_bytes(bytes(raw))
    src = open_source(path)
    with pytest.raises(InputError) as caught:
        list(src.chunks(["name"], 10))
    assert str(caught.value) == (
        f"{path}: a text in its rows cannot be decoded with the declared encoding (Unable to convert string to the "
        "requested encoding (invalid byte sequence)), though its header's can: the file is probably damaged — "
        "download it again; if it is not, pass --encoding with the encoding its texts were written in")


REAL_SAV = sorted((Path(__file__).resolve().parents[1].parent / "shared" / "data").glob("**/*.sav"))


@pytest.mark.parametrize("path", REAL_SAV, ids=lambda p: p.name)
def test_a_header_read_with_its_first_rows_gives_the_header_and_the_rows_read_alone_give(path: Path) -> None:
    """One pass of the reader for discovery (decision 62): the same metadata as the header alone, the row count
    the header records (not the rows the pass read), and the rows normalised as a chunk gives them."""
    alone = open_source(path, isolate=False)
    src, sample = open_sampled(path, None, 100)
    assert sample is not None
    assert (src.meta, src.codec, src.encoding) == (alone.meta, alone.codec, alone.encoding)
    assert src.meta.rows is not None and src.meta.rows > 100
    columns = [c for c in ("cntry", "essround", "idno") if c in alone.meta.variables]
    pd.testing.assert_frame_equal(sample.frame(src, columns), next(iter(alone.chunks(columns, 100))),
                                  check_like=True)


def test_the_cases_an_spss_header_records_are_read_in_its_byte_order(tmp_path: Path) -> None:
    path = tmp_path / "f.sav"
    pyreadstat.write_sav(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), str(path))
    head = path.read_bytes()[:1024]
    assert declared_cases(head) == 3
    big = bytearray(head)
    big[64:68], big[80:84] = (2).to_bytes(4, "big"), (7).to_bytes(4, "big")
    assert declared_cases(bytes(big)) == 7
    unknown = bytearray(head)
    unknown[80:84] = (-1).to_bytes(4, "little", signed=True)
    assert declared_cases(bytes(unknown)) is None
    assert declared_cases(head[:83]) is None
    assert declared_cases(b"<stata_dta>" + head[11:]) is None


def test_a_file_without_a_recorded_row_count_or_with_damaged_first_rows_is_opened_without_a_sample(
        tmp_path: Path) -> None:
    df = pd.DataFrame({"idno": [1.0, 2.0], "name": ["abcdefgh", "ijklmnop"]})
    path = tmp_path / "f.sav"
    pyreadstat.write_sav(df, str(path))
    raw = bytearray(path.read_bytes())
    raw[80:84] = (-1).to_bytes(4, "little", signed=True)  # "not recorded": the reader's count would be the sample's
    path.write_bytes(bytes(raw))
    src, sample = open_sampled(path, None, 100)
    assert sample is None and src.meta == open_source(path, isolate=False).meta
    raw[80:84] = (2).to_bytes(4, "little")
    at = raw.rindex(b"ijklmnop")
    raw[at:at + 2] = bytes([0xC3, 0x28])  # a damaged text in the rows: reported when the rows are read
    path.write_bytes(bytes(raw))
    src, sample = open_sampled(path, None, 100)
    assert sample is None and src.meta == open_source(path, isolate=False).meta and src.meta.rows == 2
    with pytest.raises(InputError, match="cannot be decoded with the declared encoding"):
        list(src.chunks(["name"], 10))


def test_an_encoding_name_nobody_knows_is_said_to_be_unknown(ess8: Path) -> None:
    """`--encoding nosuch` was told to pass `--encoding latin1`, as if the file's text were at fault."""
    code, _, err = run("validate", "--data", str(ess8), "--encoding", "nosuch")
    assert code == 2
    assert err == (f"error: {ess8}: --encoding nosuch is not an encoding name the reader knows (File has an "
                   "unsupported character set); pass one such as latin1, cp1252, utf-8 or iso-8859-2\n")
